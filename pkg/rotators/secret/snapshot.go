package secret

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/parallel"
)

// ListMin is how many Secrets a run rotates before it reads them (and
// their companions) with one paged list of the namespace instead of a
// get for each: a rotation of 200 Secrets reads them in one request
// instead of 400, which at the client's rate limit is two seconds.
const ListMin = 8

// listPage is the page of that list.
const listPage = 500

// snapshot is the Secrets of one namespace a run read when it planned:
// the Secrets it rotates and their companions (names given; absent ones
// are known absent). The later steps of the run work from it and from
// what their own writes returned, not from reading every object again;
// every write carries the resourceVersion the snapshot holds, so a
// change made by someone else since is a conflict, not a lost update.
type snapshot struct {
	client    kubernetes.Interface
	namespace string
	mu        sync.Mutex
	objs      map[string]*corev1.Secret // nil value: known absent
}

// readSnapshot reads names (and their companions, when companions is
// true) from namespace: with one paged list when there are at least
// ListMin names and the namespace is not much larger than what is
// wanted, else with a get for each, workers at a time.
func readSnapshot(ctx context.Context, kc kubernetes.Interface, namespace string, names []string, companions bool, workers int) (*snapshot, error) {
	sn := &snapshot{client: kc, namespace: namespace, objs: map[string]*corev1.Secret{}}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		if companions {
			want[CompanionName(n)] = true
		}
	}
	if len(names) >= ListMin {
		complete, err := sn.list(ctx, want)
		if err != nil {
			return nil, err
		}
		if complete {
			for n := range want {
				if _, ok := sn.objs[n]; !ok {
					sn.objs[n] = nil
				}
			}
			return sn, nil
		}
	}
	var missing []string
	for _, n := range names {
		for _, m := range []string{n, CompanionName(n)} {
			if m != n && !companions {
				continue
			}
			if _, ok := sn.objs[m]; !ok {
				missing = append(missing, m)
			}
		}
	}
	err := parallel.ForEach(ctx, len(missing), workers, func(ctx context.Context, i int) error {
		_, err := sn.get(ctx, missing[i])
		return err
	})
	return sn, err
}

// list reads the namespace's Secrets in pages, keeping the wanted ones;
// it stops (complete false) after the first page when the namespace
// holds many more Secrets than are wanted: gets are cheaper then.
func (sn *snapshot) list(ctx context.Context, want map[string]bool) (bool, error) {
	opts := metav1.ListOptions{Limit: listPage}
	for page := 0; ; page++ {
		l, err := sn.client.CoreV1().Secrets(sn.namespace).List(ctx, opts)
		if apierrors.IsForbidden(err) && page == 0 {
			return false, nil // allowed to get them one by one, maybe
		}
		if err != nil {
			return false, fmt.Errorf("listing secrets in namespace %s: %w", sn.namespace, err)
		}
		for i := range l.Items {
			if s := &l.Items[i]; want[s.Name] {
				sn.objs[s.Name] = s
			}
		}
		if l.Continue == "" {
			return true, nil
		}
		if page == 0 {
			left := l.RemainingItemCount
			if left == nil || *left+int64(len(l.Items)) > int64(4*len(want)+listPage) {
				return false, nil
			}
		}
		opts.Continue = l.Continue
	}
}

// get returns Secret name as read at planning, reading it when the
// snapshot does not know it; nil when it does not exist.
func (sn *snapshot) get(ctx context.Context, name string) (*corev1.Secret, error) {
	sn.mu.Lock()
	s, ok := sn.objs[name]
	sn.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := sn.client.CoreV1().Secrets(sn.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s, err = nil, nil
	}
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+name, sn.namespace)
	}
	sn.mu.Lock()
	sn.objs[name] = s
	sn.mu.Unlock()
	return s, nil
}

// Snapshot is the Secrets (and companions) of one namespace as one read
// saw them, for the checks of other rotators that read many Secrets
// before they write (a plan's preflight): one paged list instead of two
// gets per Secret when there are at least ListMin names.
type Snapshot struct{ sn *snapshot }

// ReadSnapshot reads names, and their companions when companions is true,
// from namespace.
func ReadSnapshot(ctx context.Context, kc kubernetes.Interface, namespace string, names []string, companions bool) (*Snapshot, error) {
	sn, err := readSnapshot(ctx, kc, namespace, names, companions, 0)
	if err != nil {
		return nil, err
	}
	return &Snapshot{sn: sn}, nil
}

// Get returns Secret name as read (reading it if the snapshot does not
// know it); nil when it does not exist.
func (s *Snapshot) Get(ctx context.Context, name string) (*corev1.Secret, error) {
	return s.sn.get(ctx, name)
}
