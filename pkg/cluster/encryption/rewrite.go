// Package encryption holds what a graceful encryption-at-rest key
// rotation does on the cluster: Loaded tells whether every kube-apiserver
// applied a configuration, and Rewrite stores objects again, unchanged, so
// that kube-apiserver writes each one with the first key of its
// configuration (the "rewrite every encrypted object" stage). Kubernetes' documentation does it with
// `kubectl get secrets -A -o json | kubectl replace -f -`, which holds every
// object in memory and stops at the first conflict; here objects are
// listed in pages and written back through bounded workers, a conflict
// means the object was just written (so with the first key) and is
// skipped, and the progress is journaled so that a run killed at any point
// resumes.
//
// An unchanged update is written to etcd when the stored value was read
// with another key than the first: the storage layer marks such a value
// stale and stores it again (k8s.io/apiserver
// pkg/storage/etcd3/store.go GuaranteedUpdate, and
// pkg/storage/value/transformer.go: a value read by a non-first
// transformer is stale).
package encryption

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Resource is one resource the rewrite covers.
type Resource struct {
	GVR        schema.GroupVersionResource
	Namespaced bool
}

// String is resource.group as EncryptionConfiguration names it
// ("secrets", "deployments.apps").
func (r Resource) String() string {
	if r.GVR.Group == "" {
		return r.GVR.Resource
	}
	return r.GVR.Resource + "." + r.GVR.Group
}

// Resolve maps the resource names of an EncryptionConfiguration entry
// ("secrets", "deployments.apps", "*.apps" for a group, "*." for the core
// group, "*.*" for all) to the server's resources that can be listed and
// updated, in the server's preferred versions.
func Resolve(disc discovery.DiscoveryInterface, names []string) ([]Resource, error) {
	lists, err := discovery.ServerPreferredResources(disc)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering the server's resources: %w", err)
	}
	var all []Resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !has(r.Verbs, "list") || !has(r.Verbs, "update") {
				continue
			}
			all = append(all, Resource{GVR: gv.WithResource(r.Name), Namespaced: r.Namespaced})
		}
	}
	seen := map[schema.GroupVersionResource]bool{}
	var out []Resource
	for _, name := range names {
		res, group, _ := strings.Cut(name, ".")
		found := false
		for _, r := range all {
			if (res == "*" || r.GVR.Resource == res) && (group == "*" || r.GVR.Group == group) {
				found = true
				if !seen[r.GVR] {
					seen[r.GVR] = true
					out = append(out, r)
				}
			}
		}
		if !found && res != "*" {
			return nil, fmt.Errorf("resource %q is not served by this cluster (or cannot be listed and updated): check the EncryptionConfiguration's resources", name)
		}
	}
	return out, nil
}

