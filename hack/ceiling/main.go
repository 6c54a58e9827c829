// Command ceiling is the "ceiling" of make bench (issue 19): the fastest
// plain client-go program that reaches the same end result as
//
//	kubectl rotate secret -n NS -l SEL --key KEY --generate hex:16
//
// written the way a user would write it, so that hack/bench-ceiling.sh can
// show how far kubectl-rotate is from the minimal work. It runs under the
// same client rate limits as kubectl-rotate (kube.DefaultQPS and
// kube.DefaultBurst) and does, in order:
//
//  1. one list of the Secrets matching -l, and one list each of the
//     namespace's Deployments, StatefulSets and DaemonSets, at once;
//  2. a map from each Secret to the workloads that read its key (env
//     secretKeyRef, envFrom secretRef, secret volumes and projected secret
//     sources, init containers included);
//  3. with a pool of -workers goroutines: a JSON merge patch of a new
//     random value (16 crypto/rand bytes, hex) into each Secret, and, once
//     every Secret a workload reads has its new value, one strategic merge
//     patch of kubectl.kubernetes.io/restartedAt on the workload's pod
//     template (what `kubectl rollout restart` sends), each workload once;
//  4. one list+watch per kind of restarted workload in the namespace,
//     until kubectl's status viewer (polymorphichelpers.StatusViewerFor, as
//     `kubectl rollout status`) says every restarted workload's rollout is
//     complete, counting only objects whose metadata.generation is at least
//     the generation its restart patch returned.
//
// It deliberately skips what makes kubectl-rotate a safe tool rather than
// a fast one: no copy of the previous values (NAME-previous, so no undo),
// no records or journal annotations, no resourceVersion preconditions on
// the writes (a concurrent change is overwritten), no dry run, no plan
// output, no CronJobs or bare Pods, no undo on a failed rollout.
//
// With -records it also makes the writes kubectl rotate makes beyond those,
// in the plainest way, to show what they cost: before each Secret's new
// value, a copy of its old data in NAME-ceiling-previous (create, or an
// unconditional update when it exists), and once the rollouts are
// complete, a merge patch of one annotation on each Secret: 4 writes per
// Secret read by one workload, as kubectl rotate.
//
// It prints one summary line: counts, seconds, and the HTTP requests it
// sent by method (a counting RoundTripper around the client's transport;
// a watch counts as one GET). It never prints a value.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
)

// Workload kinds the ceiling restarts.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
)

// restartedAtAnnotation is the pod template annotation `kubectl rollout
// restart` sets.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// gvrs are the resources of the kinds, for the dynamic client's watches.
var gvrs = map[string]schema.GroupVersionResource{
	kindDeployment:  appsv1.SchemeGroupVersion.WithResource("deployments"),
	kindStatefulSet: appsv1.SchemeGroupVersion.WithResource("statefulsets"),
	kindDaemonSet:   appsv1.SchemeGroupVersion.WithResource("daemonsets"),
}

// workload is a Deployment, StatefulSet or DaemonSet and its pod template.
type workload struct {
	Kind, Name string
	Spec       *corev1.PodSpec
}

// ref is kind/name, lower case, as kubectl prints it.
func (w workload) ref() string { return strings.ToLower(w.Kind) + "/" + w.Name }

// options are the command-line flags.
type options struct {
	namespace, selector, key, kubeconfig string
	workers, burst                       int
	qps                                  float64
	timeout                              time.Duration
	records                              bool
}

func main() {
	var o options
	flag.StringVar(&o.namespace, "n", "", "Namespace of the Secrets (default: the kubeconfig's).")
	flag.StringVar(&o.selector, "l", "", "Label selector of the Secrets to rotate (required).")
	flag.StringVar(&o.key, "key", "", "Data key that gets a new value (required).")
	flag.IntVar(&o.workers, "workers", 8, "Concurrent Secret patches and restarts.")
	flag.Float64Var(&o.qps, "qps", float64(kube.DefaultQPS), "Client-side queries per second.")
	flag.IntVar(&o.burst, "burst", kube.DefaultBurst, "Client-side burst.")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "Bound on the whole run, rollouts included.")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	flag.BoolVar(&o.records, "records", false, "Also copy each Secret's old data to NAME-ceiling-previous first, and annotate each Secret once its readers rolled out.")
	flag.Parse()
	if o.selector == "" || o.key == "" || o.workers < 1 || o.qps <= 0 || o.burst < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: ceiling -l SELECTOR -key KEY [-n NAMESPACE] [-workers 8] [-qps 200 -burst 400] [-timeout 5m] [-kubeconfig PATH]")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

