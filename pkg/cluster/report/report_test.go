package report

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

const day = 24 * time.Hour

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	b, err := os.ReadFile("../../model/policy/testdata/diracx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func certPEM(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writtenAt(t time.Time, keys ...string) []metav1.ManagedFieldsEntry {
	mt := metav1.NewTime(t)
	f := map[string]any{}
	for _, k := range keys {
		f["f:"+k] = map[string]any{}
	}
	raw, _ := json.Marshal(map[string]any{"f:data": f})
	return []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, Time: &mt, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}}
}

// cluster returns clients serving the Secrets: metadata lists from the
// metadata client, full objects from the typed one.
func cluster(t *testing.T, secrets ...*corev1.Secret) (*fake.Clientset, *metadatafake.FakeMetadataClient) {
	t.Helper()
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	var metas, objs []runtime.Object
	for _, s := range secrets {
		metas = append(metas, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: s.ObjectMeta})
		objs = append(objs, s)
	}
	return fake.NewClientset(objs...), metadatafake.NewSimpleMetadataClient(scheme, metas...)
}

func secret(ns, name string, mod func(*corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(ago(5 * day)),
		Annotations: map[string]string{}, Labels: map[string]string{}}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"token": []byte("v")}}
	if mod != nil {
		mod(s)
	}
	return s
}

func byID(r *Report) map[string]Item {
	out := map[string]Item{}
	for _, it := range r.Items {
		out[it.ID] = it
	}
	return out
}

