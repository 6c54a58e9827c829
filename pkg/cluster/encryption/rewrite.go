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
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"

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
	// Metadata lists the objects and stores them again, as metadata only,
	// in protobuf: the client never holds an object's content.
	Metadata  metadata.Interface
	Resources []Resource
	// Workers write in parallel (default 16: measured faster than 8 on two cores); the client's QPS and burst
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
		o.Workers = 16
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
	acc := o.access(res)
	var last time.Time
	for {
		refs, next, err := acc.list(ctx, metav1.ListOptions{Limit: o.PageSize, Continue: cont})
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
		if err := o.page(ctx, res, acc, refs, &sum); err != nil {
			return sum, err
		}
		cont = next
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

// objectRef is what the rewrite keeps of a listed object: where it is and
// the resourceVersion it was listed at, nothing of its content.
type objectRef struct {
	namespace, name, resourceVersion string
}

func (r objectRef) String() string {
	if r.namespace != "" {
		return r.namespace + "/" + r.name
	}
	return r.name
}

// access lists one resource's objects as references and stores one again.
type access struct {
	list  func(ctx context.Context, opts metav1.ListOptions) ([]objectRef, string, error)
	patch func(ctx context.Context, namespace, name string, body []byte) error
}

// access goes through the metadata client: object metadata only, in
// protobuf both ways, so neither side encodes or decodes an object's
// content for the client.
func (o *RewriteOptions) access(res Resource) access {
	c := o.Metadata.Resource(res.GVR)
	return access{
		list: func(ctx context.Context, opts metav1.ListOptions) ([]objectRef, string, error) {
			l, err := c.List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			refs := make([]objectRef, len(l.Items))
			for i := range l.Items {
				m := &l.Items[i]
				refs[i] = objectRef{namespace: m.Namespace, name: m.Name, resourceVersion: m.ResourceVersion}
			}
			return refs, l.Continue, nil
		},
		patch: func(ctx context.Context, namespace, name string, body []byte) error {
			var err error
			if res.Namespaced {
				_, err = c.Namespace(namespace).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
			} else {
				_, err = c.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
			}
			return err
		},
	}
}

// preconditionPatch is the JSON merge patch (RFC 7386) that stores an
// object again unchanged, on the condition that it is still at the
// resourceVersion it was listed at:
//
//	{"metadata":{"resourceVersion":"<rv>"}}
//
// What the API server does with it (k8s.io/apiserver v0.36):
//   - pkg/endpoints/handlers/patch.go: the patch is applied to the stored
//     object inside the registry's Update (patchResource, applyPatch); on
//     an object that no longer exists a merge patch is NotFound
//     (jsonPatcher.createNewObject), never a create.
//   - pkg/registry/generic/registry/store.go Update: the patched object's
//     resourceVersion differs from the stored one (the object was written
//     since it was listed): 409 Conflict (apierrors.NewConflict); equal:
//     the object is the stored one, unchanged.
//   - pkg/storage/etcd3/store.go GuaranteedUpdate: an unchanged object is
//     not written only if the value read from etcd is not stale
//     (origState.stale; a value from the watch cache, cachedExistingObject,
//     is first read again from etcd: origStateIsCurrent); otherwise it is
//     encrypted again (TransformToStorage) and written.
//   - pkg/storage/value/transformer.go prefixTransformers.
//     TransformFromStorage: a value read with any transformer but the
//     first (a key that is not the first) is stale.
//
// So an object under an older key is written with the first key; one
// under the first key already is left as it is.
func preconditionPatch(resourceVersion string) []byte {
	rv, _ := json.Marshal(resourceVersion) // a string always marshals
	return []byte(`{"metadata":{"resourceVersion":` + string(rv) + `}}`)
}

// page stores one page's objects again through the workers.
func (o *RewriteOptions) page(parent context.Context, res Resource, acc access, refs []objectRef, sum *Summary) error {
	work := make(chan *objectRef)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var rewritten, conflicts, gone atomic.Int64
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range work {
				if ref.resourceVersion == "" {
					// Without one the patch would be an unconditional write.
					fail(fmt.Errorf("storing %s %s again: listed without a resourceVersion", res, ref))
					continue
				}
				err := acc.patch(ctx, ref.namespace, ref.name, preconditionPatch(ref.resourceVersion))
				switch {
				case err == nil:
					rewritten.Add(1)
				case apierrors.IsConflict(err):
					conflicts.Add(1)
				case apierrors.IsNotFound(err):
					gone.Add(1)
				default:
					fail(fmt.Errorf("storing %s %s again: %w", res, ref, err))
				}
			}
		}()
	}
feed:
	for i := range refs {
		select {
		case work <- &refs[i]:
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

func (o *RewriteOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}