// run does the whole rotation and prints the summary line.
func run(o options) error {
	start := time.Now()
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	if o.namespace == "" {
		if o.namespace, _, err = cc.Namespace(); err != nil {
			return fmt.Errorf("reading the kubeconfig's namespace: %w", err)
		}
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	counts := &requestCounts{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &countingTransport{next: rt, counts: counts} })
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building the client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building the dynamic client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	secrets, workloads, err := list(ctx, kc, o.namespace, o.selector)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if _, ok := s.Data[o.key]; !ok {
			return fmt.Errorf("secret/%s in %s has no key %s: nothing was changed", s.Name, o.namespace, o.key)
		}
		names = append(names, s.Name)
	}
	readers := consumersOf(names, o.key, workloads)

	byName := make(map[string]*corev1.Secret, len(secrets))
	for i := range secrets {
		byName[secrets[i].Name] = &secrets[i]
	}
	gens, err := rotate(ctx, kc, o, names, readers, workloads, byName)
	if err != nil {
		return err
	}
	written := time.Since(start)
	if err := waitRollouts(ctx, dyn, o.namespace, gens); err != nil {
		return err
	}
	if o.records {
		if err := annotateAll(ctx, kc, o, names); err != nil {
			return err
		}
	}
	restarted := 0
	for _, byName := range gens {
		restarted += len(byName)
	}
	fmt.Printf("ceiling: %d secrets, %d workloads restarted and rolled out in %.2f s (writes done after %.2f s); requests %s\n",
		len(names), restarted, time.Since(start).Seconds(), written.Seconds(), counts)
	return nil
}

// list reads the Secrets matching selector and the namespace's workloads,
// four lists at once.
func list(ctx context.Context, kc kubernetes.Interface, ns, selector string) ([]corev1.Secret, []workload, error) {
	var (
		wg                     sync.WaitGroup
		secrets                *corev1.SecretList
		deps                   *appsv1.DeploymentList
		sts                    *appsv1.StatefulSetList
		dss                    *appsv1.DaemonSetList
		errS, errD, errT, errA error
	)
	apps := kc.AppsV1()
	wg.Go(func() {
		secrets, errS = kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	})
	wg.Go(func() { deps, errD = apps.Deployments(ns).List(ctx, metav1.ListOptions{}) })
	wg.Go(func() { sts, errT = apps.StatefulSets(ns).List(ctx, metav1.ListOptions{}) })
	wg.Go(func() { dss, errA = apps.DaemonSets(ns).List(ctx, metav1.ListOptions{}) })
	wg.Wait()
	for _, e := range []struct {
		what string
		err  error
	}{{"secrets", errS}, {"deployments", errD}, {"statefulsets", errT}, {"daemonsets", errA}} {
		if e.err != nil {
			return nil, nil, fmt.Errorf("listing %s in %s: %w", e.what, ns, e.err)
		}
	}
	var ws []workload
	for i := range deps.Items {
		ws = append(ws, workload{Kind: kindDeployment, Name: deps.Items[i].Name, Spec: &deps.Items[i].Spec.Template.Spec})
	}
	for i := range sts.Items {
		ws = append(ws, workload{Kind: kindStatefulSet, Name: sts.Items[i].Name, Spec: &sts.Items[i].Spec.Template.Spec})
	}
	for i := range dss.Items {
		ws = append(ws, workload{Kind: kindDaemonSet, Name: dss.Items[i].Name, Spec: &dss.Items[i].Spec.Template.Spec})
	}
	return secrets.Items, ws, nil
}

// reads reports whether a pod spec reads key of Secret secret: an env
// secretKeyRef to that key, an envFrom secretRef, a secret volume or
// projected secret source without items or with an item for that key, in
// containers or init containers.
func reads(spec *corev1.PodSpec, secret, key string) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && r.SecretKeyRef.Name == secret && r.SecretKeyRef.Key == key {
					return true
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && ef.SecretRef.Name == secret {
					return true
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret && hasItem(v.Secret.Items, key) {
			return true
		}
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret != nil && src.Secret.Name == secret && hasItem(src.Secret.Items, key) {
				return true
			}
		}
	}
	return false
}

