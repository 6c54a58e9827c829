//go:build e2e

package encryption

import (
	"bufio"
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
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
)

// cliEnv runs kubectl-rotate (or kops-rotate) against a real kube-apiserver
// that encrypts with the configuration the commands edit.
type cliEnv struct {
	*env
	bin  string
	args []string // the target flags (--config F --kubeconfig K)
	// environ is added to the commands' environment.
	environ []string
}

type result struct {
	out  string
	code int
}

func (e *cliEnv) run(verb string, extra ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(append(e.prefix(verb), extra...), e.args...)...)
	cmd.Env = append(os.Environ(), e.environ...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("%s %s: exit %d\n%s", filepath.Base(e.bin), verb, code, out.String())
	return result{out.String(), code}
}

func (e *cliEnv) prefix(verb string) []string {
	if filepath.Base(e.bin) == "kops-rotate" {
		return []string{"encryption-config", verb}
	}
	return []string{"encryption", verb}
}

func (e *cliEnv) mustRun(verb string, extra ...string) string {
	e.t.Helper()
	r := e.run(verb, extra...)
	if r.code != 0 {
		e.t.Fatalf("%s failed (exit %d):\n%s", verb, r.code, r.out)
	}
	return r.out
}

// refused checks that verb fails with one line naming want, and that the
// configuration is unchanged.
func (e *cliEnv) refused(verb, want string, extra ...string) {
	e.t.Helper()
	before := e.doc()
	r := e.run(verb, extra...)
	if r.code == 0 {
		e.t.Fatalf("%s was not refused:\n%s", verb, r.out)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 1 || !strings.Contains(r.out, want) {
		e.t.Errorf("%s: want one error line naming %q, got:\n%s", verb, want, r.out)
	}
	if !bytes.Equal(before, e.doc()) {
		e.t.Errorf("%s was refused but changed the configuration", verb)
	}
}

// doc is the configuration as the commands see it.
func (e *cliEnv) doc() []byte {
	e.t.Helper()
	if e.kops != nil {
		b, _, err := e.kops.EncryptionConfig(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		return b
	}
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *cliEnv) status() *v1alpha1.EncryptionRotationStatus {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(e.prefix("status"), append([]string{"-o", "json"}, e.args...)...)...)
	cmd.Env = append(os.Environ(), e.environ...)
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	s := &v1alpha1.EncryptionRotationStatus{}
	if err := json.Unmarshal(out, s); err != nil {
		e.t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return s
}

// secrets creates n Secrets in parallel and returns their names.
func (e *cliEnv) secrets(prefix string, n int) []string {
	e.t.Helper()
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"value": []byte("value of " + name)}}
			if _, err := e.kc.CoreV1().Secrets(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}(names[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	return names
}

// readBack checks that every Secret reads back unchanged through the API.
func (e *cliEnv) readBack(want map[string]string) {
	e.t.Helper()
	list, err := e.kc.CoreV1().Secrets(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range list.Items {
		got[s.Name] = string(s.Data["value"])
	}
	for name := range want {
		if got[name] != "value of "+name {
			e.t.Errorf("secret %s does not read back unchanged", name)
		}
	}
}

func all(want map[string]string, key string) {
	for k := range want {
		want[k] = key
	}
}

func newCLIEnv(t *testing.T, where string) (*cliEnv, string, []byte) {
	ctx := context.Background()
	dir := t.TempDir()
	old, oldSecret, err := encryptionconfig.NewKey("aescbc", time.Now().Add(-24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &cliEnv{env: &env{t: t, cfgPath: filepath.Join(dir, "encryption.yaml"), ns: "enc"}}
	first := []byte(fmt.Sprintf(initial, old, oldSecret))
	if where == "kops" {
		e.kops = kopsStore(t, dir, first)
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
	return e, old, first
}

// TestKubectlRotateEncryption takes a self-managed control plane's file
// through every stage with `kubectl rotate encryption`, on a real
// kube-apiserver that reloads it, reading from etcd after every stage which
// key each Secret is stored under; the rewrite is killed with SIGKILL and
// re-run; then each stage is rolled back, back to the first file byte for
// byte. Bad input is refused in one line with nothing changed.
func TestKubectlRotateEncryption(t *testing.T) {
	t.Parallel()
	e, old, first := newCLIEnv(t, "file")
	bin, err := exec.LookPath("kubectl-rotate")
	if err != nil {
		t.Fatal("kubectl-rotate is not on PATH: run with `make e2e`")
	}
	e.bin, e.args = bin, []string{"--config", e.cfgPath, "--kubeconfig", e.c.Kubeconfig, "--etcd-endpoints", e.c.EtcdURL()}
	want := map[string]string{}
	for _, n := range e.secrets("s", 300) {
		want[n] = old
	}
	e.checkStored(want)
	oldPrefix := "k8s:enc:aescbc:v1:" + old + ":"
	if st := e.status(); st.Stored[oldPrefix] != 300 {
		t.Errorf("status counts %v in etcd, want 300 under %s", st.Stored, oldPrefix)
	}

	// Bad input: nothing to rotate, not YAML, a retire before anything.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	for _, c := range []struct{ doc, want string }{
		{"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n", "nothing kube-rotate can rotate"},
		{"kind: EncryptionConfiguration\n  resources: [", "not YAML"},
	} {
		if err := os.WriteFile(bad, []byte(c.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		r := (&cliEnv{env: e.env, bin: e.bin, args: []string{"--config", bad, "--kubeconfig", e.c.Kubeconfig}}).run("stage")
		if r.code == 0 || !strings.Contains(r.out, c.want) || !strings.Contains(r.out, bad) || strings.Count(strings.TrimSpace(r.out), "\n") != 0 {
			t.Errorf("stage on a bad file: want one line naming %s and %q, got exit %d:\n%s", bad, c.want, r.code, r.out)
		}
		if b, _ := os.ReadFile(bad); string(b) != c.doc {
			t.Errorf("stage changed the bad file")
		}
	}
	e.refused("retire", "run `kubectl rotate encryption stage --config")
	e.refused("promote", "run `kubectl rotate encryption stage --config")

	// Stage.
	out := e.mustRun("stage")
	st := e.status()
	if st.Stage != "staged" || len(st.Pending) != 0 || !st.Checked || st.Old[0] != old {
		t.Fatalf("after stage: %+v", st)
	}
	newKey := st.Key
	if strings.Contains(out, secretOf(t, e.doc(), newKey)) {
		t.Fatal("stage printed the new key's secret")
	}
	want[e.create("staged")] = old
	e.checkStored(want)
	e.refused("retire", "run `kubectl rotate encryption promote --config")

	// Promote.
	e.mustRun("promote")
	e.mustRun("status")
	want[e.create("promoted")] = newKey
	e.checkStored(want)
	e.refused("retire", "run `kubectl rotate encryption rewrite --config")

	// Rewrite, killed with SIGKILL once a page is journaled, then re-run.
	e.killRewrite()
	out = e.mustRun("rewrite")
	if !strings.Contains(out, "secrets:") || !strings.Contains(out, "stored again") {
		t.Errorf("rewrite printed no summary:\n%s", out)
	}
	all(want, newKey)
	e.checkStored(want)
	e.readBack(want)
	if st := e.status(); st.Stored[oldPrefix] != 0 || st.Stored["k8s:enc:aescbc:v1:"+newKey+":"] != int64(len(want)) || !st.Rewritten {
		t.Errorf("after the rewrite status counts %v in etcd (rewritten %v), want all %d under %s", st.Stored, st.Rewritten, len(want), newKey)
	}

	// A value under the old key that the rewrite did not see (written by an
	// API server still on an old configuration, say): the retire waits.
	planted := "/registry/secrets/" + e.ns + "/planted"
	e.etcdPut(planted, oldPrefix+"not a real ciphertext")
	e.refused("retire", "etcd still stores objects under the old keys (1 under "+oldPrefix)
	e.etcdDelete(planted)
	// The retire now asks for the rewrite again (it would store such an
	// object with the new key).
	e.refused("retire", "run `kubectl rotate encryption rewrite --config")
	e.mustRun("rewrite")

	// Retire.
	e.mustRun("retire")
	if st = e.status(); st.Stage != "idle" || st.Key != newKey || len(st.Providers[0].Keys) != 1 || st.RetiredKept == "" {
		t.Fatalf("after retire: %+v", st)
	}
	e.checkStored(want)
	e.readBack(want)

	// Roll back the retire, the promote (and the rewrite back), the stage.
	e.mustRun("rollback")
	if st = e.status(); st.Stage != "promoted" || st.Key != newKey || !st.Rewritten {
		t.Fatalf("after the rollback of the retire: %+v", st)
	}
	e.mustRun("rollback")
	if st = e.status(); st.Stage != "staged" || st.Key != newKey {
		t.Fatalf("after the rollback of the promote: %+v", st)
	}
	all(want, old)
	e.checkStored(want)
	e.mustRun("rollback")
	if got := e.doc(); !bytes.Equal(got, first) {
		t.Errorf("after the rollback of the stage the file is not the first one byte for byte:\n%s", got)
	}
	e.checkStored(want)
	e.readBack(want)
	if st = e.status(); st.Stage != "idle" || st.Key != old || st.Next == "" {
		t.Fatalf("after every rollback: %+v", st)
	}
	e.refused("rollback", "nothing to roll back")
}

func (e *cliEnv) etcdPut(key, value string) {
	e.t.Helper()
	e.etcdPost("/v3/kv/put", map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(value))})
}

func (e *cliEnv) etcdDelete(key string) {
	e.t.Helper()
	e.etcdPost("/v3/kv/deleterange", map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
}

func (e *cliEnv) etcdPost(path string, body map[string]string) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.c.EtcdURL()+path, "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("etcd %s: %s", path, resp.Status)
	}
}

// killRewrite starts the rewrite in small pages and kills it with SIGKILL
// once the journal holds a page reached.
func (e *cliEnv) killRewrite() {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(append(e.prefix("rewrite"), "--page-size", "5", "--workers", "1"), e.args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			e.t.Logf("killed rewrite: %s", sc.Text())
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if e.journalHas("rewrite/continue/secrets") {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			e.t.Fatal("the rewrite journaled no page in 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		e.t.Fatal("the rewrite finished before it was killed: give it more Secrets")
	}
}

// journalHas reports whether the rotation's journal holds fact.
func (e *cliEnv) journalHas(fact string) bool {
	if e.kops != nil {
		j, err := e.kops.EncryptionJournal()
		if err != nil {
			e.t.Fatal(err)
		}
		r, err := j.Load(context.Background())
		return err == nil && r != nil && r.String(fact) != ""
	}
	cm, err := e.kc.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "kube-rotate-encryption", metav1.GetOptions{})
	if err != nil {
		return false
	}
	var r struct {
		Facts map[string]json.RawMessage `json:"facts"`
	}
	if json.Unmarshal([]byte(cm.Data["record.json"]), &r) != nil {
		return false
	}
	v, ok := r.Facts[fact]
	return ok && string(v) != `""`
}

// secretOf returns key's secret in doc (to check it is never printed).
func secretOf(t *testing.T, doc []byte, key string) string {
	t.Helper()
	lines := strings.Split(string(doc), "\n")
	for i, l := range lines {
		if strings.Contains(l, "name: "+key) && i+1 < len(lines) {
			if _, s, ok := strings.Cut(lines[i+1], "secret:"); ok {
				return strings.TrimSpace(s)
			}
		}
	}
	t.Fatalf("no key %s in the configuration", key)
	return ""
}
