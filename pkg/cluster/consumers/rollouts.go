package consumers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
)

// SharedWatchMin is how many workloads of one kind in one namespace a
// Rollouts waits for through one watch of that kind in the namespace
// instead of one watch per object (`kubectl rollout status`'s way): a
// watch per object costs a list and a watch request each, one shared
// watch costs two in all.
const SharedWatchMin = 4

// Rollouts waits for many rollouts at once, each from the moment its
// workload is restarted (Begin), and reports the ones that did not
// complete (Wait). Progress lines are kubectl's status lines, as Waiter
// prints them. A Rollouts is used once: Begin any number of times, then
// Wait.
type Rollouts struct {
	Waiter *Waiter

	mu    sync.Mutex
	wg    sync.WaitGroup
	begun map[string]bool
	// done is closed once a begun rollout completed or failed (failed).
	done   map[string]chan struct{}
	failed map[string]bool
	bad    []Unhealthy
	shared map[watchKey]*sharedWatch
	cancel context.CancelFunc
	ctx    context.Context
	stops  []context.CancelFunc
}

type watchKey struct{ kind, namespace string }

// NewRollouts returns a Rollouts for the workloads in planned: kinds and
// namespaces with at least SharedWatchMin of them are watched once each.
func NewRollouts(w *Waiter, planned []Workload) *Rollouts {
	r := &Rollouts{Waiter: w, begun: map[string]bool{}, done: map[string]chan struct{}{}, failed: map[string]bool{},
		shared: map[watchKey]*sharedWatch{}}
	count := map[watchKey]int{}
	for _, wl := range planned {
		count[watchKey{wl.Kind, wl.Namespace}]++
	}
	for k, n := range count {
		if _, ok := resources[k.kind]; ok && n >= SharedWatchMin {
			r.shared[k] = &sharedWatch{subs: map[string]map[chan struct{}]bool{}}
		}
	}
	return r
}

func workloadID(wl Workload) string { return wl.Kind + "/" + wl.Namespace + "/" + wl.Name }

// Begun reports whether Begin was called for wl.
func (r *Rollouts) Begun(wl Workload) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.begun[workloadID(wl)]
}

// Begin starts waiting for wl's rollout, for at most the Waiter's
// Timeout from now. Only a state of generation minGeneration or later
// counts (the generation its restart returned; 0: any), so that a shared
// watch that saw the workload before its restart does not take the
// earlier, complete rollout for this one. A second Begin of the same
// workload does nothing.
func (r *Rollouts) Begin(ctx context.Context, wl Workload, minGeneration int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := workloadID(wl)
	if r.begun[id] {
		return
	}
	r.begun[id] = true
	if r.ctx == nil {
		// The watches live until Wait returns, not only as long as the
		// first caller's context.
		r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	sw := r.shared[watchKey{wl.Kind, wl.Namespace}]
	if sw != nil {
		sw.start(r.ctx, r.Waiter, wl)
	}
	ctx, stop := context.WithCancel(ctx)
	r.stops = append(r.stops, stop)
	done := make(chan struct{})
	r.done[id] = done
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		defer stop()
		var u *Unhealthy
		if sw != nil {
			u = r.Waiter.waitShared(ctx, sw, wl, minGeneration)
		} else {
			u = r.Waiter.Wait(ctx, wl)
		}
		if u != nil {
			r.mu.Lock()
			r.bad = append(r.bad, *u)
			r.failed[id] = true
			r.mu.Unlock()
		}
	}()
}

// Complete waits until the rollouts of wls are over and reports whether
// every one of them completed: false when one failed, was never begun,
// or ctx ended first. It lets a caller act on a few workloads (record a
// Secret whose readers are healthy) while the others still roll out.
func (r *Rollouts) Complete(ctx context.Context, wls []Workload) bool {
	for _, wl := range wls {
		id := workloadID(wl)
		r.mu.Lock()
		done := r.done[id]
		r.mu.Unlock()
		if done == nil {
			return false
		}
		select {
		case <-done:
		case <-ctx.Done():
			return false
		}
		r.mu.Lock()
		failed := r.failed[id]
		r.mu.Unlock()
		if failed {
			return false
		}
	}
	return true
}

