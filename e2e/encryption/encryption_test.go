//go:build e2e

// Package encryption checks the EncryptionConfiguration edits of
// pkg/model/encryptionconfig against a real kube-apiserver that encrypts
// with them (--encryption-provider-config, reloaded automatically), reading
// what it stored straight from etcd.
package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	clusterenc "github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

const initial = `# kube-apiserver --encryption-provider-config
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: %s
              secret: %s
      - identity: {}
  - resources:
      - events
    providers:
      - identity: {}
`

type env struct {
	t       *testing.T
	c       *cluster.Cluster
	kc      kubernetes.Interface
	cfgPath string
	ns      string
	// kops is the state store holding the configuration, nil when the
	// API server's file is the configuration (a self-managed control
	// plane).
	kops *kops.Store
}

// TestGracefulRotationOnARealAPIServer stages, promotes, rewrites and
// retires an aescbc key on a real kube-apiserver, and after every stage
// reads from etcd which key each Secret is stored under: with the
// configuration in the API server's own file (self-managed control
// planes), and in a kOps state store's encryptionconfig secret, created by
// the real kops CLI, edited through kOps' libraries and placed on the
// control plane as nodeup places it.
func TestGracefulRotationOnARealAPIServer(t *testing.T) {
	for _, where := range []string{"file", "kops"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			rotate(t, where)
		})
	}
}

