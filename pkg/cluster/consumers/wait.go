package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/parallel"
)

// DefaultTimeout bounds each rollout wait.
const DefaultTimeout = 5 * time.Minute

var resources = map[string]schema.GroupVersionResource{
	KindDeployment:  {Group: "apps", Version: "v1", Resource: "deployments"},
	KindStatefulSet: {Group: "apps", Version: "v1", Resource: "statefulsets"},
	KindDaemonSet:   {Group: "apps", Version: "v1", Resource: "daemonsets"},
}

// Waiter waits for rollouts as `kubectl rollout status` does: it watches
// the object (no fixed sleeps) and asks kubectl's status viewer after
// every change, printing each new progress line.
type Waiter struct {
	Client dynamic.Interface
	// Out receives progress lines; nil discards them.
	Out io.Writer
	// Timeout bounds the wait for each workload; 0 means DefaultTimeout.
	Timeout time.Duration

	mu sync.Mutex
}

// Unhealthy is a workload whose rollout did not complete.
type Unhealthy = v1alpha1.Unhealthy

// WaitError lists every workload whose rollout did not complete.
type WaitError struct {
	Unhealthy []Unhealthy
}

func (e *WaitError) Error() string {
	msg := fmt.Sprintf("%d workload(s) did not become healthy:", len(e.Unhealthy))
	for _, u := range e.Unhealthy {
		msg += fmt.Sprintf(" %s (%s; last status: %s);", u.Workload.Ref(), u.Reason, u.Status)
	}
	return msg[:len(msg)-1]
}

// WaitAll waits for every workload concurrently and returns a *WaitError
// naming each one that did not finish rolling out. Many workloads of one
// kind in one namespace are watched once (Rollouts).
func (w *Waiter) WaitAll(ctx context.Context, workloads []Workload) error {
	r := NewRollouts(w, workloads)
	for _, wl := range workloads {
		r.Begin(ctx, wl, 0)
	}
	return r.Wait()
}

// Wait waits for one workload's rollout; it returns nil when it completed.
func (w *Waiter) Wait(ctx context.Context, wl Workload) *Unhealthy {
	gvr, ok := resources[wl.Kind]
	if !ok {
		return &Unhealthy{Workload: wl, Reason: "not a workload that rolls out"}
	}
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: gvr.Group, Kind: wl.Kind})
	if err != nil {
		return &Unhealthy{Workload: wl, Reason: err.Error()}
	}
	timeout := w.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	client := w.Client.Resource(gvr).Namespace(wl.Namespace)
	lw := kube.SingleObjectListWatch(wl.Name,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return client.List(ctx, o) },
		client.Watch, w.Client)
	last := ""
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(e watch.Event) (bool, error) {
		switch e.Type {
		case watch.Added, watch.Modified:
			u, ok := e.Object.(runtime.Unstructured)
			if !ok {
				return false, fmt.Errorf("unexpected object %T", e.Object)
			}
			msg, done, err := viewer.Status(u, 0)
			if err != nil {
				return false, err
			}
			if msg != last {
				last = msg
				w.print(msg)
			}
			return done, nil
		case watch.Deleted:
			return false, errors.New("it was deleted while waiting")
		}
		return false, nil
	})
	if err == nil {
		return nil
	}
	reason := err.Error()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = fmt.Sprintf("not rolled out within %s", timeout)
	}
	if last == "" {
		last = "no status seen"
	}
	return &Unhealthy{Workload: wl, Status: trimNL(last), Reason: reason}
}

func (w *Waiter) print(msg string) {
	if w.Out == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprint(w.Out, msg)
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '.') {
		s = s[:len(s)-1]
	}
	return s
}

// Status reports, without waiting, whether a workload's rollout is
// complete, with kubectl's status line.
func Status(ctx context.Context, client dynamic.Interface, wl Workload) (string, bool, error) {
	gvr, ok := resources[wl.Kind]
	if !ok {
		return "", false, fmt.Errorf("%s does not roll out", wl.Ref())
	}
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: gvr.Group, Kind: wl.Kind})
	if err != nil {
		return "", false, err
	}
	u, err := client.Resource(gvr).Namespace(wl.Namespace).Get(ctx, wl.Name, metav1.GetOptions{})
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", wl.Ref(), err)
	}
	msg, done, err := viewer.Status(u, 0)
	return trimNL(msg), done, err
}

// RestartAndWait restarts each restartable workload once, a few at a
// time (parallel.DefaultWorkers), and waits for each rollout from the
// moment its restart is made. It returns the workloads restarted
// (kind/name, in the order of ws); a failed wait is a *WaitError.
func RestartAndWait(ctx context.Context, kc kubernetes.Interface, dyn dynamic.Interface, ws []Workload, out io.Writer, timeout time.Duration) ([]string, error) {
	var targets []Workload
	for _, w := range ws {
		if w.Restart {
			targets = append(targets, w)
		}
	}
	if len(targets) == 0 {
		return nil, nil
	}
	out = parallel.SyncWriter(out)
	lines := parallel.NewOrdered(out)
	r := NewRollouts(&Waiter{Client: dyn, Out: out, Timeout: timeout}, targets)
	made := make([]bool, len(targets))
	err := parallel.ForEach(ctx, len(targets), 0, func(ctx context.Context, i int) error {
		defer lines.Done(i)
		gen, err := Restart(ctx, kc, targets[i])
		if err != nil {
			return err
		}
		made[i] = true
		fmt.Fprintf(lines.Item(i), "%s restarted\n", targets[i].Ref())
		r.Begin(ctx, targets[i], gen)
		return nil
	})
	lines.Flush()
	var restarted []string
	for i, w := range targets {
		if made[i] {
			restarted = append(restarted, w.Ref())
		}
	}
	if err != nil {
		r.Stop()
		return restarted, err
	}
	return restarted, r.Wait()
}
