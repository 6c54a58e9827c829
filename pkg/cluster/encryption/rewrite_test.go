package encryption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

var secrets = Resource{GVR: schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, Namespaced: true}

// fakeServer answers list and patch as kube-apiserver does for the
// rewrite: pages with continue tokens, and a merge patch carrying a
// resourceVersion that is stored when it matches (a new resourceVersion),
// 409 when it does not, 404 for an object that is gone.
type fakeServer struct {
	res Resource
	mu  sync.Mutex
	// rv is each object's ("ns/name", or "name" cluster-scoped) current
	// resourceVersion; names is their listing order.
	rv    map[string]int
	names []string
	next  int
	// After an object is listed, writtenMeanwhile ones get a new
	// resourceVersion and deletedMeanwhile ones are deleted.
	writtenMeanwhile, deletedMeanwhile map[string]bool
	// failPatch fails the patch of that object with a 500; expire makes a
	// list with this continue token fail as expired.
	failPatch, expire string
	// written counts the objects the rewrite stored; continues are the
	// tokens it listed with.
	written   map[string]int
	continues []string
	badPatch  error
}

func newFakeServer(res Resource, n int) *fakeServer {
	s := &fakeServer{res: res, rv: map[string]int{}, written: map[string]int{}, next: 100,
		writtenMeanwhile: map[string]bool{}, deletedMeanwhile: map[string]bool{}}
	for i := range n {
		k := fmt.Sprintf("s-%02d", i)
		if res.Namespaced {
			k = "ns/" + k
		}
		s.names = append(s.names, k)
		s.rv[k] = s.next
		s.next++
	}
	sort.Strings(s.names)
	return s
}

func (s *fakeServer) split(k string) (string, string) {
	if ns, name, ok := strings.Cut(k, "/"); ok {
		return ns, name
	}
	return "", k
}

// page is the page after token: the objects' keys and resourceVersions.
func (s *fakeServer) page(opts metav1.ListOptions) (keys []string, rvs []string, cont string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.continues = append(s.continues, opts.Continue)
	if opts.Continue != "" && opts.Continue == s.expire {
		s.expire = ""
		return nil, nil, "", apierrors.NewResourceExpired("the continue token is too old")
	}
	from := 0
	if opts.Continue != "" {
		if from, err = strconv.Atoi(opts.Continue); err != nil {
			return nil, nil, "", apierrors.NewBadRequest("bad continue token")
		}
	}
	to := from + int(opts.Limit)
	if opts.Limit == 0 || to >= len(s.names) {
		to = len(s.names)
	} else {
		cont = strconv.Itoa(to)
	}
	for _, k := range s.names[from:to] {
		rv, ok := s.rv[k]
		if !ok {
			continue
		}
		keys = append(keys, k)
		rvs = append(rvs, strconv.Itoa(rv))
		if s.writtenMeanwhile[k] {
			s.rv[k] = s.next
			s.next++
		}
		if s.deletedMeanwhile[k] {
			delete(s.rv, k)
		}
	}
	return keys, rvs, cont, nil
}

// patch stores the object if the patch is exactly the precondition patch
// at its current resourceVersion.
func (s *fakeServer) patch(a clienttesting.PatchAction) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := a.GetName()
	if a.GetNamespace() != "" {
		k = a.GetNamespace() + "/" + k
	}
	var body map[string]map[string]string
	if a.GetPatchType() != types.MergePatchType {
		s.badPatch = fmt.Errorf("patch type %s, want a merge patch", a.GetPatchType())
	} else if err := json.Unmarshal(a.GetPatch(), &body); err != nil || len(body) != 1 || len(body["metadata"]) != 1 {
		s.badPatch = fmt.Errorf("patch %s, want only metadata.resourceVersion", a.GetPatch())
	}
	if a.GetSubresource() != "" || (a.GetNamespace() != "") != s.res.Namespaced {
		s.badPatch = fmt.Errorf("patch of %s (subresource %q) for a resource namespaced=%v", k, a.GetSubresource(), s.res.Namespaced)
	}
	gr := s.res.GVR.GroupResource()
	rv, ok := s.rv[k]
	switch {
	case k == s.failPatch:
		return "", apierrors.NewInternalError(errors.New("etcd is down"))
	case !ok:
		return "", apierrors.NewNotFound(gr, a.GetName())
	case body["metadata"]["resourceVersion"] != strconv.Itoa(rv):
		return "", apierrors.NewConflict(gr, a.GetName(), errors.New("the object has been modified"))
	}
	s.written[k]++
	s.rv[k] = s.next
	s.next++
	return strconv.Itoa(s.rv[k]), nil
}

