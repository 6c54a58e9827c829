// Package inventory works out how old each credential is and where that
// figure comes from: Kubernetes keeps no history of a Secret's data, and
// creationTimestamp does not move when the data changes.
package inventory

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// Sources of an age, best first.
const (
	// SourceRotatedAt: kube-rotate's rotate.kube-rotate.io/rotated-at annotation.
	SourceRotatedAt = "rotated-at"
	// SourceManagedFields: the newest managedFields entry that wrote data.
	SourceManagedFields = "managedFields"
	// SourceCreation: creationTimestamp; the data may be younger, never older.
	SourceCreation = "creationTimestamp (lower bound)"
	// SourceCertificate: the certificate's NotBefore.
	SourceCertificate = "certificate"
)

// Age is when a credential's value was set, and how that is known.
type Age struct {
	Since  time.Time `json:"since"`
	Source string    `json:"source"`
	// NotAfter is when a certificate expires (TLS Secrets only).
	NotAfter *time.Time `json:"notAfter,omitempty"`
}

// SecretAge returns when s's data was last set: the rotated-at annotation,
// else the newest managedFields entry that touched data or stringData,
// else creationTimestamp. For kubernetes.io/tls Secrets with a readable
// certificate, its NotBefore is the age and NotAfter is reported.
func SecretAge(s *corev1.Secret) Age {
	a := Age{Since: s.CreationTimestamp.Time.UTC(), Source: SourceCreation}
	if raw, ok := s.Annotations[v1alpha1.RotatedAt]; ok {
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			a = Age{Since: t.UTC(), Source: SourceRotatedAt}
		}
	}
	if a.Source == SourceCreation {
		for _, mf := range s.ManagedFields {
			if mf.Time == nil || mf.FieldsV1 == nil || !writesData(mf.FieldsV1.Raw) {
				continue
			}
			if t := mf.Time.Time.UTC(); a.Source == SourceCreation || t.After(a.Since) {
				a = Age{Since: t, Source: SourceManagedFields}
			}
		}
	}
	if s.Type == corev1.SecretTypeTLS {
		if cert, err := leaf(s.Data[corev1.TLSCertKey]); err == nil {
			na := cert.NotAfter.UTC()
			a.NotAfter = &na
			// The certificate's own issue time is the credential's age: a
			// certificate copied into a new Secret is as old as it was.
			a.Since, a.Source = cert.NotBefore.UTC(), SourceCertificate
		}
	}
	return a
}

// writesData reports whether a managedFields FieldsV1 set includes the
// Secret's data or stringData.
func writesData(raw []byte) bool {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false
	}
	_, data := fields["f:data"]
	_, stringData := fields["f:stringData"]
	return data || stringData
}

// leaf parses the first certificate of a PEM bundle.
func leaf(pemData []byte) (*x509.Certificate, error) {
	for len(bytes.TrimSpace(pemData)) > 0 {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
	return nil, errors.New("no certificate")
}

// writtenKeys returns the data and stringData keys managedFields record as
// written (names only: managedFields never hold values), sorted.
func writtenKeys(entries []metav1.ManagedFieldsEntry) []string {
	seen := map[string]bool{}
	for _, mf := range entries {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		for _, top := range []string{"f:data", "f:stringData"} {
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(fields[top], &keys); err != nil {
				continue
			}
			for k := range keys {
				if name, ok := strings.CutPrefix(k, "f:"); ok {
					seen[name] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
