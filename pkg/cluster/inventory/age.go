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
	a, _ := metaAge(&s.ObjectMeta)
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

// metaAge returns the age a Secret's metadata gives (SecretAge without
// the certificate) and the data keys its managedFields record as written
// (the names only), reading each managedFields entry once.
func metaAge(m *metav1.ObjectMeta) (Age, []string) {
	a := Age{Since: m.CreationTimestamp.Time.UTC(), Source: SourceCreation}
	if raw, ok := m.Annotations[v1alpha1.RotatedAt]; ok {
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			a = Age{Since: t.UTC(), Source: SourceRotatedAt}
		}
	}
	byAnnotation := a.Source == SourceRotatedAt
	var keys []string
	for _, mf := range m.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		writes, k := dataFields(mf.FieldsV1.Raw)
		keys = append(keys, k...)
		if byAnnotation || mf.Time == nil || !writes {
			continue
		}
		if t := mf.Time.Time.UTC(); a.Source == SourceCreation || t.After(a.Since) {
			a = Age{Since: t, Source: SourceManagedFields}
		}
	}
	return a, sortedUnique(keys)
}

// sortedUnique sorts keys and drops repeats; never nil.
func sortedUnique(keys []string) []string {
	if len(keys) == 0 {
		return []string{}
	}
	sort.Strings(keys)
	out := keys[:1]
	for _, k := range keys[1:] {
		if k != out[len(out)-1] {
			out = append(out, k)
		}
	}
	return out
}

// dataFields reads a managedFields FieldsV1 set: whether it includes the
// Secret's data or stringData, and the keys under them (names only:
// managedFields never hold values), in the set's order. It walks the
// bytes once (fieldsScanner) instead of decoding them into maps, which was
// a quarter of a 10,000-Secret status scan's CPU; what the walk does not
// handle (an escaped key, a repeated member, malformed JSON) is decoded
// with encoding/json as before.
func dataFields(raw []byte) (bool, []string) {
	if writes, keys, ok := scanFields(raw); ok {
		return writes, keys
	}
	return decodeFields(raw)
}

// decodeFields is dataFields with encoding/json.
func decodeFields(raw []byte) (bool, []string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false, nil
	}
	_, data := fields["f:data"]
	_, stringData := fields["f:stringData"]
	var out []string
	for _, top := range []string{"f:data", "f:stringData"} {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(fields[top], &keys); err != nil {
			continue
		}
		for k := range keys {
			if name, ok := strings.CutPrefix(k, "f:"); ok {
				out = append(out, name)
			}
		}
	}
	return data || stringData, out
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