func rotate(t *testing.T, where string) {
	ctx := context.Background()
	dir := t.TempDir()
	old, oldSecret, err := encryptionconfig.NewKey("aescbc", time.Now().Add(-24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfgPath: filepath.Join(dir, "encryption.yaml"), ns: "enc"}
	first := []byte(fmt.Sprintf(initial, old, oldSecret))
	if where == "kops" {
		e.kops = kopsStore(t, dir, first)
		data, _, err := e.kops.EncryptionConfig(ctx)
		if err != nil || !bytes.Equal(data, first) {
			t.Fatalf("the secret kops create secret encryptionconfig wrote does not read back as the file: %v", err)
		}
	}
	if err := os.WriteFile(e.cfgPath, first, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Up(ctx, cluster.Options{StateDir: filepath.Join(dir, "cluster"), Attached: true, Nodes: 1, EncryptionConfig: e.cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Down() })
	e.c = c
	if e.kc, err = c.Clientset(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 5 {
		want[e.create(fmt.Sprintf("before-%d", i))] = old
	}
	e.checkStored(want)

	// Stage: the new key second. The old key still writes.
	cfg := e.config()
	p, _ := cfg.Provider("secrets")
	name, secret, err := encryptionconfig.NewKey(p.Type, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(must(cfg.Stage(p, name, secret)))
	want[e.create("staged")] = old
	e.checkStored(want)

	// Promote: the new key first. New writes use it; the old key still reads.
	cfg = e.config()
	p, _ = cfg.Provider("secrets")
	e.apply(must(cfg.Promote(p)))
	want[e.create("promoted")] = name
	e.checkStored(want)

	// Rewrite (pkg/cluster/encryption): pages of 2, interrupted after the
	// first page as a killed run would be, then resumed from its journal.
	for i := range 5 {
		want[e.create(fmt.Sprintf("more-%d", i))] = name
	}
	e.rewrite(name, want)
	e.checkStored(want)
	// Retire: the old key goes; every Secret still reads back unchanged.
	cfg = e.config()
	p, _ = cfg.Provider("secrets")
	e.apply(must(cfg.Retire(p)))
	for s := range want {
		got, err := e.kc.CoreV1().Secrets(e.ns).Get(ctx, s, metav1.GetOptions{})
		if err != nil || string(got.Data["value"]) != "value of "+s {
			t.Errorf("secret %s after retire: %v", s, err)
		}
	}
	e.checkStored(want)
}

// rewrite stores every Secret again through pkg/cluster/encryption: a first
// run is cancelled once a page is journaled; the re-run resumes from the
// journal and finishes, and the two runs together rewrote each Secret
// that was under the old key.
func (e *env) rewrite(key string, want map[string]string) {
	e.t.Helper()
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.c.Kubeconfig)
	if err != nil {
		e.t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	res, err := clusterenc.Resolve(e.kc.Discovery(), []string{"secrets"})
	if err != nil || len(res) != 1 || res[0].String() != "secrets" {
		e.t.Fatalf("resolve secrets: %v %v", res, err)
	}
	journal := func() *procedure.ConfigMapJournal {
		return &procedure.ConfigMapJournal{Client: e.kc, Namespace: "kube-system", Name: "kube-rotate-rewrite-e2e"}
	}
	var progress strings.Builder
	cut, cancel := context.WithCancel(ctx)
	pages := 0
	o := clusterenc.RewriteOptions{Client: dyn, Resources: res, PageSize: 2, Workers: 4, Journal: journal(), Name: "rewrite for " + key,
		Progress: writerFunc(func(p []byte) (int, error) {
			pages++
			if pages == 1 {
				cancel() // after the first page was journaled
			}
			return progress.Write(p)
		}), ProgressEvery: time.Nanosecond}
	if _, err := clusterenc.Rewrite(cut, o); err == nil {
		e.t.Fatal("the interrupted rewrite finished")
	}
	firstRun := progress.Len()
	o.Journal, o.Progress = journal(), &progress
	sums, err := clusterenc.Rewrite(ctx, o)
	if err != nil {
		e.t.Fatalf("resumed rewrite: %v\n%s", err, progress.String())
	}
	e.t.Logf("rewrite progress:\n%s", progress.String())
	// The re-run went on from the journaled page (2 done), not from zero.
	if resumed := progress.String()[firstRun:]; !strings.HasPrefix(resumed, "secrets: 4 rewritten") {
		e.t.Errorf("the re-run did not resume after the journaled page:\n%s", resumed)
	}
	if len(sums) != 1 || sums[0].Rewritten+sums[0].Conflicts < int64(len(want)) {
		e.t.Errorf("summary %+v, want every one of %d Secrets stored again", sums, len(want))
	}
	for s := range want {
		want[s] = key
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func (e *env) config() *encryptionconfig.Config {
	e.t.Helper()
	if e.kops != nil {
		_, c, err := e.kops.EncryptionConfig(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		return c
	}
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := encryptionconfig.Parse(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// kopsStore is a kOps state store whose encryptionconfig secret the real
// kops CLI created from first.
func kopsStore(t *testing.T, dir string, first []byte) *kops.Store {
	t.Helper()
	bin := os.Getenv("KOPS")
	if bin == "" {
		t.Fatal("KOPS is not set: run the suite with `make e2e` (it builds the kops CLI and sets KOPS)")
	}
	state := "file://" + filepath.Join(dir, "kops-state")
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca")
	src := filepath.Join(dir, "first.yaml")
	if err := os.WriteFile(src, first, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "create", "secret", "encryptionconfig", "-f", src, "--name", kopstest.ClusterName, "--state", state).CombinedOutput(); err != nil {
		t.Fatalf("kops create secret encryptionconfig: %v\n%s", err, out)
	}
	s, err := kops.Open(context.Background(), state, kopstest.ClusterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apply writes the configuration and waits until the API server reports
// it loaded exactly these bytes: apiserver_encryption_config_controller_
// last_config_info carries the sha256 of the file it applied
// (k8s.io/apiserver pkg/server/options/encryptionconfig/config.go).
func (e *env) apply(b []byte) {
	e.t.Helper()
	if e.kops != nil {
		was, _, err := e.kops.EncryptionConfig(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.kops.ReplaceEncryptionConfig(context.Background(), was, b); err != nil {
			e.t.Fatal(err)
		}
		// nodeup writes the secret's data to the control plane's file,
		// byte for byte, mode 0600 (nodeup/pkg/model/kube_apiserver.go).
		if b, _, err = e.kops.EncryptionConfig(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.WriteFile(e.cfgPath, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	seen := map[string]string{}
	for {
		pending, err := clusterenc.Loaded(context.Background(), e.kc, b, seen)
		if err == nil && len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("kube-apiserver did not load the new encryption configuration within 3 minutes: pending %v, %v", pending, err)
		}
		time.Sleep(2 * time.Second)
	}
}

func (e *env) create(name string) string {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"value": []byte("value of " + name)}}
	if _, err := e.kc.CoreV1().Secrets(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return name
}

// checkStored reads each Secret from etcd (its v3 JSON gateway) and checks
// the prefix kube-apiserver stored it with: k8s:enc:aescbc:v1:<key>:.
func (e *env) checkStored(want map[string]string) {
	e.t.Helper()
	for name, key := range want {
		v := e.etcdGet("/registry/secrets/" + e.ns + "/" + name)
		if prefix := "k8s:enc:aescbc:v1:" + key + ":"; !bytes.HasPrefix(v, []byte(prefix)) {
			got := v
			if len(got) > 40 {
				got = got[:40]
			}
			e.t.Errorf("etcd holds secret %s as %q..., want it under %s", name, got, prefix)
		}
		if bytes.Contains(v, []byte("value of "+name)) {
			e.t.Errorf("etcd holds secret %s in clear", name)
		}
	}
}

func (e *env) etcdGet(key string) []byte {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	resp, err := http.Post(e.c.EtcdURL()+"/v3/kv/range", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Kvs) != 1 {
		e.t.Fatalf("etcd range %s: %v (%d kvs)", key, err, len(out.Kvs))
	}
	v, err := base64.StdEncoding.DecodeString(out.Kvs[0].Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}
