package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/pager"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// PageSize is how many objects one list request asks for.
const PageSize = 500

// PageBuffer is how many pages a list reads ahead of the one being
// handled: one overlaps the next request with the work on a page, more
// only hold more pages (client-go's pager reads up to 10 ahead).
const PageBuffer = 1

// JWKSLabel marks a Secret holding a JSON Web Key Set (see record.JWKSKeyLabel).
const JWKSLabel = v1alpha1.JWKSKeyLabel

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// Secret is one Secret found by Scan: always its metadata and age; its
// full object (values included) only for TLS Secrets and key sets.
type Secret struct {
	Meta metav1.ObjectMeta
	// Type is known for the types Scan was asked about (and TLS); else "".
	Type corev1.SecretType
	Age  Age
	// Full is the whole Secret, read only where its data is needed.
	Full *corev1.Secret
	// DataKeys are the data keys managedFields show were written
	// (names only), sorted.
	DataKeys []string
}

// ScanOptions say which Secrets to read and which need their values.
type ScanOptions struct {
	// Namespace, "" for all.
	Namespace string
	// Selector is a label selector.
	Selector string
	// Types: Secret types to learn (a metadata list per type, filtered
	// on the type field); kubernetes.io/tls is always learned.
	Types []string
	// WantData reports whether a Secret's values are needed (a key set
	// chosen by the policy). Secrets labelled JWKSLabel always are.
	WantData func(m *metav1.ObjectMeta) bool
}

// Scan lists Secrets and works out each one's age (see Each), sorted by
// namespace and name. It holds every Secret at once: Each, which hands
// them over one at a time, is the way to read many.
func Scan(ctx context.Context, md metadata.Interface, kc kubernetes.Interface, o ScanOptions) ([]Secret, error) {
	var out []Secret
	if err := Each(ctx, md, kc, o, func(s *Secret) error {
		out = append(out, *s)
		return nil
	}); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Meta.Namespace != out[j].Meta.Namespace {
			return out[i].Meta.Namespace < out[j].Meta.Namespace
		}
		return out[i].Meta.Name < out[j].Meta.Name
	})
	return out, nil
}

// Each lists Secrets, works out each one's age and calls fn once per
// Secret, in no particular order; fn must not keep the Secret (or its
// Full object) past its return unless it copies what it needs, so that
// a scan holds one page at a time, not the cluster. An error from fn
// stops the scan and is returned.
//
// Full objects (values included) are read through lists filtered on the
// TLS type and on JWKSLabel, in pages of PageSize, first; then the
// metadata of every Secret, in pages of PageSize, for all the others; and
// last one GET for each other Secret WantData chooses: the values of other
// Secrets never leave the API server. kube-rotate's companions
// (NAME-previous) and Helm release records are left out.
func Each(ctx context.Context, md metadata.Interface, kc kubernetes.Interface, o ScanOptions, fn func(*Secret) error) error {
	call := func(s *Secret) error {
		if err := fn(s); err != nil {
			return &stopped{err}
		}
		return nil
	}
	// The types the policy asks about, for Secrets read as metadata only:
	// the keys of the Secrets of those types (few, as a rule).
	types := map[string]corev1.SecretType{}
	for _, t := range o.Types {
		if t == string(corev1.SecretTypeTLS) || t == "" {
			continue
		}
		err := eachMeta(ctx, md, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector,
			FieldSelector: fields.OneTermEqualSelector("type", t).String()}, func(m *metav1.PartialObjectMetadata) error {
			types[m.Namespace+"/"+m.Name] = corev1.SecretType(t)
			return nil
		})
		if err != nil {
			return listError(err, "listing secrets of type "+t)
		}
	}
	// Secrets read in full, by key: the metadata pass skips them.
	done := map[string]bool{}
	full := func(s *corev1.Secret) error {
		k := s.Namespace + "/" + s.Name
		if done[k] || skip(&s.ObjectMeta) {
			return nil
		}
		done[k] = true
		return call(fullSecret(s))
	}
	if err := eachFull(ctx, kc, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()}, full); err != nil {
		return listError(err, "listing TLS secrets")
	}
	sel := JWKSLabel
	if o.Selector != "" {
		sel = o.Selector + "," + JWKSLabel
	}
	if err := eachFull(ctx, kc, o.Namespace, metav1.ListOptions{LabelSelector: sel}, full); err != nil {
		return listError(err, "listing key-set secrets")
	}
	var get []metav1.ObjectMeta
	err := eachMeta(ctx, md, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector}, func(m *metav1.PartialObjectMetadata) error {
		k := m.Namespace + "/" + m.Name
		if done[k] || skip(&m.ObjectMeta) {
			return nil
		}
		if o.WantData != nil && o.WantData(&m.ObjectMeta) {
			get = append(get, m.ObjectMeta)
			return nil
		}
		s := &Secret{Meta: m.ObjectMeta, Type: types[k]}
		s.Age, s.DataKeys = metaAge(&m.ObjectMeta)
		return call(s)
	})
	if err != nil {
		return listError(err, "listing secret metadata")
	}
	return getAll(ctx, kc, get, fn)
}

