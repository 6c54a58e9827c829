package hooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The test binary is also the hook: with HOOKS_TEST_HELPER set, TestMain
// runs helper() instead of the tests.
const helperEnv = "HOOKS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// report is what the helper saw, written to $HOOKS_TEST_REPORT.
type report struct {
	Argv, Cmdline []string
	Doc           string
	File          string
	FileMode      uint32
	Env           map[string]string
	Pgid, Pid     int
	Grandchild    int
}

func readValues() string {
	if p := os.Getenv(EnvValuesFile); p != "" {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(os.Stdin)
	return b.String()
}

func writeReport(r report) {
	b, _ := json.Marshal(r)
	// Written whole, then renamed: a test that waits for the file to
	// appear must never read half of it.
	dst := os.Getenv("HOOKS_TEST_REPORT")
	if os.WriteFile(dst+".tmp", b, 0o600) == nil {
		_ = os.Rename(dst+".tmp", dst)
	}
}

func helper(mode string) int {
	switch mode {
	case "report":
		r := report{Argv: os.Args, Doc: readValues(), File: os.Getenv(EnvValuesFile), Env: map[string]string{}, Pid: os.Getpid(), Pgid: syscall.Getpgrp()}
		if cl, err := os.ReadFile("/proc/self/cmdline"); err == nil {
			r.Cmdline = strings.Split(strings.TrimSuffix(string(cl), "\x00"), "\x00")
		}
		if r.File != "" {
			if st, err := os.Stat(r.File); err == nil {
				r.FileMode = uint32(st.Mode().Perm())
			}
		}
		for _, e := range os.Environ() {
			if k, v, _ := strings.Cut(e, "="); strings.HasPrefix(k, "KUBE_ROTATE_") || k == "HOOK_SETTING" || k == "HOOKS_PARENT_ONLY" {
				r.Env[k] = v
			}
		}
		writeReport(r)
		return 0
	case "fail":
		var d document
		_ = json.Unmarshal([]byte(readValues()), &d)
		fmt.Println("connecting to the database")
		fmt.Fprintln(os.Stderr, "encoded: "+base64.StdEncoding.EncodeToString([]byte(d.Pending["password"])))
		fmt.Println("ALTER ROLE failed for password " + d.Pending["password"])
		return 3
	case "grandchild":
		// Start a grandchild in our process group, tell the test its pid,
		// then hang (timeout) or exit at once (leave).
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := gc.Start(); err != nil {
			return 9
		}
		writeReport(report{Pid: os.Getpid(), Grandchild: gc.Process.Pid, File: os.Getenv(EnvValuesFile)})
		fmt.Println("started", gc.Process.Pid)
		if os.Getenv("HOOKS_LEAVE") != "" {
			return 0
		}
		time.Sleep(time.Hour)
		return 0
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	}
	return 100
}

func testValues() Values {
	return Values{
		Pending: map[string][]byte{"password": []byte("n3w-Pa$$word/<&>\"x"), "bin": {0xff, 0xfe, 0x00, 0x01}},
		Current: map[string][]byte{"password": []byte("old-password-1")},
		Secret:  "db-creds", Namespace: "prod", Item: "db", Step: "set", RotationID: "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
	}
}

func helperExec(t *testing.T, mode string, extra ...corev1.EnvVar) (*Exec, string) {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	env := append([]corev1.EnvVar{{Name: helperEnv, Value: mode}, {Name: "HOOKS_TEST_REPORT", Value: rep}}, extra...)
	return &Exec{Command: []string{os.Args[0], "hook-arg", "--flag"}, Env: env, Timeout: 20 * time.Second}, rep
}

func readReport(t *testing.T, path string) report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the helper wrote no report: %v", err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExecValues(t *testing.T) {
	t.Setenv("HOOKS_PARENT_ONLY", "inherited")
	t.Setenv(EnvValuesFile, "/stale/from/parent")
	v := testValues()
	for _, mode := range []string{ValuesFile, ValuesStdin, ""} {
		t.Run("values="+mode, func(t *testing.T) {
			h, rep := helperExec(t, "report", corev1.EnvVar{Name: "HOOK_SETTING", Value: "plain"})
			h.Values = mode
			res, err := h.Run(context.Background(), v)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != 0 || res.Kind != KindExec || res.Step != "set" || res.Started.IsZero() || res.Finished.Before(res.Started) {
				t.Errorf("result %+v", res)
			}
			r := readReport(t, rep)
			if strings.Join(r.Argv, " ") != strings.Join(h.Command, " ") || strings.Join(r.Cmdline, " ") != strings.Join(h.Command, " ") {
				t.Errorf("argv %q, /proc/self/cmdline %q; want exactly %q", r.Argv, r.Cmdline, h.Command)
			}
			if r.Pgid != r.Pid {
				t.Errorf("the hook is not leader of its own process group (pgid %d, pid %d)", r.Pgid, r.Pid)
			}
			var d document
			if err := json.Unmarshal([]byte(r.Doc), &d); err != nil {
				t.Fatalf("the hook read no JSON: %v", err)
			}
			if d.Secret != "db-creds" || d.Namespace != "prod" || d.Item != "db" || d.Step != "set" || d.RotationID != v.RotationID {
				t.Errorf("document %+v", d)
			}
			if d.Pending["password"] != string(v.Pending["password"]) || d.Current["password"] != "old-password-1" {
				t.Errorf("values not passed as strings: %+v", d)
			}
			if _, ok := d.Pending["bin"]; ok || d.PendingBase64["bin"] != base64.StdEncoding.EncodeToString(v.Pending["bin"]) || d.CurrentBase64 != nil {
				t.Errorf("a value that is not UTF-8 must be base64 under pendingBase64: %+v", d)
			}
			want := map[string]string{EnvStep: "set", EnvItem: "db", EnvSecret: "db-creds", EnvNamespace: "prod", EnvRotationID: v.RotationID,
				"HOOK_SETTING": "plain", "HOOKS_PARENT_ONLY": "inherited"}
			if mode == ValuesStdin {
				if r.File != "" {
					t.Errorf("stdin mode must not pass %s (the parent's stale one included), got %q", EnvValuesFile, r.File)
				}
			} else {
				want[EnvValuesFile] = r.File
				if r.File == "" || r.File == "/stale/from/parent" {
					t.Fatalf("file mode: %s is %q", EnvValuesFile, r.File)
				}
				if r.FileMode != 0o600 {
					t.Errorf("values file mode %o, want 600", r.FileMode)
				}
				if _, err := os.Stat(r.File); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("values file %s still there after the hook: %v", r.File, err)
				}
				if _, err := os.Stat(filepath.Dir(r.File)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("values directory still there after the hook: %v", err)
				}
			}
			for k, val := range want {
				if r.Env[k] != val {
					t.Errorf("env %s=%q, want %q", k, r.Env[k], val)
				}
			}
			for k, val := range r.Env {
				for _, secret := range v.secrets() {
					if strings.Contains(val, string(secret)) {
						t.Errorf("env %s holds a value", k)
					}
				}
			}
		})
	}
}

