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
	"reflect"
	"sort"
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
	// path is PATH with the test's kops first (installKops); callLog is
	// where it records its calls; validateFails, while it exists, makes
	// its validate fail.
	path, callLog, validateFails string
}

func setup(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	// The cluster spec kops itself generates (Hetzner needs no cloud for a dry run).
	e.createCluster([]string{"HCLOUD_TOKEN=dummy"}, nil, "--cloud", "hetzner", "--zones", "fsn1")
	for _, ks := range []string{"kubernetes-ca", "service-account", "etcd-manager-ca-main"} {
		e.kopsOK(nil, "create", "keypair", ks, "--primary", "--name", clusterName, "--state", e.state)
	}
	return e
}

// newEnv is a test's directory, state store and kops wrapper.
func newEnv(t *testing.T) *env {
	t.Helper()
	kops := os.Getenv("KOPS")
	if kops == "" {
		t.Fatal("KOPS is not set: run the suite with `make e2e` (it builds the kops CLI and sets KOPS)")
	}
	dir := t.TempDir()
	e := &env{t: t, kops: kops, state: "file://" + filepath.Join(dir, "state"), dir: dir,
		callLog: filepath.Join(dir, "calls.log"), validateFails: filepath.Join(dir, "validate-fails")}
	e.installKops("")
	return e
}