// stopped is an error of Each's caller: Each returns it as it is, not as
// an error of the list it stopped.
type stopped struct{ err error }

func (s *stopped) Error() string { return s.err.Error() }

// listError says which list failed, or returns the caller's own error.
func listError(err error, what string) error {
	var s *stopped
	if errors.As(err, &s) {
		return s.err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fullSecret is what Each reports of a Secret read in full.
func fullSecret(s *corev1.Secret) *Secret {
	_, keys := metaAge(&s.ObjectMeta)
	return &Secret{Meta: s.ObjectMeta, Type: s.Type, Age: SecretAge(s), Full: s, DataKeys: keys}
}

// SecretAges lists Secrets in namespace ("" for all) matching selector and
// returns each one's age, keyed NAMESPACE/NAME (see Scan).
func SecretAges(ctx context.Context, md metadata.Interface, kc kubernetes.Interface, namespace, selector string) (map[string]Age, error) {
	list, err := Scan(ctx, md, kc, ScanOptions{Namespace: namespace, Selector: selector})
	if err != nil {
		return nil, err
	}
	ages := make(map[string]Age, len(list))
	for _, s := range list {
		ages[s.Meta.Namespace+"/"+s.Meta.Name] = s.Age
	}
	return ages, nil
}

// skip leaves out kube-rotate's companions and Helm's release records,
// which hold no credential of their own.
func skip(m *metav1.ObjectMeta) bool {
	if _, companion := m.Labels[v1alpha1.CompanionOf]; companion {
		return true
	}
	return m.Labels["owner"] == "helm" && strings.HasPrefix(m.Name, "sh.helm.release.v1.")
}

func eachMeta(ctx context.Context, md metadata.Interface, ns string, lo metav1.ListOptions, fn func(*metav1.PartialObjectMetadata) error) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return md.Resource(secretsGVR).Namespace(ns).List(ctx, o)
	})
	p.PageSize, p.PageBufferSize = PageSize, PageBuffer
	return p.EachListItem(ctx, lo, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("unexpected object %T in a metadata list", obj)
		}
		return fn(m)
	})
}

func eachFull(ctx context.Context, kc kubernetes.Interface, ns string, lo metav1.ListOptions, fn func(*corev1.Secret) error) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kc.CoreV1().Secrets(ns).List(ctx, o)
	})
	p.PageSize, p.PageBufferSize = PageSize, PageBuffer
	return p.EachListItem(ctx, lo, func(obj runtime.Object) error {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return fmt.Errorf("unexpected object %T in a secret list", obj)
		}
		return fn(s)
	})
}

// getAll reads the given Secrets in full, a few at a time (the client's
// rate limiter paces them), and calls fn for each, one at a time.
func getAll(ctx context.Context, kc kubernetes.Interface, list []metav1.ObjectMeta, fn func(*Secret) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 16)
	)
	for i := range list {
		m := &list[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			got, err := kc.CoreV1().Secrets(m.Namespace).Get(ctx, m.Name, metav1.GetOptions{})
			mu.Lock()
			defer mu.Unlock()
			if first != nil {
				return
			}
			if err != nil {
				first = fmt.Errorf("reading secret/%s in namespace %s: %w", m.Name, m.Namespace, err)
				return
			}
			s := fullSecret(got)
			// The metadata the Secret was chosen by.
			s.Meta = *m
			first = fn(s)
		}()
	}
	wg.Wait()
	return first
}
