package inventory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/pager"

	"github.com/kube-rotate/kube-rotate/pkg/record"
)

// PageSize is how many objects one list request asks for.
const PageSize = 500

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// SecretAges lists Secrets in namespace ("" for all) matching selector and
// returns each one's age. It reads metadata only, in pages, except for TLS
// Secrets, whose certificates are read through a second list filtered on
// their type: the values of other Secrets never leave the API server.
// kube-rotate's own companions (NAME-previous) are left out.
func SecretAges(ctx context.Context, md metadata.Interface, kc kubernetes.Interface, namespace, selector string) (map[string]Age, error) {
	ages := map[string]Age{}
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return md.Resource(secretsGVR).Namespace(namespace).List(ctx, o)
	})
	p.PageSize = PageSize
	err := p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("unexpected object %T in a metadata list", obj)
		}
		if _, companion := m.Labels[record.CompanionOf]; companion {
			return nil
		}
		ages[m.Namespace+"/"+m.Name] = SecretAge(&corev1.Secret{ObjectMeta: m.ObjectMeta})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing secret metadata: %w", err)
	}
	tp := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return kc.CoreV1().Secrets(namespace).List(ctx, o)
	})
	tp.PageSize = PageSize
	err = tp.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector,
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()}, func(obj runtime.Object) error {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return fmt.Errorf("unexpected object %T in a secret list", obj)
		}
		ages[s.Namespace+"/"+s.Name] = SecretAge(s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing TLS secrets: %w", err)
	}
	return ages, nil
}