// Wait waits until every rollout begun is complete or failed, and
// returns a *WaitError naming each one that did not complete.
func (r *Rollouts) Wait() error {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
	if len(r.bad) == 0 {
		return nil
	}
	bad := append([]Unhealthy(nil), r.bad...)
	sort.Slice(bad, func(i, j int) bool { return bad[i].Workload.Ref() < bad[j].Workload.Ref() })
	return &WaitError{Unhealthy: bad}
}

// Stop ends every wait begun (a run that failed before its wait step)
// and returns once they are gone.
func (r *Rollouts) Stop() {
	r.mu.Lock()
	for _, stop := range r.stops {
		stop()
	}
	r.mu.Unlock()
	_ = r.Wait()
}

// sharedWatch is one informer over the workloads of one kind in one
// namespace; each waiter subscribes to its object's changes.
type sharedWatch struct {
	once     sync.Once
	informer cache.SharedIndexInformer

	mu   sync.Mutex
	subs map[string]map[chan struct{}]bool // by name
}

func (sw *sharedWatch) start(ctx context.Context, w *Waiter, wl Workload) {
	sw.once.Do(func() {
		gvr := resources[wl.Kind]
		client := w.Client.Resource(gvr).Namespace(wl.Namespace)
		lw := kube.NamespaceListWatch(
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return client.List(ctx, o) },
			client.Watch, w.Client)
		sw.informer = cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
		notify := func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, ok := obj.(metav1.Object); ok {
				sw.notify(m.GetName())
			}
		}
		_, _ = sw.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: notify,
		})
		go sw.informer.RunWithContext(ctx)
	})
}

func (sw *sharedWatch) subscribe(name string) chan struct{} {
	ch := make(chan struct{}, 1)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.subs[name] == nil {
		sw.subs[name] = map[chan struct{}]bool{}
	}
	sw.subs[name][ch] = true
	return ch
}

func (sw *sharedWatch) unsubscribe(name string, ch chan struct{}) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	delete(sw.subs[name], ch)
}

func (sw *sharedWatch) notify(name string) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for ch := range sw.subs[name] {
		select {
		case ch <- struct{}{}:
		default: // a change is pending already: the waiter reads the latest
		}
	}
}

// waitShared is Wait through a shared watch: kubectl's status viewer is
// asked after every change of the object, as Wait does.
func (w *Waiter) waitShared(ctx context.Context, sw *sharedWatch, wl Workload, minGeneration int64) *Unhealthy {
	gvr := resources[wl.Kind]
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: gvr.Group, Kind: wl.Kind})
	if err != nil {
		return &Unhealthy{Workload: wl, Reason: err.Error()}
	}
	timeout := w.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch := sw.subscribe(wl.Name)
	defer sw.unsubscribe(wl.Name, ch)

	last, seen := "", false
	fail := func(reason string) *Unhealthy {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = fmt.Sprintf("not rolled out within %s", timeout)
		}
		if last == "" {
			last = "no status seen"
		}
		return &Unhealthy{Workload: wl, Status: trimNL(last), Reason: reason}
	}
	if !cache.WaitForCacheSync(ctx.Done(), sw.informer.HasSynced) {
		return fail("the watch of " + gvr.Resource + " did not start")
	}
	for {
		obj, exists, err := sw.informer.GetStore().GetByKey(wl.Namespace + "/" + wl.Name)
		switch {
		case err != nil:
			return fail(err.Error())
		case !exists && seen:
			return fail("it was deleted while waiting")
		case !exists:
			return fail(fmt.Sprintf("%s not found", wl.Ref()))
		}
		seen = true
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fail(fmt.Sprintf("unexpected object %T", obj))
		}
		if u.GetGeneration() >= minGeneration {
			msg, done, err := viewer.Status(u, 0)
			if err != nil {
				return fail(err.Error())
			}
			if msg != last {
				last = msg
				w.print(msg)
			}
			if done {
				return nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fail(ctx.Err().Error())
		}
	}
}

// timeout is the bound of one wait.
func (w *Waiter) timeout() time.Duration {
	if w.Timeout == 0 {
		return DefaultTimeout
	}
	return w.Timeout
}
