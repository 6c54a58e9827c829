//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/record"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pkg", "jwks", "testdata", name))
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
	h, _ := record.ReadHistory(s.Annotations)
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
	add := mustRun(t, "jwk", "add", "--file", path, "-o", "json")
	var l keyList
	if err := json.Unmarshal([]byte(add.stdout), &l); err != nil || l.Layout != "slurm" || len(l.Keys) != 3 || l.Keys[1].State != jwks.StateNext {
		t.Fatalf("add: %+v %v", l, err)
	}
	next := l.Keys[1].KID
	mustRun(t, "jwk", "promote", "--file", path)
	l = listKeys(t, "--file", path)
	if l.Keys[2].KID != next || l.Keys[2].State != jwks.StateActive {
		t.Errorf("promoted Slurm key is not last and active: %+v", l.Keys)
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
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"jwk", "promote", "--file", path, "no-such-kid"}, `no key with kid "no-such-kid"`},
		{[]string{"jwk", "delete", "--file", path, next}, "is the signing key"},
		{[]string{"jwk", "list", "--file", bad}, `keys 0 and 1 have the same kid "x"`},
		{[]string{"jwk", "add", "--file", path, "--alg", "RS256"}, "HS256 keys only"},
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
	ns := newNamespace(t)
	createSecret(t, ns, "no-jwks", map[string]string{"other": "x"})
	r := run(t, nil, "jwk", "list", "--secret", "no-jwks", "-n", ns)
	if r.code == 0 || !strings.Contains(r.stderr, `secret/no-jwks has no key "jwks.json" (keys: other): pass --key`) {
		t.Errorf("Secret without the key: %s", r.stderr)
	}
}
