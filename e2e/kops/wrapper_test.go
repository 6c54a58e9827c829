//go:build e2e

package kops

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// installKops writes the `kops` that kops-rotate finds first on PATH (see
// e.path): it records the cloud steps (update, rolling-update, validate)
// and the exports, one line each with all their arguments, in e.callLog;
// passes everything else (version, keypairs) to the real kops; `export`
// runs the real kops into a kubeconfig of the test's own (the last
// --kubeconfig wins, so a --kubeconfig kops-rotate passes is never written
// to); `validate` fails, printing the reason, while e.validateFails
// exists. extra runs for update and rolling-update before they pass.
func (e *env) installKops(extra string) {
	e.t.Helper()
	bin := filepath.Join(e.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		e.t.Fatal(err)
	}
	wrapper := `#!/bin/sh
case "$1" in
  update|rolling-update)
    echo "$*" >> ` + e.callLog + `
    ` + extra + `
    exit 0 ;;
  validate)
    echo "$*" >> ` + e.callLog + `
    if [ -f ` + e.validateFails + ` ]; then cat ` + e.validateFails + `; exit 1; fi
    echo "Your cluster test.example.com is ready"
    exit 0 ;;
  export)
    echo "$*" >> ` + e.callLog + `
    HCLOUD_TOKEN=dummy exec ` + e.kops + ` "$@" --api-server https://127.0.0.1:6443 --kubeconfig ` + filepath.Join(e.dir, "kubeconfig") + ` ;;
  *) exec ` + e.kops + ` "$@" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "kops"), []byte(wrapper), 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.path = bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// calls are the recorded kops calls, without the --name and --state
// every one of them ends with (checked here).
func (e *env) calls() []string {
	e.t.Helper()
	b, err := os.ReadFile(e.callLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	suffix := " --name " + clusterName + " --state " + e.state
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, suffix) {
			e.t.Errorf("kops %s: not run for --name %s --state %s", line, clusterName, e.state)
		}
		out = append(out, strings.TrimSuffix(line, suffix))
	}
	return out
}

// result is one kops-rotate run as a user sees it.
type result struct {
	stdout, stderr string
	code           int
}

// waitingAt is the step a run stopped at for a person (exit code 3), as
// its last stderr line says it.
func (r result) waitingAt() string {
	m := regexp.MustCompile(`stopped for a person at step (\S+) \(exit code 3\): re-run with --done (\S+) once it is done`).FindStringSubmatch(r.stderr)
	if r.code != 3 || m == nil || m[1] != m[2] {
		return ""
	}
	return m[1]
}

// run runs kops-rotate with the test's kops first on PATH, --name and
// --state, keeping stdout and stderr apart.
func (e *env) run(args ...string) result {
	e.t.Helper()
	cmd := exec.Command("kops-rotate", append(args, "--name", clusterName, "--state", e.state)...)
	cmd.Env = append(os.Environ(), "PATH="+e.path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var xerr *exec.ExitError
	switch {
	case errors.As(err, &xerr):
		r.code = xerr.ExitCode()
	case err != nil:
		e.t.Fatalf("kops-rotate %s: %v", strings.Join(args, " "), err)
	}
	e.t.Logf("$ kops-rotate %s  (exit code %d)\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// runThrough runs `kops-rotate run --yes args...` and, each time it stops
// for a person, again with --done for that step, until it ends otherwise;
// it returns that last run and the steps it stopped at, in order.
func (e *env) runThrough(args ...string) (result, []string) {
	e.t.Helper()
	var stops []string
	done := []string(nil)
	for i := 0; i < 10; i++ {
		r := e.run(append(append([]string{"run", "--yes"}, args...), done...)...)
		step := r.waitingAt()
		if step == "" {
			return r, stops
		}
		stops = append(stops, step)
		done = []string{"--done", step}
	}
	e.t.Fatalf("run --yes %s stopped for a person more than 10 times: %q", strings.Join(args, " "), stops)
	return result{}, nil
}

// status is `kops-rotate status -o json`, the parts compared with kops.
type status struct {
	Stage   string
	Keysets []struct {
		Name                                    string
		Stage                                   string
		Primary                                 struct{ ID string }
		Staged, Previous, Distrusted, TrustOnly []struct{ ID string }
	}
	Record *struct{ Waiting string }
}

func (e *env) status() status {
	e.t.Helper()
	r := e.run("status", "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("status: exit code %d: %s", r.code, r.stderr)
	}
	var st status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	return st
}

// kopsStage is the stage of one keyset as `kops get keypairs` shows it,
// given its primary before the rotation: staged (a second trusted keypair,
// the old primary), promoted (the new one primary, the old still
// trusted), distrusted (the old one distrusted), idle (one keypair).
func kopsStage(trusted, all []keypair, original string) string {
	p := primaryOf(trusted)
	switch {
	case len(trusted) == 1 && len(all) == 1 && p == original:
		return "idle"
	case len(trusted) == 2 && len(all) == 2 && p == original:
		return "staged"
	case len(trusted) == 2 && len(all) == 2 && p != original:
		return "promoted"
	case len(trusted) == 1 && len(all) == 2 && p != original:
		return "distrusted"
	}
	return "unexpected"
}

// checkStatusIsKops compares `kops-rotate status -o json` with `kops get
// keypairs`, given the primaries before the rotation: the rotated keysets
// (all when none is named) at stage in both, the others idle, with the
// same primary, and the same trusted and distrusted ids. Stage "complete"
// is a finished rotation: kops shows the old keypairs distrusted, and
// kops-rotate the keysets idle again (ready for the next one).
func (e *env) checkStatusIsKops(stage string, original map[string]string, rotated ...string) {
	e.t.Helper()
	st := e.status()
	trusted, all := e.keypairs(false), e.keypairs(true)
	rotStage := stage
	if stage == "complete" {
		stage, rotStage = "distrusted", "idle"
	}
	if st.Stage != rotStage {
		e.t.Errorf("status says stage %s, want %s", st.Stage, rotStage)
	}
	for _, ks := range st.Keysets {
		want, rotWant := stage, rotStage
		if len(rotated) > 0 && !slices.Contains(rotated, ks.Name) {
			want, rotWant = "idle", "idle"
		}
		if got := kopsStage(trusted[ks.Name], all[ks.Name], original[ks.Name]); got != want || ks.Stage != rotWant {
			e.t.Errorf("%s: kops-rotate says %s (want %s), kops get keypairs says %s (want %s): %+v", ks.Name, ks.Stage, rotWant, got, want, all[ks.Name])
		}
		if p := primaryOf(trusted[ks.Name]); ks.Primary.ID != p {
			e.t.Errorf("%s: kops-rotate says primary %s, kops %s", ks.Name, ks.Primary.ID, p)
		}
		var rotTrusted, rotDistrusted, kTrusted, kDistrusted []string
		rotTrusted = append(rotTrusted, ks.Primary.ID)
		for _, l := range [][]struct{ ID string }{ks.Staged, ks.Previous, ks.TrustOnly} {
			for _, k := range l {
				rotTrusted = append(rotTrusted, k.ID)
			}
		}
		for _, k := range ks.Distrusted {
			rotDistrusted = append(rotDistrusted, k.ID)
		}
		for _, k := range all[ks.Name] {
			if k.DistrustTimestamp == "" {
				kTrusted = append(kTrusted, k.ID)
			} else {
				kDistrusted = append(kDistrusted, k.ID)
			}
		}
		if !sameSet(rotTrusted, kTrusted) || !sameSet(rotDistrusted, kDistrusted) {
			e.t.Errorf("%s: kops-rotate trusts %q and distrusts %q; kops trusts %q and distrusts %q", ks.Name, rotTrusted, rotDistrusted, kTrusted, kDistrusted)
		}
	}
	if len(st.Keysets) != len(original) {
		e.t.Errorf("status shows %d keysets, want %d", len(st.Keysets), len(original))
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

// primaries are the primary ids kops shows, by keyset.
func (e *env) primaries() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for name, kps := range e.keypairs(false) {
		out[name] = primaryOf(kps)
	}
	return out
}

// snapshot is what a refused command must leave as it was: every keypair
// kops lists (distrusted ones too), the recorded kops calls and the
// journal's bytes.
type snapshot struct {
	keypairs map[string][]keypair
	calls    []string
	journal  string
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "state", clusterName, "backups", "kops-rotate", "state.yaml"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	return snapshot{keypairs: e.keypairs(true), calls: e.calls(), journal: string(b)}
}

func (e *env) checkUnchanged(what string, before snapshot) {
	e.t.Helper()
	after := e.snapshot()
	if !reflect.DeepEqual(after.keypairs, before.keypairs) {
		e.t.Errorf("%s changed the keypairs:\nbefore %+v\nafter  %+v", what, before.keypairs, after.keypairs)
	}
	if !reflect.DeepEqual(after.calls, before.calls) {
		e.t.Errorf("%s ran kops: %q", what, after.calls[len(before.calls):])
	}
	if after.journal != before.journal {
		e.t.Errorf("%s wrote the journal:\nbefore:\n%s\nafter:\n%s", what, before.journal, after.journal)
	}
}

// fingerprints are the SHA-256 of the DER of each certificate of a
// keyset, by id, from the keyset kops keeps in the state store
// (pki/private/KEYSET/keyset.yaml: `kops get keypairs` shows no
// certificate).
func (e *env) fingerprints(keyset string) map[string]string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "state", clusterName, "pki", "private", keyset, "keyset.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	var ks struct {
		Spec struct {
			Keys []struct {
				ID             string `json:"id"`
				PublicMaterial []byte `json:"publicMaterial"`
			} `json:"keys"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &ks); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range ks.Spec.Keys {
		blk, _ := pem.Decode(k.PublicMaterial)
		if blk == nil {
			e.t.Fatalf("%s %s: no PEM certificate in keyset.yaml", keyset, k.ID)
		}
		sum := sha256.Sum256(blk.Bytes)
		out[k.ID] = hex.EncodeToString(sum[:])
	}
	return out
}

// oneLine checks that a refused command said why in one stderr line with
// every one of want, and exit code 1.
func oneLine(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	msg := strings.TrimSpace(r.stderr)
	if r.code != 1 || msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: want exit code 1 and one line on stderr, got exit code %d:\n%s", what, r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: the message does not name %q: %s", what, w, msg)
		}
	}
}
