//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pkg", "model", "jwks", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type keyList struct {
	Layout string
	Keys   []jwks.Row
}

func listKeys(t *testing.T, args ...string) keyList {
	t.Helper()
	var l keyList
	r := mustRun(t, append([]string{"jwk", "list", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("jwk list -o json: %v", err)
	}
	return l
}

// TestJWKRotateDiracXSecret runs the DiracX JWKS procedure (seed 000) on a
// Secret read by a Deployment: add, restart, promote, restart; then delete
// the old key (refused inside the overlap, allowed with --force).
func TestJWKRotateDiracXSecret(t *testing.T) {
	ns := newNamespace(t)
	fixture := readFixture(t, "diracx.json")
	createSecret(t, ns, "diracx-jwks", map[string]string{"jwks.json": string(fixture)})
	deployWith(t, ns, "diracx", func(s *corev1PodSpec) {
		s.Volumes = append(s.Volumes, secretVolume("jwks", "diracx-jwks"))
	})
	deployWith(t, ns, "docs", nil)
	before := getDeployment(t, ns, "diracx").Generation
	docs := getDeployment(t, ns, "docs").Generation

	r := mustRun(t, "jwk", "rotate", "--secret", "diracx-jwks", "-n", ns)
	if g := getDeployment(t, ns, "diracx").Generation; g != before+2 {
		t.Errorf("deployment/diracx generation %d -> %d, want two restarts (after add, after promote)", before, g)
	}
	if getDeployment(t, ns, "docs").Generation != docs {
		t.Error("deployment/docs (does not read the key set) was restarted")
	}
	if !strings.Contains(r.stdout, `deployment "diracx" successfully rolled out`) {
		t.Errorf("no rollout wait in the output:\n%s", r.stdout)
	}
	l := listKeys(t, "--secret", "diracx-jwks", "-n", ns)
	if l.Layout != "diracx" || len(l.Keys) != 3 || l.Keys[0].State != jwks.StateActive || l.Keys[1].State != jwks.StateRetiring {
		t.Fatalf("after rotate: %+v", l)
	}
	newKID, oldKID := l.Keys[0].KID, l.Keys[1].KID
	if oldKID != "0196af4d311579728287cb89c24514e9" || strings.Join(l.Keys[0].KeyOps, ",") != "sign,verify" || l.Keys[0].Alg != "Ed25519" {
		t.Errorf("keys: %+v", l.Keys)
	}
	set, err := jwks.Parse(getSecret(t, ns, "diracx-jwks").Data["jwks.json"])
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := jwks.Parse(fixture)
	if string(set.Keys[2].Raw) != string(orig.Keys[1].Raw) {
		t.Error("the untouched oldest key changed")
	}

	r = run(t, nil, "jwk", "delete", "--secret", "diracx-jwks", "-n", ns, oldKID)
	if r.code == 0 || !strings.Contains(r.stderr, "less than the 24h0m0s overlap") {
		t.Errorf("delete inside the overlap: exit %d %s", r.code, r.stderr)
	}
	r = run(t, nil, "jwk", "delete", "--secret", "diracx-jwks", "-n", ns, newKID)
	if r.code == 0 || !strings.Contains(r.stderr, "is the signing key") {
		t.Errorf("delete of the signing key: exit %d %s", r.code, r.stderr)
	}
	mustRun(t, "jwk", "delete", "--secret", "diracx-jwks", "-n", ns, oldKID, "--force")
	if l := listKeys(t, "--secret", "diracx-jwks", "-n", ns); len(l.Keys) != 2 {
		t.Errorf("after delete: %d keys", len(l.Keys))
	}
	s := getSecret(t, ns, "diracx-jwks")
	h, _ := v1alpha1.ReadHistory(s.Annotations)
	if len(h) != 3 || h[0].Action != "jwk-add" || h[2].Action != "jwk-delete" {
		t.Errorf("history: %+v", h)
	}

	// Nothing printed anywhere holds private material.
	var private map[string][]byte = map[string][]byte{}
	for _, k := range set.Keys {
		var m map[string]string
		_ = json.Unmarshal(k.Raw, &m)
		private["d of "+k.KID] = []byte(m["d"])
	}
	for _, args := range [][]string{{"jwk", "list"}, {"jwk", "list", "-o", "yaml"}, {"jwk", "public"}, {"jwk", "add", "--dry-run=client"}} {
		out := run(t, nil, append(args, "--secret", "diracx-jwks", "-n", ns)...)
		assertNoValues(t, strings.Join(args, " "), out.allOutput(), private)
	}
}

// TestJWKSlurmFileAndBadInput: the Slurm layout in a file, step by step,
// and the bad inputs that must change nothing.
func TestJWKSlurmFileAndBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slurm.jwks")
	orig := readFixture(t, "slurm.json")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	// No key has "use":"default": Slurm signs with the first key.
	if l := listKeys(t, "--file", path); l.Layout != "slurm" || l.Keys[0].State != jwks.StateActive {
		t.Fatalf("before add: %+v", l)
	}
	add := mustRun(t, "jwk", "add", "--file", path, "-o", "json")
	var l keyList
	if err := json.Unmarshal([]byte(add.stdout), &l); err != nil || l.Layout != "slurm" || len(l.Keys) != 3 || l.Keys[2].State != jwks.StateNext || l.Keys[0].State != jwks.StateActive || l.Keys[2].Use != "" {
		t.Fatalf("add must append a next key without use and keep the first signing: %+v %v", l, err)
	}
	next := l.Keys[2].KID
	mustRun(t, "jwk", "promote", "--file", path)
	l = listKeys(t, "--file", path)
	if l.Keys[2].KID != next || l.Keys[2].State != jwks.StateActive || l.Keys[2].Use != "default" || l.Keys[0].State != jwks.StateRetiring || l.Keys[0].Use != "" {
		t.Errorf(`promoted Slurm key must stay last, carry "use":"default" and sign: %+v`, l.Keys)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	pub := mustRun(t, "jwk", "public", "--file", path)
	if strings.TrimSpace(pub.stdout) != `{"keys":[]}` {
		t.Errorf("public set of HS256 keys must be empty, got %s", pub.stdout)
	}
	written, _ := os.ReadFile(path)

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"keys": [{"kty": "oct", "k": "AAAA", "kid": "x"}, {"kty": "oct", "k": "BBBB", "kid": "x"}]}`), 0o600)
	k16 := `"k": "MDEyMzQ1Njc4OWFiY2RlZg"`
	twoDefaults := filepath.Join(dir, "two-defaults.jwks")
	os.WriteFile(twoDefaults, []byte(`{"keys": [{"alg": "HS256", "kty": "oct", "kid": "a", `+k16+`, "use": "default"}, {"alg": "HS256", "kty": "oct", "kid": "b", `+k16+`, "use": "default"}]}`), 0o600)
	open := filepath.Join(dir, "open.jwks")
	os.WriteFile(open, orig, 0o600)
	os.Chmod(open, 0o644)
	empty := filepath.Join(dir, "empty.jwks")
	os.WriteFile(empty, []byte(`{"keys": []}`), 0o600)
	inputs := map[string][]byte{}
	for _, p := range []string{twoDefaults, open, empty} {
		inputs[p], _ = os.ReadFile(p)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"jwk", "promote", "--file", path, "no-such-kid"}, `no key with kid "no-such-kid"`},
		{[]string{"jwk", "delete", "--file", path, next}, "is the signing key"},
		{[]string{"jwk", "list", "--file", bad}, `keys 0 and 1 have the same kid "x"`},
		{[]string{"jwk", "add", "--file", path, "--alg", "RS256"}, "HS256 keys only"},
		{[]string{"jwk", "add", "--file", path, "--alg", "RS256", "--layout", "generic"}, `a RS256 key would stop Slurm at its next start ("kty field must be oct")`},
		{[]string{"jwk", "add", "--file", twoDefaults}, twoDefaults + `: keys a and b both have "use":"default": Slurm refuses a set with two default keys`},
		{[]string{"jwk", "promote", "--file", twoDefaults}, "`kubectl rotate jwk promote KID` keeps it on KID only"},
		{[]string{"jwk", "add", "--file", open}, open + " has mode 0644: Slurm refuses a key file with any \"other\" permission bit (\"key file is insecure\"); run chmod o-rwx " + open},
		{[]string{"jwk", "add", "--file", empty}, empty + ": the key set is empty, so its layout cannot be detected: give it with --layout diracx, slurm or generic"},
		{[]string{"jwk", "list"}, "give exactly one of --secret NAME or --file PATH"},
	}
	for _, tt := range tests {
		r := run(t, nil, tt.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want one line with %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if now, _ := os.ReadFile(path); string(now) != string(written) {
		t.Error("bad input changed the file")
	}
	for p, b := range inputs {
		if now, _ := os.ReadFile(p); string(now) != string(b) {
			t.Errorf("bad input changed %s", p)
		}
		if _, err := os.Stat(p + ".kube-rotate.json"); err == nil {
			t.Errorf("bad input wrote records next to %s", p)
		}
	}
	// list still shows such a set, with what Slurm would make of it.
	if r := run(t, nil, "jwk", "list", "--file", open); r.code != 0 || !strings.Contains(r.stderr, "warning: "+open+" has mode 0644") {
		t.Errorf("list of a 0644 key file: exit %d, stderr %q", r.code, r.stderr)
	}
	ns := newNamespace(t)
	createSecret(t, ns, "no-jwks", map[string]string{"other": "x"})
	r := run(t, nil, "jwk", "list", "--secret", "no-jwks", "-n", ns)
	if r.code == 0 || !strings.Contains(r.stderr, `secret/no-jwks has no key "jwks.json" (keys: other): pass --key`) {
		t.Errorf("Secret without the key: %s", r.stderr)
	}
}

// TestJWKRotateFileOneStepPerRun: nothing tells when a key file has reached
// every verifier, so `jwk rotate --file` publishes in one run and promotes
// in the next; it never makes a key sign in the run that published it.
func TestJWKRotateFileOneStepPerRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slurm.jwks")
	if err := os.WriteFile(path, readFixture(t, "slurm.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := mustRun(t, "jwk", "rotate", "--file", path)
	l := listKeys(t, "--file", path)
	if len(l.Keys) != 3 || l.Keys[0].State != jwks.StateActive || l.Keys[2].State != jwks.StateNext {
		t.Fatalf("first run must only publish: %+v", l.Keys)
	}
	if !strings.Contains(first.stderr+first.stdout, "copy "+path+" to every verifier") {
		t.Errorf("first run does not say what comes next:\n%s", first.allOutput())
	}
	mustRun(t, "jwk", "rotate", "--file", path)
	if l2 := listKeys(t, "--file", path); l2.Keys[2].KID != l.Keys[2].KID || l2.Keys[2].State != jwks.StateActive || len(l2.Keys) != 3 {
		t.Errorf("second run must promote the published key: %+v", l2.Keys)
	}
}

// TestJWKRotateKilledBetweenPromoteAndRestart: kubectl-rotate is killed
// (SIGKILL) right after it promoted the new key, before the restart that
// follows; the re-run restarts the signers and finishes without
// publishing a second key.
func TestJWKRotateKilledBetweenPromoteAndRestart(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "diracx-jwks", map[string]string{"jwks.json": string(readFixture(t, "diracx.json"))})
	deployWith(t, ns, "diracx", func(s *corev1PodSpec) {
		s.Volumes = append(s.Volumes, secretVolume("jwks", "diracx-jwks"))
	})
	cmd := exec.Command(rotateBin(t), "jwk", "rotate", "--secret", "diracx-jwks", "-n", ns)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		t.Logf("first run: %s", sc.Text())
		if strings.Contains(sc.Text(), "is now the signing key") {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatal("the first run never said it promoted the key")
	}
	l := listKeys(t, "--secret", "diracx-jwks", "-n", ns)
	if len(l.Keys) != 3 || l.Keys[0].State != jwks.StateActive {
		t.Fatalf("after the kill: %+v", l.Keys)
	}
	promoted := l.Keys[0].KID
	generation := getDeployment(t, ns, "diracx").Generation

	r := mustRun(t, "jwk", "rotate", "--secret", "diracx-jwks", "-n", ns)
	l = listKeys(t, "--secret", "diracx-jwks", "-n", ns)
	if len(l.Keys) != 3 || l.Keys[0].KID != promoted || l.Keys[0].State != jwks.StateActive {
		t.Errorf("the re-run rotated again instead of finishing: %+v", l.Keys)
	}
	if g := getDeployment(t, ns, "diracx").Generation; g <= generation {
		t.Errorf("the re-run did not restart the signers (generation %d -> %d)", generation, g)
	}
	if !strings.Contains(r.stdout, "step 3 of 4 (promote): done already") || !strings.Contains(r.stdout, `deployment "diracx" successfully rolled out`) {
		t.Errorf("re-run output:\n%s", r.stdout)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), "kube-rotate-jwk-diracx-jwks-jwks.json", metav1.GetOptions{}); err == nil {
		t.Error("the finished rotation left its journal")
	}
}