func TestExecFailureRedacted(t *testing.T) {
	v := testValues()
	h, _ := helperExec(t, "fail")
	h.Values = ValuesStdin
	res, err := h.Run(context.Background(), v)
	if err == nil {
		t.Fatal("a hook that exits 3 must fail")
	}
	want := "hook set of item db exited 3: ALTER ROLE failed for password [REDACTED]"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d", res.ExitCode)
	}
	if !strings.Contains(res.Output, "connecting to the database") || strings.Count(res.Output, Redacted) != 2 {
		t.Errorf("output %q: want both lines with the value and its base64 form redacted", res.Output)
	}
	pw := v.Pending["password"]
	for _, form := range []string{string(pw), base64.StdEncoding.EncodeToString(pw)} {
		if strings.Contains(res.Output, form) || strings.Contains(err.Error(), form) {
			t.Errorf("a value form leaked: output %q, error %q", res.Output, err)
		}
	}
}

func TestExecStartFailure(t *testing.T) {
	h := &Exec{Command: []string{"/nonexistent/hook"}}
	_, err := h.Run(context.Background(), testValues())
	if err == nil || !strings.Contains(err.Error(), "hook set of item db: cannot start /nonexistent/hook") {
		t.Errorf("error %v", err)
	}
	for _, bad := range []*Exec{{}, {Command: []string{"true"}, Values: "argv"}, {Command: []string{"true"}, Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{}}}}} {
		if _, err := bad.Run(context.Background(), testValues()); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// gone reports whether pid no longer runs (gone, or a zombie not reaped
// yet by whoever inherited it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d outlived the hook: an orphan", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	h, rep := helperExec(t, "grandchild")
	h.Timeout = time.Second
	start := time.Now()
	res, err := h.Run(context.Background(), testValues())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %s after a 1s timeout", took)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "hook set of item db timed out after 1s: killed its process group; last output: started ") {
		t.Fatalf("error %v", err)
	}
	if res.ExitCode != -1 {
		t.Errorf("exit code %d, want -1 (killed)", res.ExitCode)
	}
	r := readReport(t, rep)
	waitGone(t, r.Pid)
	waitGone(t, r.Grandchild)
	if _, err := os.Stat(r.File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("values file %s left after the timeout", r.File)
	}
}

