//go:build e2e

// Package fleet checks kube-rotate over several clusters (issue 18): the
// Action run once per cluster and once over a kubeconfig holding them all,
// each cluster keeping its own GitHub issues, issues opened before ids named
// their cluster, and `kubectl rotate status` over several contexts with one
// cluster stopped. The clusters are local control planes this package
// starts (e2e/cluster), three at once, whatever KUBECONFIG points at: every
// scan is over all namespaces, so no other test may write to them.
package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

const (
	day = 24 * time.Hour
	// ns is the namespace the same chart put app/db in, in every cluster.
	ns = "app"
)

// member is one cluster of the fleet: a local control plane and the name
// users know it by (its kubeconfig cluster entry and context in the
// kubeconfigs the tests build).
type member struct {
	name string
	c    *cluster.Cluster
	kube kubernetes.Interface
}

// ctx is the member's context name in the kubeconfigs the tests build.
func (m *member) ctx() string { return m.name + "-ctx" }

// prod and staging are used by every test; qa only by the status test,
// which stops it.
var prod, staging, qa = &member{name: "prod"}, &member{name: "staging"}, &member{name: "qa"}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	for _, bin := range []string{"kubectl-rotate", "kube-rotate-action"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "fleet: %s is not on PATH: run `make build` and put bin/ on PATH (make e2e does)\n", bin)
			return 2
		}
	}
	dir, err := os.MkdirTemp("", "kube-rotate-fleet-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	// Down runs on every way out; an interrupted run leaves nothing either
	// (Attached: the kernel kills the processes with the test binary).
	members := []*member{prod, staging, qa}
	defer func() {
		for _, mb := range members {
			if mb.c != nil {
				if err := mb.c.Down(); err != nil {
					fmt.Fprintf(os.Stderr, "fleet: stopping cluster %s: %v\n", mb.name, err)
				}
			}
		}
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, mb := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = mb.up(ctx, filepath.Join(dir, mb.name))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "fleet: starting the clusters: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fleet: clusters prod, staging and qa ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	return m.Run()
}

func (m *member) up(ctx context.Context, stateDir string) error {
	c, err := cluster.Up(ctx, cluster.Options{StateDir: stateDir, Attached: true, Nodes: 1})
	if err != nil {
		return fmt.Errorf("cluster %s: %w", m.name, err)
	}
	m.c = c
	if m.kube, err = c.Clientset(); err != nil {
		return fmt.Errorf("cluster %s: %w", m.name, err)
	}
	_, err = m.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: creating namespace %s: %w", m.name, ns, err)
	}
	return nil
}

// reset removes every Secret of namespace app in the given clusters, now
// and when the test ends, so each test starts from the same fleet.
func reset(t *testing.T, members ...*member) {
	t.Helper()
	wipe := func() error {
		for _, m := range members {
			if m.c == nil {
				continue
			}
			err := m.kube.CoreV1().Secrets(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("cluster %s: deleting the Secrets of %s: %w", m.name, ns, err)
			}
		}
		return nil
	}
	if err := wipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := wipe(); err != nil && !t.Failed() {
			// A cluster a test stopped cannot be cleared; nothing else
			// uses it.
			t.Log(err)
		}
	})
}

// secret creates ns/name in the member's cluster, with kube-rotate's
// rotated-at annotation saying its value was set age ago (0: none, so its
// age is its creation's: fresh).
func (m *member) secret(t *testing.T, name string, age time.Duration, data map[string]string) {
	t.Helper()
	meta := metav1.ObjectMeta{Name: name}
	if age > 0 {
		meta.Annotations = map[string]string{v1alpha1.RotatedAt: time.Now().Add(-age).UTC().Format(time.RFC3339)}
	}
	_, err := m.kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{ObjectMeta: meta, StringData: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("cluster %s: creating secret %s/%s: %v", m.name, ns, name, err)
	}
}

