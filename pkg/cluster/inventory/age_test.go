package inventory

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

func at(day int) time.Time { return time.Date(2026, 11, day, 12, 0, 0, 0, time.UTC) }

func mf(day int, fields string) metav1.ManagedFieldsEntry {
	t := metav1.NewTime(at(day))
	return metav1.ManagedFieldsEntry{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, Time: &t,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

func certPEM(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestSecretAge(t *testing.T) {
	created := metav1.NewTime(at(1))
	base := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", CreationTimestamp: created}}
	}
	tests := []struct {
		name   string
		s      func() *corev1.Secret
		since  time.Time
		source string
	}{
		{"only creation", base, at(1), SourceCreation},
		{"data written later", func() *corev1.Secret {
			s := base()
			s.ManagedFields = []metav1.ManagedFieldsEntry{mf(3, `{"f:data":{"f:password":{}}}`), mf(9, `{"f:metadata":{"f:labels":{}}}`), mf(5, `{"f:stringData":{}}`)}
			return s
		}, at(5), SourceManagedFields},
		{"label changes do not count", func() *corev1.Secret {
			s := base()
			s.ManagedFields = []metav1.ManagedFieldsEntry{mf(9, `{"f:metadata":{"f:annotations":{}}}`)}
			return s
		}, at(1), SourceCreation},
		{"rotated-at wins", func() *corev1.Secret {
			s := base()
			s.Annotations = map[string]string{v1alpha1.RotatedAt: at(7).Format(time.RFC3339)}
			s.ManagedFields = []metav1.ManagedFieldsEntry{mf(9, `{"f:data":{}}`)}
			return s
		}, at(7), SourceRotatedAt},
	}
	for _, tt := range tests {
		a := SecretAge(tt.s())
		if !a.Since.Equal(tt.since) || a.Source != tt.source {
			t.Errorf("%s: %v from %s, want %v from %s", tt.name, a.Since, a.Source, tt.since, tt.source)
		}
	}

	tls := base()
	tls.Type = corev1.SecretTypeTLS
	tls.Data = map[string][]byte{corev1.TLSCertKey: certPEM(t, at(10), at(20))}
	a := SecretAge(tls)
	if !a.Since.Equal(at(10)) || a.Source != SourceCertificate || a.NotAfter == nil || !a.NotAfter.Equal(at(20)) {
		t.Errorf("TLS: %+v", a)
	}
}

// An old certificate copied into a Secret today is as old as the certificate.
func TestTLSAgeIsTheCertificates(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "copied", CreationTimestamp: metav1.NewTime(at(15))}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM(t, at(2), at(28))}}
	s.ManagedFields = []metav1.ManagedFieldsEntry{mf(16, `{"f:data":{"f:tls.crt":{}}}`)}
	s.Annotations = map[string]string{v1alpha1.RotatedAt: at(17).Format(time.RFC3339)}
	if a := SecretAge(s); !a.Since.Equal(at(2)) || a.Source != SourceCertificate {
		t.Errorf("copied certificate: %v from %s, want %v from the certificate", a.Since, a.Source, at(2))
	}
}