func has(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// RewriteOptions of Rewrite.
type RewriteOptions struct {
	Client    dynamic.Interface
	Resources []Resource
	// Workers write in parallel (default 8); the client's QPS and burst
	// bound the rate.
	Workers int
	// PageSize is the list page (default 500): memory is bounded by it,
	// not by the number of objects.
	PageSize int64
	// Journal keeps the progress (the resources done, the page reached);
	// nil: none (a killed run starts again).
	Journal procedure.Journal
	// Name names the run in the journal ("rewrite for key NAME").
	Name string
	// Progress gets a line every ProgressEvery (default 5s) and at the end
	// of each resource; nil: none.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Summary is what one resource's rewrite did.
type Summary struct {
	Resource string `json:"resource"`
	// Rewritten objects were stored again.
	Rewritten int64 `json:"rewritten"`
	// Conflicts were written by someone else since listed: stored with
	// the first key already, skipped.
	Conflicts int64 `json:"conflicts"`
	// Gone were deleted since listed.
	Gone int64 `json:"gone"`
	// Resumed is true when the resource was done by an earlier run.
	Resumed bool          `json:"resumed,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
}

// Facts the rewrite keeps in a procedure.Record, per resource: the page
// reached, the partial summary, and the summary once the resource is done.
func factContinue(r Resource) string { return "rewrite/continue/" + r.String() }
func factPartial(r Resource) string  { return "rewrite/partial/" + r.String() }
func factDone(r Resource) string     { return "rewrite/done/" + r.String() }

// Rewrite stores every object of the resources, one resource after another,
// in pages, with Workers writers; the progress is journaled in o.Journal
// (when set) after every page, so that a killed run resumes where it was.
func Rewrite(ctx context.Context, o RewriteOptions) ([]Summary, error) {
	var r *procedure.Record
	save := func(context.Context) error { return nil }
	if o.Journal != nil {
		var err error
		if r, err = o.Journal.Load(ctx); err != nil {
			return nil, err
		}
		save = func(ctx context.Context) error {
			r.Procedure, r.Updated = o.Name, time.Now().UTC().Truncate(time.Second)
			if err := o.Journal.Save(ctx, r); err != nil {
				return fmt.Errorf("journaling the rewrite in %s: %w", o.Journal, err)
			}
			return nil
		}
	}
	if r == nil {
		r = &procedure.Record{Procedure: o.Name, Started: time.Now().UTC().Truncate(time.Second)}
	}
	return o.Run(ctx, r, save)
}

// Run is the rewrite as one step of a larger procedure: its progress is
// kept as facts of r (that procedure's record) and written with save after
// every page. Resources r says are done are skipped (their summaries come
// back with Resumed set).
func (o RewriteOptions) Run(ctx context.Context, r *procedure.Record, save func(context.Context) error) ([]Summary, error) {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	sums := make([]Summary, len(o.Resources))
	for i, res := range o.Resources {
		done, err := r.Get(factDone(res), &sums[i])
		if err != nil {
			return sums, err
		}
		if done {
			sums[i].Resumed = true
			continue
		}
		s, err := o.resource(ctx, res, r, save)
		sums[i] = s
		if err != nil {
			return sums, err
		}
		if err := r.Put(factDone(res), s); err != nil {
			return sums, err
		}
		delete(r.Facts, factContinue(res))
		delete(r.Facts, factPartial(res))
		if err := save(ctx); err != nil {
			return sums, err
		}
	}
	return sums, nil
}

// Forget removes the rewrite's facts from r, so that the next Run
// rewrites every resource again (after the first key changed once more).
func Forget(r *procedure.Record) {
	for k := range r.Facts {
		if strings.HasPrefix(k, "rewrite/") {
			delete(r.Facts, k)
		}
	}
}

// resource rewrites one resource page by page from where the journal says
// it stopped; the page reached is journaled after each page.
func (o *RewriteOptions) resource(ctx context.Context, res Resource, r *procedure.Record, save func(context.Context) error) (Summary, error) {
	start := time.Now()
	sum := Summary{Resource: res.String()}
	if _, err := r.Get(factPartial(res), &sum); err != nil {
		return sum, err
	}
	var cont string
	if _, err := r.Get(factContinue(res), &cont); err != nil {
		return sum, err
	}
	client := o.Client.Resource(res.GVR)
	var last time.Time
	for {
		list, err := client.List(ctx, metav1.ListOptions{Limit: o.PageSize, Continue: cont})
		if apierrors.IsResourceExpired(err) && cont != "" {
			// The continue token outlived etcd's compaction: start the
			// resource again (objects already rewritten are rewritten
			// once more, harmlessly).
			o.progress("%s: the saved page expired; listing %s again from the start", res, res)
			cont = ""
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("listing %s: %w", res, err)
		}
		if err := o.page(ctx, res, list.Items, &sum); err != nil {
			return sum, err
		}
		cont = list.GetContinue()
		if err := r.Put(factContinue(res), cont); err != nil {
			return sum, err
		}
		partial := sum
		partial.Elapsed += time.Since(start)
		if err := r.Put(factPartial(res), partial); err != nil {
			return sum, err
		}
		if err := save(ctx); err != nil {
			return sum, err
		}
		if time.Since(last) >= o.ProgressEvery || cont == "" {
			last = time.Now()
			elapsed := time.Since(start) + sum.Elapsed
			o.progress("%s: %d rewritten, %d conflicts (written meanwhile), %d gone, %s", res, sum.Rewritten, sum.Conflicts, sum.Gone, elapsed.Round(time.Millisecond))
		}
		if cont == "" {
			break
		}
	}
	sum.Elapsed += time.Since(start)
	return sum, nil
}

// page writes one page's objects back through the workers.
func (o *RewriteOptions) page(parent context.Context, res Resource, items []unstructured.Unstructured, sum *Summary) error {
	client := o.Client.Resource(res.GVR)
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var rewritten, conflicts, gone atomic.Int64
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				var err error
				if res.Namespaced {
					_, err = client.Namespace(obj.GetNamespace()).Update(ctx, obj, metav1.UpdateOptions{})
				} else {
					_, err = client.Update(ctx, obj, metav1.UpdateOptions{})
				}
				switch {
				case err == nil:
					rewritten.Add(1)
				case apierrors.IsConflict(err):
					conflicts.Add(1)
				case apierrors.IsNotFound(err):
					gone.Add(1)
				default:
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("storing %s %s again: %w", res, ref(obj), err)
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := range items {
		select {
		case work <- &items[i]:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	sum.Rewritten += rewritten.Load()
	sum.Conflicts += conflicts.Load()
	sum.Gone += gone.Load()
	if firstErr != nil {
		return firstErr
	}
	return parent.Err()
}

func ref(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}

func (o *RewriteOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}
