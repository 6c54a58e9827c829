//go:build e2e

// Package kops checks kops-rotate against the real kops CLI: a state store
// built by kops itself, every step checked with `kops get keypairs`, keys
// made by `kops create keypair` read by kops-rotate, and `kops-rotate run
// --yes` driving a kops that records the cloud steps.
package kops

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const clusterName = "test.example.com"

type env struct {
	t           *testing.T
	kops, state string
	dir         string
}

func setup(t *testing.T) *env {
	t.Helper()
	kops := os.Getenv("KOPS")
	if kops == "" {
		t.Fatal("KOPS is not set: run the suite with `make e2e` (it builds the kops CLI and sets KOPS)")
	}
	channel := os.Getenv("KOPS_CHANNEL")
	if channel == "" {
		t.Fatal("KOPS_CHANNEL is not set: `make e2e` points it at the kops module's channels/stable")
	}
	dir := t.TempDir()
	e := &env{t: t, kops: kops, state: "file://" + filepath.Join(dir, "state"), dir: dir}
	// The cluster spec kops itself generates (Hetzner needs no cloud for a dry run).
	spec := e.kopsOK([]string{"HCLOUD_TOKEN=dummy"}, "create", "cluster", "--cloud", "hetzner", "--zones", "fsn1",
		"--name", clusterName, "--state", e.state, "--channel", "file://"+channel, "--dry-run", "-o", "yaml")
	var kept []string
	for _, line := range strings.Split(spec, "\n") {
		if !strings.Contains(line, "configBase:") { // else it points at this store's absolute path forever
			kept = append(kept, line)
		}
	}
	specFile := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(specFile, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	e.kopsOK([]string{"HCLOUD_TOKEN=dummy"}, "create", "-f", specFile, "--state", e.state)
	for _, ks := range []string{"kubernetes-ca", "service-account", "etcd-manager-ca-main"} {
		e.kopsOK(nil, "create", "keypair", ks, "--primary", "--name", clusterName, "--state", e.state)
	}
	return e
}

func (e *env) kopsOK(extraEnv []string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.kops, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("kops %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// rotate runs kops-rotate with --name and --state.
func (e *env) rotate(path string, args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command("kops-rotate", append(args, "--name", clusterName, "--state", e.state)...)
	if path != "" {
		cmd.Env = append(os.Environ(), "PATH="+path)
	}
	out, err := cmd.CombinedOutput()
	e.t.Logf("$ kops-rotate %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

type keypair struct {
	Name, ID          string
	IsPrimary         bool
	DistrustTimestamp string
}

// keypairs is what `kops get keypairs` says, by keyset.
func (e *env) keypairs(distrusted bool) map[string][]keypair {
	e.t.Helper()
	args := []string{"get", "keypairs", "--name", clusterName, "--state", e.state, "-o", "json"}
	if distrusted {
		args = append(args, "--distrusted")
	}
	var kps []keypair
	if err := json.Unmarshal([]byte(e.kopsOK(nil, args...)), &kps); err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]keypair{}
	for _, k := range kps {
		out[k.Name] = append(out[k.Name], k)
	}
	return out
}

func primaryOf(kps []keypair) string {
	for _, k := range kps {
		if k.IsPrimary {
			return k.ID
		}
	}
	return ""
}

func TestStepsCheckedByTheRealKops(t *testing.T) {
	e := setup(t)
	before := e.keypairs(false)

	// kops-rotate reads what `kops create keypair` made.
	out, err := e.rotate("", "status", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Stage   string
		Keysets []struct {
			Name    string
			Primary struct{ ID string }
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Stage != "idle" || len(st.Keysets) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, ks := range st.Keysets {
		if ks.Primary.ID != primaryOf(before[ks.Name]) {
			t.Errorf("%s: kops-rotate sees primary %s, kops %s", ks.Name, ks.Primary.ID, primaryOf(before[ks.Name]))
		}
	}

	if _, err := e.rotate("", "stage", "all"); err != nil {
		t.Fatal(err)
	}
	staged := e.keypairs(false)
	for name, kps := range staged {
		if len(kps) != 2 || primaryOf(kps) != primaryOf(before[name]) {
			t.Errorf("kops after stage, %s: %+v", name, kps)
		}
	}
	if _, err := e.rotate("", "promote", "all"); err != nil {
		t.Fatal(err)
	}
	promoted := e.keypairs(false)
	for name, kps := range promoted {
		if p := primaryOf(kps); p == primaryOf(before[name]) || len(kps) != 2 {
			t.Errorf("kops after promote, %s: primary %s is still the old one", name, p)
		}
	}
	if out, err := e.rotate("", "distrust", "all"); err == nil || !strings.Contains(out, "not been exported since the promote") {
		t.Errorf("distrust before export: %v %s", err, out)
	}
	if _, err := e.rotate("", "distrust", "all", "--exported"); err != nil {
		t.Fatal(err)
	}
	trusted, all := e.keypairs(false), e.keypairs(true)
	for name := range before {
		if len(trusted[name]) != 1 || len(all[name]) != 2 {
			t.Errorf("kops after distrust, %s: %d trusted, %d in all", name, len(trusted[name]), len(all[name]))
		}
		for _, k := range all[name] {
			if k.ID == primaryOf(before[name]) && k.DistrustTimestamp == "" {
				t.Errorf("%s: old primary not distrusted", name)
			}
		}
	}
	// Roll all the way back; kops sees the original primaries trusted again.
	for i := 0; i < 3; i++ {
		if _, err := e.rotate("", "rollback"); err != nil {
			t.Fatal(err)
		}
	}
	back := e.keypairs(false)
	for name := range before {
		if primaryOf(back[name]) != primaryOf(before[name]) || len(back[name]) != 1 {
			t.Errorf("kops after rollbacks, %s: %+v", name, back[name])
		}
	}
	if out, err := e.rotate("", "rollback"); err == nil || !strings.Contains(out, "nothing to roll back") {
		t.Errorf("rollback when idle: %v %s", err, out)
	}
}

// TestRunYesResumes runs the whole procedure with a kops on PATH that
// passes keypair and export commands to the real CLI and records the cloud
// steps; it fails once at the rolling update after promote, and the re-run
// resumes there.
func TestRunYesResumes(t *testing.T) {
	e := setup(t)
	bin := filepath.Join(e.dir, "bin")
	os.MkdirAll(bin, 0o755)
	calls := filepath.Join(e.dir, "calls.log")
	failOnce := filepath.Join(e.dir, "fail-once")
	os.WriteFile(failOnce, nil, 0o600)
	// Fails once: on the first rolling update after an export, which is the
	// one after promote (stage, update, roll, export, promote, update, ROLL).
	wrapper := `#!/bin/sh
case "$1" in
  update|rolling-update)
    echo "$1 $2 $3" >> ` + calls + `
    if [ "$1" = rolling-update ] && [ -f ` + failOnce + ` ] && [ -s ` + calls + `.exports ]; then
      rm ` + failOnce + `; echo "simulated failure" >&2; exit 1
    fi
    exit 0 ;;
  export)
    echo "$*" >> ` + calls + `.exports
    HCLOUD_TOKEN=dummy exec ` + e.kops + ` "$@" --api-server https://127.0.0.1:6443 --kubeconfig ` + filepath.Join(e.dir, "kubeconfig") + ` ;;
  *) exec ` + e.kops + ` "$@" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "kops"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")

	out, err := e.rotate(path, "run")
	if err != nil || !strings.Contains(out, "add --yes to run them") {
		t.Fatalf("run without --yes: %v %s", err, out)
	}
	if _, err := os.Stat(calls); err == nil {
		t.Fatal("run without --yes called kops")
	}
	out, err = e.rotate(path, "run", "--yes")
	if err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("first run should stop at the simulated failure: %v", err)
	}
	first, _ := os.ReadFile(calls)
	out, err = e.rotate(path, "run", "--yes")
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	all, _ := os.ReadFile(calls)
	resumed := strings.TrimPrefix(string(all), string(first))
	if !strings.HasPrefix(resumed, "rolling-update cluster --yes") {
		t.Errorf("re-run did not resume at the failed rolling update:\n%s", resumed)
	}
	if c := strings.Count(string(all), "update cluster --yes"); c < 6 {
		t.Errorf("%d update/rolling-update calls in total, want at least 6:\n%s", c, all)
	}
	exports, _ := os.ReadFile(calls + ".exports")
	if !strings.Contains(string(exports), "export kubecfg --admin") || strings.Count(string(exports), "export kubecfg") != 3 {
		t.Errorf("exports: %s", exports)
	}
	done := e.keypairs(true)
	for name, kps := range done {
		if len(kps) != 2 {
			t.Errorf("%s after the full run: %d keypairs", name, len(kps))
		}
	}
	if out, _ := e.rotate(path, "run", "--yes"); !strings.Contains(out, "Rotation complete") {
		t.Errorf("run after completion: %s", out)
	}
}

// TestRunKilledMidStepResumes kills kops-rotate (and the kops it runs)
// while `kops update cluster` runs; the re-run starts again at that update.
func TestRunKilledMidStepResumes(t *testing.T) {
	e := setup(t)
	bin := filepath.Join(e.dir, "bin")
	os.MkdirAll(bin, 0o755)
	calls := filepath.Join(e.dir, "calls.log")
	hang := filepath.Join(e.dir, "hang-once")
	os.WriteFile(hang, nil, 0o600)
	wrapper := `#!/bin/sh
case "$1" in
  update|rolling-update)
    echo "$1 $2 $3" >> ` + calls + `
    if [ "$1" = update ] && [ -f ` + hang + ` ]; then rm ` + hang + `; sleep 60; fi
    exit 0 ;;
  export) HCLOUD_TOKEN=dummy exec ` + e.kops + ` "$@" --api-server https://127.0.0.1:6443 --kubeconfig ` + filepath.Join(e.dir, "kubeconfig") + ` ;;
  *) exec ` + e.kops + ` "$@" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "kops"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("kops-rotate", "run", "--yes", "--name", clusterName, "--state", e.state)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(hang); os.IsNotExist(err) {
			break // the update is running (and hanging)
		}
		if time.Now().After(deadline) {
			t.Fatal("the run never reached kops update cluster")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()

	out, err := e.rotate(bin+string(os.PathListSeparator)+os.Getenv("PATH"), "run", "--yes")
	if err != nil {
		t.Fatalf("re-run after kill: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "==> kops update cluster --yes") {
		t.Errorf("re-run did not resume at the interrupted update:\n%s", out)
	}
	log, _ := os.ReadFile(calls)
	if !strings.HasPrefix(string(log), "update cluster --yes\nupdate cluster --yes\nrolling-update") {
		t.Errorf("calls:\n%s", log)
	}
	for name, kps := range e.keypairs(true) {
		if len(kps) != 2 {
			t.Errorf("%s: %d keypairs after the resumed run, want the old (distrusted) and the new", name, len(kps))
		}
	}
}