// createCluster registers the cluster spec that `kops create cluster
// --dry-run` generates with args, edited by edit (nil: as generated).
func (e *env) createCluster(extraEnv []string, edit func(spec string) string, args ...string) {
	e.t.Helper()
	channel := os.Getenv("KOPS_CHANNEL")
	if channel == "" {
		e.t.Fatal("KOPS_CHANNEL is not set: `make e2e` points it at the kops module's channels/stable")
	}
	spec := e.kopsOK(extraEnv, append([]string{"create", "cluster", "--name", clusterName, "--state", e.state,
		"--channel", "file://" + channel, "--dry-run", "-o", "yaml"}, args...)...)
	var kept []string
	for _, line := range strings.Split(spec, "\n") {
		if !strings.Contains(line, "configBase:") { // else it points at this store's absolute path forever
			kept = append(kept, line)
		}
	}
	spec = strings.Join(kept, "\n")
	if edit != nil {
		spec = edit(spec)
	}
	specFile := filepath.Join(e.dir, "cluster.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.kopsOK(extraEnv, "create", "-f", specFile, "--state", e.state)
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

// rotate runs kops-rotate with --name and --state, and PATH (the test's
// kops first when "").
func (e *env) rotate(path string, args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command("kops-rotate", append(args, "--name", clusterName, "--state", e.state)...)
	if path == "" {
		path = e.path
	}
	cmd.Env = append(os.Environ(), "PATH="+path)
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
	// By id: kops lists a keyset's keypairs in no fixed order.
	sort.Slice(kps, func(i, j int) bool { return kps[i].ID < kps[j].ID })
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
	// The promote validated the cluster first (nothing had), once.
	if got := e.calls(); !reflect.DeepEqual(got, []string{"validate cluster"}) {
		t.Errorf("kops calls of the promote: %q, want one kops validate cluster", got)
	}
	if out, err := e.rotate("", "distrust", "all"); err == nil || !strings.Contains(out, "not been exported since the promote") {
		t.Errorf("distrust before export: %v %s", err, out)
	}
	if _, err := e.rotate("", "distrust", "all", "--exported"); err != nil {
		t.Fatal(err)
	}
	if got := e.calls(); len(got) < 2 || got[len(got)-1] != "validate cluster" || len(got) != strings.Count(strings.Join(got, "\n")+"\n", "validate cluster\n") {
		t.Errorf("kops calls after the distrust: %q, want kops validate cluster before it, and nothing else", got)
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
// resumes there. Where it stops for a person, the person says it is done.
func TestRunYesResumes(t *testing.T) {
	e := setup(t)
	failOnce := filepath.Join(e.dir, "fail-once")
	os.WriteFile(failOnce, nil, 0o600)
	// Fails once: on the first rolling update after an export, which is the
	// one after promote (stage, update, roll, validate, export, promote,
	// update, ROLL).
	e.installKops(`if [ "$1" = rolling-update ] && [ -f ` + failOnce + ` ] && grep -q '^export' ` + e.callLog + `; then
      rm ` + failOnce + `; echo "simulated failure" >&2; exit 1
    fi`)

	out, err := e.rotate("", "run")
	if err != nil || !strings.Contains(out, "add --yes to run them") {
		t.Fatalf("run without --yes: %v %s", err, out)
	}
	if got := e.calls(); len(got) != 0 {
		t.Fatalf("run without --yes called kops: %q", got)
	}
	r, stops := e.runThrough()
	if r.code != 1 || !strings.Contains(r.stderr, "failed") || !strings.Contains(r.stderr, "simulated failure") {
		t.Fatalf("first run should stop at the simulated failure: exit code %d\n%s", r.code, r.stderr)
	}
	if !reflect.DeepEqual(stops, []string{"distribute-ca-after-stage"}) {
		t.Errorf("before the failure the run stopped for a person at %q, want distribute-ca-after-stage only", stops)
	}
	first := e.calls()
	r, stops = e.runThrough()
	if r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Fatalf("re-run: exit code %d\n%s", r.code, r.stderr)
	}
	if len(stops) == 0 || stops[0] != "distribute-credentials-after-promote" {
		t.Errorf("the re-run stopped for a person at %q, want distribute-credentials-after-promote first", stops)
	}
	all := e.calls()
	if len(all) <= len(first) || all[len(first)] != "rolling-update cluster --yes" {
		t.Errorf("re-run did not resume at the failed rolling update:\n%q", all[len(first):])
	}
	// kOps' procedure, the failed rolling update twice, a validation after
	// every rolling update, new admin credentials after the promote.
	want := []string{
		"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg",
		"update cluster --yes", "rolling-update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg --admin",
		"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg",
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("kops calls:\n%s\nwant:\n%s", strings.Join(all, "\n"), strings.Join(want, "\n"))
	}
	done := e.keypairs(true)
	for name, kps := range done {
		if len(kps) != 2 {
			t.Errorf("%s after the full run: %d keypairs", name, len(kps))
		}
	}
	if r := e.run("run", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Errorf("run after completion: exit code %d %s", r.code, r.stdout)
	}
	if got := e.calls(); len(got) != len(all) {
		t.Errorf("run after completion ran kops: %q", got[len(all):])
	}
}

// TestRunKilledMidStepResumes kills kops-rotate (and the kops it runs)
// while `kops update cluster` runs; the re-run starts again at that update.
func TestRunKilledMidStepResumes(t *testing.T) {
	e := setup(t)
	hang := filepath.Join(e.dir, "hang-once")
	os.WriteFile(hang, nil, 0o600)
	e.installKops(`if [ "$1" = update ] && [ -f ` + hang + ` ]; then rm ` + hang + `; sleep 60; fi`)
	cmd := exec.Command("kops-rotate", "run", "--yes", "--name", clusterName, "--state", e.state)
	cmd.Env = append(os.Environ(), "PATH="+e.path)
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

	r := e.run("run", "--yes")
	if r.code != 3 || r.waitingAt() != "distribute-ca-after-stage" {
		t.Fatalf("re-run after kill: exit code %d, want 3 at distribute-ca-after-stage\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "==> kops update cluster --yes") {
		t.Errorf("re-run did not resume at the interrupted update:\n%s", r.stdout)
	}
	if r, _ := e.runThrough(); r.code != 0 {
		t.Fatalf("run to the end: exit code %d\n%s", r.code, r.stderr)
	}
	if got := e.calls(); len(got) < 3 || got[0] != "update cluster --yes" || got[1] != "update cluster --yes" || got[2] != "rolling-update cluster --yes" {
		t.Errorf("calls:\n%s", strings.Join(got, "\n"))
	}
	for name, kps := range e.keypairs(true) {
		if len(kps) != 2 {
			t.Errorf("%s: %d keypairs after the resumed run, want the old (distrusted) and the new", name, len(kps))
		}
	}
}
