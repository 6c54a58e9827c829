package inventory

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

func TestSecretAgesReadsMetadataAndOnlyTLSData(t *testing.T) {
	created := metav1.NewTime(at(1))
	meta := func(name string, labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels, CreationTimestamp: created},
		}
	}
	rotated := meta("rotated", nil)
	rotated.Annotations = map[string]string{v1alpha1.RotatedAt: at(6).Format("2006-01-02T15:04:05Z")}
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	md := metadatafake.NewSimpleMetadataClient(scheme, meta("plain", nil), rotated, meta("rotated-previous", map[string]string{v1alpha1.CompanionOf: "rotated"}), meta("cert", nil))
	tls := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: "ns", CreationTimestamp: created}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM(t, at(10), at(20))}}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "ns"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}}
	kc := fake.NewClientset(tls, opaque)

	ages, err := SecretAges(context.Background(), md, kc, "ns", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ages) != 3 {
		t.Fatalf("ages for %d Secrets, want 3 (companion left out): %v", len(ages), ages)
	}
	if a := ages["ns/rotated"]; a.Source != SourceRotatedAt || !a.Since.Equal(at(6)) {
		t.Errorf("rotated: %+v", a)
	}
	if a := ages["ns/plain"]; a.Source != SourceCreation {
		t.Errorf("plain: %+v", a)
	}
	if a := ages["ns/cert"]; a.Source != SourceCertificate || a.NotAfter == nil {
		t.Errorf("cert: %+v", a)
	}
	// Values are read only for TLS Secrets and key sets: every full list is
	// filtered on the TLS type or on the key-set label.
	lists := 0
	for _, act := range kc.Actions() {
		la, ok := act.(k8stesting.ListAction)
		if !ok || act.GetResource().Resource != "secrets" {
			continue
		}
		lists++
		f, l := la.GetListRestrictions().Fields.String(), la.GetListRestrictions().Labels.String()
		if f != "type=kubernetes.io/tls" && l != JWKSLabel {
			t.Errorf("a full Secret list filtered on neither the TLS type nor the key-set label (fields %q, labels %q)", f, l)
		}
	}
	if lists != 2 {
		t.Errorf("%d full Secret lists, want 2", lists)
	}
}
