package inventory

import (
	"context"
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

// Scan lists Secrets and works out each one's age. It reads metadata only,
// in pages of PageSize; full objects are read through lists filtered on
// the TLS type and on JWKSLabel, and with one GET for each other Secret
// WantData chooses: the values of other Secrets never leave the API
// server. kube-rotate's companions (NAME-previous) and Helm release
// records are left out. The result is sorted by namespace and name.
func Scan(ctx context.Context, md metadata.Interface, kc kubernetes.Interface, o ScanOptions) ([]Secret, error) {
	byKey := map[string]*Secret{}
	var order []string
	err := eachMeta(ctx, md, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector}, func(m *metav1.PartialObjectMetadata) {
		if skip(&m.ObjectMeta) {
			return
		}
		k := m.Namespace + "/" + m.Name
		byKey[k] = &Secret{Meta: m.ObjectMeta, Age: SecretAge(&corev1.Secret{ObjectMeta: m.ObjectMeta}), DataKeys: writtenKeys(m.ManagedFields)}
		order = append(order, k)
	})
	if err != nil {
		return nil, fmt.Errorf("listing secret metadata: %w", err)
	}
	for _, t := range o.Types {
		if t == string(corev1.SecretTypeTLS) || t == "" {
			continue
		}
		err := eachMeta(ctx, md, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector,
			FieldSelector: fields.OneTermEqualSelector("type", t).String()}, func(m *metav1.PartialObjectMetadata) {
			if s, ok := byKey[m.Namespace+"/"+m.Name]; ok {
				s.Type = corev1.SecretType(t)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("listing secrets of type %s: %w", t, err)
		}
	}
	full := func(s *corev1.Secret) {
		if e, ok := byKey[s.Namespace+"/"+s.Name]; ok {
			e.Full, e.Type = s, s.Type
			e.Age = SecretAge(s)
		}
	}
	if err := eachFull(ctx, kc, o.Namespace, metav1.ListOptions{LabelSelector: o.Selector,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()}, full); err != nil {
		return nil, fmt.Errorf("listing TLS secrets: %w", err)
	}
	sel := JWKSLabel
	if o.Selector != "" {
		sel = o.Selector + "," + JWKSLabel
	}
	if err := eachFull(ctx, kc, o.Namespace, metav1.ListOptions{LabelSelector: sel}, full); err != nil {
		return nil, fmt.Errorf("listing key-set secrets: %w", err)
	}
	if o.WantData != nil {
		var get []*Secret
		for _, k := range order {
			if s := byKey[k]; s.Full == nil && o.WantData(&s.Meta) {
				get = append(get, s)
			}
		}
		if err := getAll(ctx, kc, get); err != nil {
			return nil, err
		}
	}
	sort.Strings(order)
	out := make([]Secret, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out, nil
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

func eachMeta(ctx context.Context, md metadata.Interface, ns string, lo metav1.ListOptions, fn func(*metav1.PartialObjectMetadata)) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return md.Resource(secretsGVR).Namespace(ns).List(ctx, o)
	})
	p.PageSize = PageSize
	return p.EachListItem(ctx, lo, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("unexpected object %T in a metadata list", obj)
		}
		fn(m)
		return nil
	})
}

func eachFull(ctx context.Context, kc kubernetes.Interface, ns string, lo metav1.ListOptions, fn func(*corev1.Secret)) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kc.CoreV1().Secrets(ns).List(ctx, o)
	})
	p.PageSize = PageSize
	return p.EachListItem(ctx, lo, func(obj runtime.Object) error {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return fmt.Errorf("unexpected object %T in a secret list", obj)
		}
		fn(s)
		return nil
	})
}

// getAll reads the given Secrets in full, a few at a time (the client's
// rate limiter paces them).
func getAll(ctx context.Context, kc kubernetes.Interface, list []*Secret) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 16)
	)
	for _, s := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			got, err := kc.CoreV1().Secrets(s.Meta.Namespace).Get(ctx, s.Meta.Name, metav1.GetOptions{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("reading secret/%s in namespace %s: %w", s.Meta.Name, s.Meta.Namespace, err)
				}
				return
			}
			s.Full, s.Type = got, got.Type
			s.Age = SecretAge(got)
		}()
	}
	wg.Wait()
	return first
}