// hasItem reports whether a volume with these items shows key: every key
// when there are no items.
func hasItem(items []corev1.KeyToPath, key string) bool {
	if len(items) == 0 {
		return true
	}
	for _, it := range items {
		if it.Key == key {
			return true
		}
	}
	return false
}

// consumersOf maps each Secret name to the indexes in ws of the workloads
// that read its key, in ws order. Secrets no workload reads are absent.
func consumersOf(secrets []string, key string, ws []workload) map[string][]int {
	m := map[string][]int{}
	for _, s := range secrets {
		for i := range ws {
			if reads(ws[i].Spec, s, key) {
				m[s] = append(m[s], i)
			}
		}
	}
	return m
}

// rotate patches every Secret and restarts each workload that reads one,
// once, right after the last of its Secrets got its new value. It returns
// the generation each restart patch returned, by kind and name.
func rotate(ctx context.Context, kc kubernetes.Interface, o options, names []string, readers map[string][]int, ws []workload, secrets map[string]*corev1.Secret) (map[string]map[string]int64, error) {
	// remaining[i] counts the Secrets workload i reads that still have their old value.
	remaining := make([]atomic.Int32, len(ws))
	for _, idx := range readers {
		for _, i := range idx {
			remaining[i].Add(1)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		gens     = map[string]map[string]int64{}
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range min(o.workers, max(len(names), 1)) {
		wg.Go(func() {
			for name := range jobs {
				if o.records {
					if err := copyPrevious(ctx, kc, secrets[name]); err != nil {
						fail(err)
						continue
					}
				}
				if err := patchSecret(ctx, kc, o.namespace, name, o.key); err != nil {
					fail(err)
					continue
				}
				for _, i := range readers[name] {
					if remaining[i].Add(-1) != 0 {
						continue
					}
					gen, err := restart(ctx, kc, o.namespace, ws[i])
					if err != nil {
						fail(err)
						continue
					}
					mu.Lock()
					if gens[ws[i].Kind] == nil {
						gens[ws[i].Kind] = map[string]int64{}
					}
					gens[ws[i].Kind][ws[i].Name] = gen
					mu.Unlock()
				}
			}
		})
	}
feed:
	for _, n := range names {
		select {
		case jobs <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rotating: %w", err)
	}
	return gens, nil
}

// copyPrevious keeps a Secret's data in NAME-ceiling-previous (-records).
func copyPrevious(ctx context.Context, kc kubernetes.Interface, s *corev1.Secret) error {
	c := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-ceiling-previous", Namespace: s.Namespace}, Type: s.Type, Data: s.Data}
	_, err := kc.CoreV1().Secrets(s.Namespace).Create(ctx, c, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = kc.CoreV1().Secrets(s.Namespace).Update(ctx, c, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("copying secret/%s in %s: %w", s.Name, s.Namespace, err)
	}
	return nil
}

// annotateAll records on each Secret that its rotation is over (-records):
// one merge patch of an annotation each, o.workers at a time.
func annotateAll(ctx context.Context, kc kubernetes.Interface, o options, names []string) error {
	patch := []byte(`{"metadata":{"annotations":{"ceiling.kube-rotate.io/phase":"complete"}}}`)
	jobs := make(chan string)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(o.workers, max(len(names), 1)) {
		wg.Go(func() {
			for name := range jobs {
				if _, err := kc.CoreV1().Secrets(o.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("annotating secret/%s in %s: %w", name, o.namespace, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, n := range names {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

// patchSecret writes a new random value of key into a Secret (a JSON merge
// patch of data; no precondition).
func patchSecret(ctx context.Context, kc kubernetes.Interface, ns, name, key string) error {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generating a value for secret/%s: %w", name, err)
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]string{key: base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(b)))}})
	if err != nil {
		return fmt.Errorf("encoding the patch of secret/%s: %w", name, err)
	}
	if _, err := kc.CoreV1().Secrets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patching secret/%s in %s: %w", name, ns, err)
	}
	return nil
}

// restart sends `kubectl rollout restart`'s strategic merge patch to a
// workload and returns the generation the server gave it.
func restart(ctx context.Context, kc kubernetes.Interface, ns string, w workload) (int64, error) {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, time.Now().Format(time.RFC3339))
	var (
		obj metav1.Object
		err error
	)
	apps := kc.AppsV1()
	switch w.Kind {
	case kindDeployment:
		obj, err = apps.Deployments(ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case kindStatefulSet:
		obj, err = apps.StatefulSets(ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case kindDaemonSet:
		obj, err = apps.DaemonSets(ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	default:
		return 0, fmt.Errorf("restarting %s: not a workload kind the ceiling restarts", w.ref())
	}
	if err != nil {
		return 0, fmt.Errorf("restarting %s in %s: %w", w.ref(), ns, err)
	}
	return obj.GetGeneration(), nil
}

// waitRollouts waits, with one list+watch per kind over the namespace,
// until every workload in gens (kind -> name -> generation of its restart)
// has a complete rollout at that generation or later.
func waitRollouts(ctx context.Context, dyn dynamic.Interface, ns string, gens map[string]map[string]int64) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for kind, want := range gens {
		wg.Go(func() {
			if err := waitKind(ctx, dyn, ns, kind, want); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitKind is waitRollouts for one kind.
func waitKind(ctx context.Context, dyn dynamic.Interface, ns, kind string, want map[string]int64) error {
	gvr := gvrs[kind]
	viewer, err := polymorphichelpers.StatusViewerFor(gvr.GroupVersion().WithKind(kind).GroupKind())
	if err != nil {
		return fmt.Errorf("status viewer for %s: %w", kind, err)
	}
	pending := make(map[string]int64, len(want))
	for n, g := range want {
		pending[n] = g
	}
	rc := dyn.Resource(gvr).Namespace(ns)
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return rc.List(ctx, o) },
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return rc.Watch(ctx, o) },
	}, dyn)
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(e watch.Event) (bool, error) {
		if e.Type != watch.Added && e.Type != watch.Modified {
			return false, nil
		}
		u, ok := e.Object.(*unstructured.Unstructured)
		if !ok {
			return false, fmt.Errorf("unexpected %T in the %s watch", e.Object, kind)
		}
		gen, ok := pending[u.GetName()]
		if !ok || u.GetGeneration() < gen {
			return len(pending) == 0, nil
		}
		if _, done, err := viewer.Status(u, 0); err != nil {
			return false, fmt.Errorf("%s/%s: %w", strings.ToLower(kind), u.GetName(), err)
		} else if done {
			delete(pending, u.GetName())
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		left := make([]string, 0, len(pending))
		for n := range pending {
			left = append(left, n)
		}
		sort.Strings(left)
		if len(left) > 5 {
			left = append(left[:5], "...")
		}
		return fmt.Errorf("waiting for %d %s rollout(s) in %s (%s): %w", len(pending), kind, ns, strings.Join(left, ", "), err)
	}
	return nil
}

// requestCounts counts HTTP requests by method.
type requestCounts struct {
	get, post, put, patch, del, other atomic.Int64
}

// String is "N (GET a, PATCH b, ...), writes W": writes are POST, PUT,
// PATCH and DELETE, as hack/bench.sh counts them in -v=6 logs.
func (c *requestCounts) String() string {
	get, post, put, patch, del, other := c.get.Load(), c.post.Load(), c.put.Load(), c.patch.Load(), c.del.Load(), c.other.Load()
	var parts []string
	for _, p := range []struct {
		m string
		n int64
	}{{"GET", get}, {"POST", post}, {"PUT", put}, {"PATCH", patch}, {"DELETE", del}, {"other", other}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p.m, p.n))
		}
	}
	return fmt.Sprintf("%d (%s), writes %d", get+post+put+patch+del+other, strings.Join(parts, ", "), post+put+patch+del)
}

// countingTransport counts every request it passes on.
type countingTransport struct {
	next   http.RoundTripper
	counts *requestCounts
}

// RoundTrip counts req by method and sends it.
func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet:
		t.counts.get.Add(1)
	case http.MethodPost:
		t.counts.post.Add(1)
	case http.MethodPut:
		t.counts.put.Add(1)
	case http.MethodPatch:
		t.counts.patch.Add(1)
	case http.MethodDelete:
		t.counts.del.Add(1)
	default:
		t.counts.other.Add(1)
	}
	return t.next.RoundTrip(req)
}

var _ http.RoundTripper = (*countingTransport)(nil)