func TestSecretsAgainstPolicy(t *testing.T) {
	diracx, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	retiringKID := "0196af4d0ab27b1299dff55b8617991d"
	retired := ago(3 * day)
	recs, _ := jwks.Records{retiringKID: {State: jwks.StateRetiring, Retired: &retired}}.Marshal()
	kc, md := cluster(t,
		secret("app", "fresh", nil),
		secret("app", "old-rotated", func(s *corev1.Secret) {
			s.Annotations[v1alpha1.RotatedAt] = ago(100 * day).Format(time.RFC3339)
			s.Annotations[v1alpha1.Method] = "--url-password DB_URL --password-generate password:32"
		}),
		secret("app", "edited", func(s *corev1.Secret) { s.ManagedFields = writtenAt(ago(80*day), "api-key", "token") }),
		secret("app", "edited-previous", func(s *corev1.Secret) { s.Labels[v1alpha1.CompanionOf] = "edited" }),
		secret("app", "synced", func(s *corev1.Secret) {
			s.CreationTimestamp = metav1.NewTime(ago(200 * day))
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "synced", UID: "u"}}
		}),
		secret("app", "cert", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Annotations["cert-manager.io/certificate-name"] = "web"
			s.Data = map[string][]byte{corev1.TLSCertKey: certPEM(t, ago(400*day), ago(day)), corev1.TLSPrivateKeyKey: []byte("k")}
		}),
		secret("diracx", "diracx-jwks", func(s *corev1.Secret) {
			s.Labels[v1alpha1.JWKSKeyLabel] = "jwks.json"
			s.Annotations[jwks.RecordsAnnotation] = string(recs)
			s.Data = map[string][]byte{"jwks.json": diracx}
		}),
		secret("diracx", "unlabelled-jwks", func(s *corev1.Secret) { s.Data = map[string][]byte{"keys.json": diracx} }),
	)
	p := testPolicy(t)
	// Rules naming a key-set Secret make it read even without the label.
	p.Spec.Rules = append(p.Spec.Rules, policy.Rule{Name: "named", Match: policy.Match{Kind: policy.KindJWK, Names: []string{"unlabelled-*"}}})
	r, err := Build(context.Background(), Options{Policy: p, Kube: kc, Metadata: md, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	items := byID(r)
	tests := []struct {
		id, state, source, rule, command string
	}{
		{"secret:app/fresh", "ok", "creationTimestamp (lower bound)", "default", "kubectl rotate secret fresh -n app --key KEY --generate random:32"},
		{"secret:app/old-rotated", "overdue", "rotated-at", "default", "kubectl rotate secret old-rotated -n app --url-password DB_URL --password-generate password:32"},
		{"secret:app/edited", "warn", "managedFields", "default", "kubectl rotate secret edited -n app --key api-key --key token --generate random:32"},
		{"secret:app/synced", "overdue", "creationTimestamp (lower bound)", "default", "kubectl rotate secret synced -n app --force-sync"},
		{"tls:app/cert", "expired", "certificate", "default", "cmctl renew web -n app"},
		{"jwk:diracx/diracx-jwks/jwks.json#signing", "overdue", "kid", "signing-keys", "kubectl rotate jwk rotate --secret diracx-jwks -n diracx --delete-older-than 1d"},
		{"jwk:diracx/diracx-jwks/jwks.json#retiring:" + retiringKID, "overdue", "kid", "signing-keys", "kubectl rotate jwk delete --secret diracx-jwks -n diracx " + retiringKID},
		{"jwk:diracx/unlabelled-jwks/keys.json#signing", "overdue", "kid", "signing-keys", "kubectl rotate jwk rotate --secret unlabelled-jwks -n diracx --key keys.json --delete-older-than 1d"},
	}
	for _, tt := range tests {
		it, ok := items[tt.id]
		if !ok {
			t.Errorf("%s: not in the report (have %v)", tt.id, keys(items))
			continue
		}
		if string(it.State) != tt.state || it.AgeSource != tt.source || it.Rule != tt.rule || len(it.Commands) == 0 || it.Commands[0] != tt.command {
			t.Errorf("%s: state %s, source %q, rule %s, commands %q\nwant %s, %q, %s, %q", tt.id, it.State, it.AgeSource, it.Rule, it.Commands, tt.state, tt.source, tt.rule, tt.command)
		}
	}
	if _, ok := items["secret:app/edited-previous"]; ok {
		t.Error("a companion Secret is reported as a credential of its own")
	}
	if it := items["jwk:diracx/diracx-jwks/jwks.json#retiring:"+retiringKID]; !strings.Contains(it.Reason, "overlap 1d has passed") {
		t.Errorf("retiring key reason %q", it.Reason)
	}
	if got := r.Summary; got.Total != len(r.Items) || got.Expired != 1 || got.Warn != 1 || got.OK != 1 {
		t.Errorf("summary %+v", got)
	}
	if r.Items[0].State != policy.StateExpired {
		t.Errorf("the report does not start with the worst item: %s", r.Items[0].ID)
	}
	if !r.Failing("overdue") || !r.Failing("warn") || r.Failing("") {
		t.Error("Failing levels")
	}
	// Values were read only for the TLS Secret and the key sets.
	for _, a := range kc.Actions() {
		if g, ok := a.(k8stesting.GetAction); ok && g.GetName() != "unlabelled-jwks" {
			t.Errorf("secret/%s was read in full", g.GetName())
		}
	}
	// Nothing in the report is a value.
	out, _ := json.Marshal(r)
	for _, v := range []string{"hHiAardFpYY2QsLyZSxxMvIEz7LA4coYJHr", `"k"`} {
		if strings.Contains(string(out), v) {
			t.Errorf("the report holds key material %q", v)
		}
	}
}

func keys(m map[string]Item) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestJWKSFileAndKops(t *testing.T) {
	dir := t.TempDir()
	slurm, err := os.ReadFile("../../model/jwks/testdata/slurm.json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "slurm.jwks")
	if err := os.WriteFile(file, slurm, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := ago(40 * day)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	vctx := vfs.NewTestingVFSContext()
	state := "memfs://report-" + t.Name()
	kopstest.Seed(t, state, vctx, "kubernetes-ca", "service-account")
	p := testPolicy(t)
	tests := []struct {
		name  string
		at    time.Time
		state map[string]policy.State
	}{
		{"now", time.Now(), map[string]policy.State{"kops-keyset:" + kopstest.ClusterName + "/kubernetes-ca": policy.StateOK,
			"kops-keyset:" + kopstest.ClusterName + "/service-account": policy.StateOK}},
		{"in 100 days", time.Now().Add(100 * day), map[string]policy.State{"kops-keyset:" + kopstest.ClusterName + "/kubernetes-ca": policy.StateOK,
			"kops-keyset:" + kopstest.ClusterName + "/service-account": policy.StateOverdue}},
		{"in 400 days", time.Now().Add(400 * day), map[string]policy.State{"kops-keyset:" + kopstest.ClusterName + "/kubernetes-ca": policy.StateOverdue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Build(context.Background(), Options{Policy: p, KopsState: state, KopsCluster: kopstest.ClusterName, VFS: vctx, JWKSFiles: []string{file}, Now: tt.at})
			if err != nil {
				t.Fatal(err)
			}
			items := byID(r)
			for id, want := range tt.state {
				it := items[id]
				if it.State != want || !strings.HasPrefix(it.AgeSource, "primary keypair") {
					t.Errorf("%s: %s (%s), want %s", id, it.State, it.AgeSource, want)
				}
				if want == policy.StateOverdue && (len(it.Commands) != 1 || it.Commands[0] != "kops-rotate run --yes --name "+kopstest.ClusterName+" --state "+state) {
					t.Errorf("%s: commands %q", id, it.Commands)
				}
			}
			sig := items["jwk-file:"+file+"#signing"]
			if sig.KID != "1f0e3dad-9990-4b2c-8a3e-2f1c0b6a7d15" || sig.AgeSource != "file mtime (lower bound)" || sig.Commands[0] != "kubectl rotate jwk rotate --file "+file {
				t.Errorf("file signing key: %+v", sig)
			}
		})
	}
}

func TestBadSources(t *testing.T) {
	p := testPolicy(t)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"missing file", Options{JWKSFiles: []string{"/nonexistent/jwks.json"}}, "key-set file /nonexistent/jwks.json"},
		{"kops without state", Options{KopsCluster: "c.example.com"}, "no state store"},
		{"unknown cluster", Options{KopsState: "memfs://empty", KopsCluster: "c.example.com", VFS: vfs.NewTestingVFSContext()}, `cluster "c.example.com" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Policy = p
			_, err := Build(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, tt.want)
			}
		})
	}
}

// TestKeySetsAsTheirSystemsReadThem: status follows each system's signer
// rule and says what the system would make of the set.
func TestKeySetsAsTheirSystemsReadThem(t *testing.T) {
	p := testPolicy(t)
	dir := t.TempDir()
	k16 := `"k":"MDEyMzQ1Njc4OWFiY2RlZg"`
	diracx, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]struct {
		doc  string
		mode os.FileMode
	}{
		"slurm-exp.jwks":    {`{"keys":[{"alg":"HS256","kty":"oct","kid":"old",` + k16 + `,"exp":1700000000},{"alg":"hs256","kty":"oct","kid":"cur",` + k16 + `,"use":"default","exp":1700000000}]}`, 0o600},
		"slurm-open.jwks":   {`{"keys":[{"alg":"HS256","kty":"oct","kid":"a",` + k16 + `}]}`, 0o644},
		"diracx-none.json":  {regexp.MustCompile(`"sign",\s*`).ReplaceAllString(string(diracx), ""), 0o600},
		"diracx-eddsa.json": {strings.Replace(string(diracx), `"alg": "Ed25519"`, `"alg": "EdDSA"`, 1), 0o600},
	}
	var paths []string
	for name, f := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(f.doc), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, f.mode); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	r, err := Build(context.Background(), Options{Policy: p, JWKSFiles: paths, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	items := byID(r)
	for _, tt := range []struct {
		id      string
		state   policy.State
		kid     string
		reason  string
		command string
	}{
		{"jwk-file:" + dir + "/slurm-exp.jwks#signing", policy.StateExpired, "cur", "key (exp) expired", "kubectl rotate jwk rotate"},
		{"jwk-file:" + dir + "/slurm-exp.jwks#expired:old", policy.StateOK, "old", "Slurm rejects its tokens; delete it", "kubectl rotate jwk delete"},
		{"jwk-file:" + dir + "/slurm-open.jwks#signing", policy.StateWarn, "a", "has mode 0644: Slurm refuses a key file with any \"other\" permission bit", "kubectl rotate jwk rotate"},
		{"jwk-file:" + dir + "/diracx-none.json#signing", policy.StateOverdue, "", "DiracX issues no token", "kubectl rotate jwk promote --file " + dir + "/diracx-none.json 0196af4d0ab27b1299dff55b8617991d"},
		{"jwk-file:" + dir + "/diracx-eddsa.json#signing", policy.StateOverdue, "0196af4d311579728287cb89c24514e9", "DiracX v0.0.14 and later reject it", "kubectl rotate jwk rotate"},
	} {
		it, ok := items[tt.id]
		if !ok {
			t.Errorf("no item %s", tt.id)
			continue
		}
		if it.State != tt.state || it.KID != tt.kid || !strings.Contains(it.Reason, tt.reason) || len(it.Commands) != 1 || !strings.HasPrefix(it.Commands[0], tt.command) {
			t.Errorf("%s: state %s kid %q reason %q commands %q; want %s %q %q %q", tt.id, it.State, it.KID, it.Reason, it.Commands, tt.state, tt.kid, tt.reason, tt.command)
		}
	}
	for _, it := range r.Items {
		if it.KeyState == string(jwks.StateActive) && strings.HasSuffix(it.File, "diracx-none.json") {
			t.Errorf("a DiracX set without a sign key has an active key: %s", it.KID)
		}
	}
}