// clients are the ways RewriteOptions reaches the server.
var clients = map[string]func(s *fakeServer) RewriteOptions{
	"metadata": func(s *fakeServer) RewriteOptions {
		c := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
		c.PrependReactor("patch", s.res.GVR.Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
			p := a.(clienttesting.PatchAction)
			rv, err := s.patch(p)
			if err != nil {
				return true, nil, err
			}
			return true, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: p.GetNamespace(), Name: p.GetName(), ResourceVersion: rv}}, nil
		})
		return RewriteOptions{Metadata: pagingMetadata{c, s}}
	},
}

// pagingMetadata lists from the fake server: the fake's list actions drop
// the limit and the continue token.
type pagingMetadata struct {
	metadata.Interface
	s *fakeServer
}

func (p pagingMetadata) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return pagingGetter{p.Interface.Resource(gvr), p.s}
}

type pagingGetter struct {
	metadata.Getter
	s *fakeServer
}

func (g pagingGetter) List(_ context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	keys, rvs, cont, err := g.s.page(opts)
	if err != nil {
		return nil, err
	}
	l := &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{Continue: cont}}
	for i, k := range keys {
		ns, name := g.s.split(k)
		l.Items = append(l.Items, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rvs[i]}})
	}
	return l, nil
}

func TestRewrite(t *testing.T) {
	cluster := Resource{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "things"}}
	tests := []struct {
		name     string
		res      Resource
		objects  int
		pageSize int64
		workers  int
		setup    func(s *fakeServer, r *procedure.Record)
		// want is the summary (Elapsed ignored); wantWritten the objects
		// stored (nil: all); wantContinues the tokens listed with.
		want          Summary
		wantWritten   []string
		wantContinues []string
		// wantSaves is the journal saves (0: one per listed page and one
		// at the end).
		wantSaves int
		wantErr   string
	}{{
		name: "every object stored again, page by page", res: secrets, objects: 7, pageSize: 3, workers: 2,
		want:          Summary{Resource: "secrets", Rewritten: 7},
		wantContinues: []string{"", "3", "6"},
	}, {
		name: "a cluster-scoped resource", res: cluster, objects: 4, pageSize: 3, workers: 8,
		want:          Summary{Resource: "things.example.com", Rewritten: 4},
		wantContinues: []string{"", "3"},
	}, {
		name: "an object written since listed is a conflict, skipped", res: secrets, objects: 5, pageSize: 2, workers: 3,
		setup: func(s *fakeServer, _ *procedure.Record) {
			s.writtenMeanwhile["ns/s-01"], s.writtenMeanwhile["ns/s-04"] = true, true
		},
		want:          Summary{Resource: "secrets", Rewritten: 3, Conflicts: 2},
		wantWritten:   []string{"ns/s-00", "ns/s-02", "ns/s-03"},
		wantContinues: []string{"", "2", "4"},
	}, {
		name: "an object deleted since listed is counted gone", res: secrets, objects: 4, pageSize: 10, workers: 1,
		setup:         func(s *fakeServer, _ *procedure.Record) { s.deletedMeanwhile["ns/s-02"] = true },
		want:          Summary{Resource: "secrets", Rewritten: 3, Gone: 1},
		wantWritten:   []string{"ns/s-00", "ns/s-01", "ns/s-03"},
		wantContinues: []string{""},
	}, {
		name: "resumed from the page a record holds", res: secrets, objects: 8, pageSize: 3, workers: 2,
		setup: func(_ *fakeServer, r *procedure.Record) {
			must(t, r.Put(factContinue(secrets), "3"))
			must(t, r.Put(factPartial(secrets), Summary{Resource: "secrets", Rewritten: 2, Conflicts: 1}))
		},
		want:          Summary{Resource: "secrets", Rewritten: 7, Conflicts: 1},
		wantWritten:   []string{"ns/s-03", "ns/s-04", "ns/s-05", "ns/s-06", "ns/s-07"},
		wantContinues: []string{"3", "6"},
	}, {
		name: "a resource the record says is done is not listed", res: secrets, objects: 3, pageSize: 3, workers: 2,
		setup: func(_ *fakeServer, r *procedure.Record) {
			must(t, r.Put(factDone(secrets), Summary{Resource: "secrets", Rewritten: 3}))
		},
		want:        Summary{Resource: "secrets", Rewritten: 3, Resumed: true},
		wantWritten: []string{},
	}, {
		name: "an expired continue token starts the resource again", res: secrets, objects: 4, pageSize: 2, workers: 2,
		setup: func(s *fakeServer, r *procedure.Record) {
			s.expire = "2"
			must(t, r.Put(factContinue(secrets), "2"))
		},
		want:          Summary{Resource: "secrets", Rewritten: 4},
		wantContinues: []string{"2", "", "2"},
		wantSaves:     3,
	}, {
		name: "another error stops the run, the record keeps the pages done", res: secrets, objects: 6, pageSize: 2, workers: 2,
		setup:         func(s *fakeServer, _ *procedure.Record) { s.failPatch = "ns/s-03" },
		want:          Summary{Resource: "secrets", Rewritten: 3},
		wantWritten:   []string{"ns/s-00", "ns/s-01", "ns/s-02"},
		wantContinues: []string{"", "2"},
		wantErr:       "storing secrets ns/s-03 again: Internal error occurred: etcd is down",
	}}
	for _, tt := range tests {
		for client, newOptions := range clients {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				s := newFakeServer(tt.res, tt.objects)
				r := &procedure.Record{Procedure: "rewrite for key-2"}
				if tt.setup != nil {
					tt.setup(s, r)
				}
				var progress strings.Builder
				o := newOptions(s)
				o.Resources, o.PageSize, o.Workers, o.Progress = []Resource{tt.res}, tt.pageSize, tt.workers, &progress
				saves := 0
				sums, err := o.Run(context.Background(), r, func(context.Context) error { saves++; return nil })
				if tt.wantErr != "" {
					if err == nil || err.Error() != tt.wantErr {
						t.Fatalf("error %v, want %s", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if s.badPatch != nil {
					t.Fatal(s.badPatch)
				}
				if len(sums) != 1 {
					t.Fatalf("%d summaries, want 1", len(sums))
				}
				got := sums[0]
				got.Elapsed = 0
				if got != tt.want {
					t.Errorf("summary %+v, want %+v", got, tt.want)
				}
				wantWritten := tt.wantWritten
				if wantWritten == nil {
					wantWritten = s.names
				}
				var written []string
				for k, n := range s.written {
					if n != 1 {
						t.Errorf("%s stored %d times, want once", k, n)
					}
					written = append(written, k)
				}
				sort.Strings(written)
				if strings.Join(written, ",") != strings.Join(wantWritten, ",") {
					t.Errorf("stored %v, want %v", written, wantWritten)
				}
				if strings.Join(s.continues, ",") != strings.Join(tt.wantContinues, ",") {
					t.Errorf("listed with continue tokens %q, want %q", s.continues, tt.wantContinues)
				}
				if tt.want.Resumed {
					return
				}
				if tt.wantErr != "" {
					// The pages before the failing one are journaled.
					var cont string
					var partial Summary
					if _, err := r.Get(factContinue(tt.res), &cont); err != nil || cont != tt.wantContinues[len(tt.wantContinues)-1] {
						t.Errorf("journaled continue %q (%v), want %q", cont, err, tt.wantContinues[len(tt.wantContinues)-1])
					}
					if _, err := r.Get(factPartial(tt.res), &partial); err != nil || partial.Rewritten != 2 {
						t.Errorf("journaled partial %+v (%v), want the first page's 2 rewritten", partial, err)
					}
					return
				}
				wantSaves := tt.wantSaves
				if wantSaves == 0 {
					wantSaves = len(tt.wantContinues) + 1
				}
				if saves != wantSaves {
					t.Errorf("%d saves, want one per page and one at the end (%d)", saves, wantSaves)
				}
				var done Summary
				if ok, err := r.Get(factDone(tt.res), &done); !ok || err != nil || done.Rewritten != tt.want.Rewritten {
					t.Errorf("done fact %+v (%v, %v), want the summary", done, ok, err)
				}
				for _, f := range []string{factContinue(tt.res), factPartial(tt.res)} {
					if _, ok := r.Facts[f]; ok {
						t.Errorf("fact %s kept after the resource is done", f)
					}
				}
				wantLine := fmt.Sprintf("%s: %d rewritten, %d conflicts (written meanwhile), %d gone, ", tt.want.Resource, tt.want.Rewritten, tt.want.Conflicts, tt.want.Gone)
				if lines := strings.Split(strings.TrimSpace(progress.String()), "\n"); !strings.HasPrefix(lines[len(lines)-1], wantLine) {
					t.Errorf("last progress line %q, want it to start with %q", lines[len(lines)-1], wantLine)
				}
			})
		}
	}
}

func TestPreconditionPatch(t *testing.T) {
	if got, want := string(preconditionPatch("12345")), `{"metadata":{"resourceVersion":"12345"}}`; got != want {
		t.Errorf("patch %s, want %s", got, want)
	}
}

// An object listed without a resourceVersion is not written: the patch
// would be an unconditional write.
func TestRewriteRefusesAnObjectWithoutResourceVersion(t *testing.T) {
	c := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	c.PrependReactor("list", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &metav1.List{Items: []runtime.RawExtension{{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}}}}, nil
	})
	patched := false
	c.PrependReactor("patch", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		patched = true
		return true, &metav1.PartialObjectMetadata{}, nil
	})
	o := RewriteOptions{Metadata: c, Resources: []Resource{secrets}}
	_, err := o.Run(context.Background(), &procedure.Record{}, func(context.Context) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "ns/a again: listed without a resourceVersion") || patched {
		t.Errorf("error %v (patched: %v), want a refusal without a write", err, patched)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