func TestExecCancelKillsGroup(t *testing.T) {
	h, rep := helperExec(t, "grandchild")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(rep); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := h.Run(ctx, testValues())
	if err == nil || !strings.Contains(err.Error(), "was stopped (context canceled): killed its process group") {
		t.Fatalf("error %v", err)
	}
	r := readReport(t, rep)
	waitGone(t, r.Pid)
	waitGone(t, r.Grandchild)
}

func TestExecNoOrphanAfterExit(t *testing.T) {
	h, rep := helperExec(t, "grandchild", corev1.EnvVar{Name: "HOOKS_LEAVE", Value: "1"})
	start := time.Now()
	res, err := h.Run(context.Background(), testValues())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(start); took > outputGrace+time.Second {
		t.Errorf("Run took %s: a grandchild holding the output pipe delayed it", took)
	}
	if res.ExitCode != 0 {
		t.Errorf("exit %d", res.ExitCode)
	}
	waitGone(t, readReport(t, rep).Grandchild)
}

func TestRedact(t *testing.T) {
	pw := []byte("s3cr3t/+?&= value")
	for _, tc := range []struct {
		name, in, want string
		values         [][]byte
	}{
		{"raw", "password is s3cr3t/+?&= value.", "password is [REDACTED].", [][]byte{pw}},
		{"base64 std", "b64 " + base64.StdEncoding.EncodeToString(pw), "b64 [REDACTED]", [][]byte{pw}},
		{"base64 url", base64.URLEncoding.EncodeToString([]byte("abc>>>?")), Redacted, [][]byte{[]byte("abc>>>?")}},
		{"base64 raw", base64.RawStdEncoding.EncodeToString([]byte("abcde")), Redacted, [][]byte{[]byte("abcde")}},
		{"query escape", "u=" + url.QueryEscape(string(pw)), "u=[REDACTED]", [][]byte{pw}},
		{"path escape", "/p/" + url.PathEscape(string(pw)), "/p/[REDACTED]", [][]byte{pw}},
		{"json escaped", `{"pending":{"p":"a\"b\u003cc"}}`, `{"pending":{"p":"[REDACTED]"}}`, [][]byte{[]byte(`a"b<c`)}},
		{"json no html escaping", `{"p":"a\"b<c"}`, `{"p":"[REDACTED]"}`, [][]byte{[]byte(`a"b<c`)}},
		{"trailing newline", "pw=hunter22 ok", "pw=[REDACTED] ok", [][]byte{[]byte("hunter22\n")}},
		{"longest first", "abcdefgh", Redacted, [][]byte{[]byte("abcd"), []byte("abcdefgh")}},
		{"several", "x=one1 y=two2 one1", "x=[REDACTED] y=[REDACTED] [REDACTED]", [][]byte{[]byte("one1"), []byte("two2")}},
		{"short: raw only", "ab YWI= ab", "[REDACTED] YWI= [REDACTED]", [][]byte{[]byte("ab")}},
		{"empty value ignored", "text", "text", [][]byte{nil, {}}},
		{"no values", "text", "text", nil},
		{"binary", "x " + base64.StdEncoding.EncodeToString([]byte{0xff, 0, 1, 2}), "x [REDACTED]", [][]byte{{0xff, 0, 1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in, tc.values...); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// A value cut by the output's tail window must not show in part.
func TestRedactTailCut(t *testing.T) {
	value := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	red := newRedactor([][]byte{value})
	for k := 1; k < len(value); k++ {
		tb := red.newTail(OutputLimit)
		_, _ = tb.Write(bytes.Repeat([]byte("."), 10000))
		_, _ = tb.Write(value)
		// Leave the last k bytes of the value at the start of the window.
		_, _ = tb.Write(bytes.Repeat([]byte("."), tb.max-k))
		b, truncated := tb.bytes()
		if !truncated || len(b) != tb.max {
			t.Fatalf("window %d bytes, truncated %v", len(b), truncated)
		}
		out := red.tail(b, truncated, OutputLimit)
		if strings.Trim(strings.ReplaceAll(out, Redacted, ""), ".") != "" || len(out) > OutputLimit {
			t.Fatalf("k=%d: part of the value is left: %q...", k, out[:40])
		}
	}
	// A whole value at the start of the window is redacted, not dropped.
	tb := red.newTail(OutputLimit)
	_, _ = tb.Write([]byte("...."))
	_, _ = tb.Write(value)
	_, _ = tb.Write(bytes.Repeat([]byte("."), tb.max-len(value)-1))
	b, truncated := tb.bytes()
	if out := red.tail(b, truncated, OutputLimit); strings.Trim(strings.ReplaceAll(out, Redacted, ""), ".") != "" {
		t.Errorf("left: %q", out[:40])
	}
}

func TestShortDurationAndLastLine(t *testing.T) {
	for d, want := range map[time.Duration]string{2 * time.Minute: "2m", time.Hour: "1h", 90 * time.Second: "1m30s", 10 * time.Second: "10s", 70 * time.Minute: "1h10m"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := lastLine("a\nerror:\tbad\r\n\n"); got != "error: bad" {
		t.Errorf("lastLine = %q", got)
	}
	if got := lastLine(""); got != "(no output)" {
		t.Errorf("lastLine(\"\") = %q", got)
	}
}

// TestSecretsIncludeTheirParts: a hook that prints only the new URL
// password, or only a JSON field's new value, leaks nothing either.
func TestSecretsIncludeTheirParts(t *testing.T) {
	v := Values{Pending: map[string][]byte{
		"url":  []byte("postgresql://app:N3wPassw0rd-xyz@db:5432/app"),
		"json": []byte(`{"aws_access_key_id":"AKIAEXAMPLE","aws_secret_access_key":"s3cr3t-new-value-123","region":"eu"}`),
	}, Current: map[string][]byte{"url": []byte("postgresql://app:0ldPassw0rd-abc@db:5432/app")}}
	out := Redact("new N3wPassw0rd-xyz old 0ldPassw0rd-abc field s3cr3t-new-value-123 region eu", v.secrets()...)
	for _, leak := range []string{"N3wPassw0rd-xyz", "0ldPassw0rd-abc", "s3cr3t-new-value-123"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q leaked: %s", leak, out)
		}
	}
	if !strings.Contains(out, "region eu") {
		t.Errorf("a short field was redacted too: %s", out)
	}
}
