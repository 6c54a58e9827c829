//go:build e2e

package kops

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ciliumLine is a key line as Cilium's agent takes it (LoadIPSecKeys in
// cilium/cilium pkg/datapath/linux/ipsec/ipsec_linux.go: "<spi>[+]
// <aead-algo> <hex key> <icv-len>", SPI 1..15), here the form Cilium's
// docs generate: rfc4106(gcm(aes)), 20 bytes, ICV 128. Written out on its
// own rather than through kops-rotate's parser.
var ciliumLine = regexp.MustCompile(`^([1-9]|1[0-5])(\+?) rfc4106\(gcm\(aes\)\) ([0-9a-f]{40}) 128$`)

// ciliumKeyOf checks a key line and returns its SPI, "+" and key hex
// (kept in memory: never logged).
func ciliumKeyOf(t *testing.T, what, line string) (spi int, plus bool, key string) {
	t.Helper()
	m := ciliumLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("%s is not a key line Cilium parses (%d fields)", what, len(strings.Fields(line)))
	}
	spi, _ = strconv.Atoi(m[1])
	return spi, m[2] == "+", m[3]
}

// ciliumEnv is a bare-metal cluster (KOPS_FEATURE_FLAGS=Metal: the real
// kops update cluster --yes applies without a cloud, as
// TestRealUpdateOnAMetalCluster does) with Cilium IPsec encryption, whose
// ciliumpassword secret the real `kops create secret ciliumpassword -f
// FILE` created with key id spi. The wrapper runs the real kops for
// update and records rolling-update; fail, while it exists, makes
// rolling-update fail.
func ciliumEnv(t *testing.T, spi string) (e *env, fail string) {
	t.Helper()
	metalAssets(t)
	e = newEnv(t)
	e.createCluster(nil, func(spec string) string {
		spec = strings.Replace(spec, "\nspec:\n", "\nspec:\n  masterPublicName: api."+clusterName+"\n", 1)
		return strings.Replace(spec, "\n    cilium:\n", "\n    cilium:\n      enableEncryption: true\n", 1)
	}, "--cloud", "metal", "--zones", "main", "--networking", "cilium", "--dns", "none")
	if spec := e.kopsOK(nil, "get", "cluster", clusterName, "--state", e.state, "-o", "yaml"); !strings.Contains(spec, "enableEncryption: true") {
		t.Fatal("the registered spec does not enable Cilium encryption")
	}
	// The key file as kOps' docs/networking/cilium.md makes it, removed
	// once kops stored it.
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.dir, "ciliumpassword.yaml")
	if err := os.WriteFile(file, []byte("keys: "+spi+" rfc4106(gcm(aes)) "+hex.EncodeToString(b)+" 128\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.kopsOK(nil, "create", "secret", "ciliumpassword", "-f", file, "--name", clusterName, "--state", e.state)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	fail = filepath.Join(e.dir, "roll-fails")
	e.installKops(`if [ "$1" = update ]; then KUBECONFIG=` + filepath.Join(e.dir, "kubeconfig") + ` ` + e.kops + ` "$@" >/dev/null 2>&1 || exit 1; fi
    if [ "$1" = rolling-update ] && [ -f ` + fail + ` ]; then rm ` + fail + `; echo "rolling-update: node not ready" >&2; exit 1; fi`)
	return e, fail
}

// secretLine is the ciliumpassword secret's key line, as the real kops
// prints it (kops get secrets ciliumpassword -o plaintext).
func (e *env) secretLine() string {
	e.t.Helper()
	out := e.kopsOK(nil, "get", "secrets", "ciliumpassword", "--name", clusterName, "--state", e.state, "-o", "plaintext")
	var doc map[string]string
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil || len(doc) != 1 || doc["keys"] == "" {
		e.t.Fatalf("kops get secrets ciliumpassword -o plaintext is not the document `keys: <line>` (%d entries)", len(doc))
	}
	return doc["keys"]
}

// addon is what the real kops update cluster rendered: the key line of the
// cilium-ipsec-keys Secret in the Cilium addon, and the addon's manifest
// hash and needsRollingUpdate in the bootstrap channel.
func (e *env) addon() (line, hash, needsRollingUpdate string) {
	e.t.Helper()
	addons := filepath.Join(e.dir, "state", clusterName, "addons")
	b, err := os.ReadFile(filepath.Join(addons, "networking.cilium.io", "k8s-1.16-v1.15.yaml"))
	if err != nil {
		e.t.Fatalf("the Cilium addon kops update cluster writes: %v", err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var s struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			// stringData, as the template pastes the secret (k8s-1.16-v1.15.yaml.template).
			StringData map[string]string `json:"stringData"`
		}
		if yaml.Unmarshal([]byte(doc), &s) == nil && s.Kind == "Secret" && s.Metadata.Name == "cilium-ipsec-keys" && s.Metadata.Namespace == "kube-system" {
			line = s.StringData["keys"]
		}
	}
	if line == "" {
		e.t.Fatal("the Cilium addon has no kube-system/cilium-ipsec-keys Secret with stringData.keys")
	}
	b, err = os.ReadFile(filepath.Join(addons, "bootstrap-channel.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	var ch struct {
		Spec struct {
			Addons []struct{ Name, ManifestHash, NeedsRollingUpdate string }
		}
	}
	if err := yaml.Unmarshal(b, &ch); err != nil {
		e.t.Fatal(err)
	}
	for _, a := range ch.Spec.Addons {
		if a.Name == "networking.cilium.io" {
			return line, a.ManifestHash, a.NeedsRollingUpdate
		}
	}
	e.t.Fatal("the bootstrap channel has no networking.cilium.io addon")
	return
}

// noKey fails when s shows a key.
func noKey(t *testing.T, what, s string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(s, k) || strings.Contains(s, k[:16]) {
			t.Errorf("%s shows a Cilium IPsec key", what)
		}
	}
}

// The rotation on a state store the real kops made: the key id goes up by
// one per rotation, 15 wraps to 1, the "+" and Cilium's format are kept,
// the real kops update cluster puts the new key into the
// cilium-ipsec-keys Secret it deploys, a failed rolling update resumes
// without a second key, and kops delete cluster accepts the record.
func TestCiliumIPsecRotationWithTheRealKops(t *testing.T) {
	e, fail := ciliumEnv(t, "14+")
	spi0, plus0, key0 := ciliumKeyOf(t, "the secret kops created", e.secretLine())
	if spi0 != 14 || !plus0 {
		t.Fatalf("kops created key id %d (+ %t), want 14+", spi0, plus0)
	}

	// Without --yes: the plan, and nothing changes.
	r := e.run("cilium-ipsec-key")
	if r.code != 0 || !strings.Contains(r.stdout, "Rotation: key id 14 -> 15.") ||
		!strings.Contains(r.stdout, "kops update cluster --yes --name "+clusterName+" --state "+e.state) ||
		!strings.Contains(r.stdout, "kops rolling-update cluster --yes --name "+clusterName+" --state "+e.state) {
		t.Fatalf("plan: exit code %d", r.code)
	}
	if _, _, key := ciliumKeyOf(t, "the secret after the plan", e.secretLine()); key != key0 || len(e.calls()) != 0 {
		t.Fatal("the plan changed something")
	}

	// With --yes; the rolling update fails once.
	if err := os.WriteFile(fail, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("cilium-ipsec-key", "--yes")
	if r.code == 0 || !strings.Contains(r.stderr, "re-run to resume at rolling-update-cluster (the key is not written again)") {
		t.Fatalf("failing rolling update: exit code %d", r.code)
	}
	line1 := e.secretLine()
	spi1, plus1, key1 := ciliumKeyOf(t, "the secret after the first rotation", line1)
	if spi1 != 15 || !plus1 || key1 == key0 {
		t.Fatalf("after the first rotation: key id %d (+ %t, new key %t), want 15+ and a new key", spi1, plus1, key1 != key0)
	}
	addonLine, hash1, nru := e.addon()
	if addonLine != line1 {
		t.Error("the real kops update cluster did not deploy the new key in cilium-ipsec-keys")
	}
	if nru != "all" {
		t.Errorf("networking.cilium.io needsRollingUpdate = %q, want all (the nodes channels marks for kops rolling-update)", nru)
	}
	// The re-run does only the rolling update: no second key.
	r = e.run("cilium-ipsec-key", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "key id 14 -> 15") || !strings.Contains(r.stderr+r.stdout, "Resuming the Cilium IPsec key rotation") {
		t.Fatalf("resume: exit code %d", r.code)
	}
	if e.secretLine() != line1 {
		t.Fatal("the resumed run wrote the key again")
	}
	upd, roll := "update cluster --yes", "rolling-update cluster --yes"
	if got := strings.Join(e.calls(), "\n"); got != strings.Join([]string{upd, roll, roll}, "\n") {
		t.Errorf("kops calls:\n%s", got)
	}

	// The second rotation: 15 wraps to 1.
	r = e.run("cilium-ipsec-key", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("second rotation: exit code %d", r.code)
	}
	var rep struct {
		Kind           string
		FromSPI, ToSPI int
		Change         *struct{ OldSPI, NewSPI int }
	}
	if err := yaml.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Kind != "CiliumIPsecKeyRotation" || rep.FromSPI != 15 || rep.ToSPI != 1 || rep.Change == nil || rep.Change.NewSPI != 1 {
		t.Errorf("-o json: %v %+v", err, rep)
	}
	line2 := e.secretLine()
	spi2, plus2, key2 := ciliumKeyOf(t, "the secret after the second rotation", line2)
	if spi2 != 1 || !plus2 || key2 == key1 || key2 == key0 {
		t.Fatalf("after the second rotation: key id %d (+ %t), want 1+ and a new key", spi2, plus2)
	}
	addonLine, hash2, _ := e.addon()
	if addonLine != line2 {
		t.Error("the real kops update cluster did not deploy the second key in cilium-ipsec-keys")
	}
	if hash2 == hash1 {
		t.Error("the addon's manifest hash did not change: channels would not apply the new key")
	}
	if got := e.calls(); len(got) != 5 || got[3] != upd || got[4] != roll {
		t.Errorf("kops calls after the second rotation: %q", got)
	}

	// Nothing printed a key; the record holds none.
	rec, err := os.ReadFile(filepath.Join(e.dir, "state", clusterName, "backups", "kops-rotate", "cilium-ipsec.yaml"))
	if err != nil {
		t.Fatalf("the record: %v", err)
	}
	for _, out := range []string{r.stdout, r.stderr, string(rec)} {
		noKey(t, "kops-rotate's output or record", out, key0, key1, key2)
	}
	// kops delete cluster accepts the record (backups/).
	e.deleteOK()
}

// Bad input is refused in one line naming the object and the fix, and
// nothing changes.
func TestCiliumIPsecRefusedWithTheRealKops(t *testing.T) {
	e, _ := ciliumEnv(t, "0")
	r := e.run("cilium-ipsec-key", "--yes")
	// The last stderr line (kOps' libraries log the feature flags before it).
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if want := "error: secret ciliumpassword of cluster " + clusterName + ": the Cilium IPsec key id 0 is out of range: Cilium takes 1 to 15"; r.code == 0 || lines[len(lines)-1] != want {
		t.Fatalf("key id 0: exit code %d, want one line %q", r.code, want)
	}
	if len(e.calls()) != 0 {
		t.Error("kops ran")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state", clusterName, "backups", "kops-rotate", "cilium-ipsec.yaml")); !os.IsNotExist(err) {
		t.Errorf("a record was written: %v", err)
	}
}