// age sets the rotated-at annotation of ns/name to age ago, as if its value
// had not been changed since.
func (m *member) age(t *testing.T, name string, age time.Duration) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.RotatedAt, time.Now().Add(-age).UTC().Format(time.RFC3339))
	if _, err := m.kube.CoreV1().Secrets(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("cluster %s: annotating secret %s/%s: %v", m.name, ns, name, err)
	}
}

// values returns the data of every Secret of namespace app in the
// members, for noValues.
func values(t *testing.T, members ...*member) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, m := range members {
		list, err := m.kube.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			for k, v := range s.Data {
				out[m.name+":"+s.Name+"["+k+"]"] = v
			}
		}
	}
	return out
}

// noValues fails when a Secret value is in text.
func noValues(t *testing.T, where, text string, vals map[string][]byte) {
	t.Helper()
	for name, v := range vals {
		if len(v) >= 6 && strings.Contains(text, string(v)) {
			t.Errorf("%s shows the value of %s", where, name)
		}
	}
}

// kctx is one context of a kubeconfig the tests build: name, the
// kubeconfig cluster entry it points at, and the member whose server,
// CA and admin credentials the entry and its user carry.
type kctx struct {
	name, entry string
	from        *member
}

// as is the member's usual context: NAME-ctx on cluster entry NAME.
func (m *member) as() kctx { return kctx{name: m.ctx(), entry: m.name, from: m} }

// kubeconfig merges the members' admin kubeconfigs into one with the given
// contexts (the first is current), certificates embedded, as a user's
// ~/.kube/config or an Action secret holds them. Each local cluster's own
// kubeconfig uses the same generic names, so entries are renamed: cluster
// entry as given, user ENTRY-admin, context as given.
func kubeconfig(t *testing.T, ctxs ...kctx) string {
	t.Helper()
	out := clientcmdapi.NewConfig()
	for _, c := range ctxs {
		src, err := clientcmd.LoadFromFile(c.from.c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cur := src.Contexts[src.CurrentContext]
		if cur == nil || src.Clusters[cur.Cluster] == nil || src.AuthInfos[cur.AuthInfo] == nil {
			t.Fatalf("%s: no current context with a cluster and a user", c.from.c.Kubeconfig)
		}
		user := c.entry + "-admin"
		out.Clusters[c.entry] = src.Clusters[cur.Cluster].DeepCopy()
		out.AuthInfos[user] = src.AuthInfos[cur.AuthInfo].DeepCopy()
		out.Contexts[c.name] = &clientcmdapi.Context{Cluster: c.entry, AuthInfo: user, Namespace: "default"}
	}
	out.CurrentContext = ctxs[0].name
	b, err := clientcmd.Write(*out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ownKubeconfig is the member's kubeconfig as the harness wrote it: every
// local cluster's has the same cluster entry and context name
// (kube-rotate-e2e), as two clusters set up by one script often do.
func (m *member) ownKubeconfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(m.c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeKubeconfig writes a kubeconfig into a file of the test's.
func writeKubeconfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cli is one run of kubectl-rotate.
type cli struct {
	stdout, stderr string
	code           int
}

// rotate runs the kubectl-rotate binary from PATH with --kubeconfig and
// args; KUBECONFIG is not passed on, so nothing else is reached.
func rotate(t *testing.T, kubeconfigPath string, args ...string) cli {
	t.Helper()
	bin, err := exec.LookPath("kubectl-rotate")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	r := cli{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running kubectl-rotate: %v", err)
	}
	t.Logf("$ kubectl rotate %s\n%s%s(exit %d)", strings.Join(args, " "), r.stdout, r.stderr, r.code)
	return r
}

// mustRotate is rotate failing the test on a non-zero exit.
func mustRotate(t *testing.T, kubeconfigPath string, args ...string) cli {
	t.Helper()
	r := rotate(t, kubeconfigPath, args...)
	if r.code != 0 {
		t.Fatalf("kubectl rotate %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
