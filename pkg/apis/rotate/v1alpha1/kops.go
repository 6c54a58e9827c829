package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// KeysetRotationStatus is where a kOps cluster's keyset rotation stands, as
// `kops-rotate status -o json|yaml` prints it: worked out from the keysets,
// with the journal's CLI steps.
type KeysetRotationStatus struct {
	metav1.TypeMeta `json:",inline"`
	Cluster         string `json:"cluster"`
	StateStore      string `json:"stateStore"`
	// Stage of the procedure: the least advanced keyset's (idle, staged,
	// promoted, distrusted).
	Stage string `json:"stage"`
	// Next are the commands that take the next stage.
	Next []string `json:"next,omitempty"`
	// Rollback are the commands that undo the current stage.
	Rollback []string `json:"rollback,omitempty"`
	Keysets  []Keyset `json:"keysets"`
	// Record is the journal's steps done, when there are any.
	Record *KeysetRotationRecord `json:"record,omitempty"`
}

// Keyset is where one kOps keyset stands.
type Keyset struct {
	Name    string        `json:"name"`
	Primary KeysetKeypair `json:"primary"`
	// Staged: trusted keypairs newer than the primary (candidates to promote).
	Staged []KeysetKeypair `json:"staged,omitempty"`
	// Previous: trusted keypairs older than the primary (to distrust).
	Previous []KeysetKeypair `json:"previous,omitempty"`
	// Distrusted keypairs.
	Distrusted []KeysetKeypair `json:"distrusted,omitempty"`
	// TrustOnly: certificates without a private key, trusted for
	// verification only; the procedure never distrusts them.
	TrustOnly []KeysetKeypair `json:"trustOnly,omitempty"`
	Stage     string          `json:"stage"`
}

// KeysetKeypair is one keypair of a keyset: its id (a certificate serial)
// and when it was made and distrusted. Never key material.
type KeysetKeypair struct {
	ID         string       `json:"id"`
	Created    metav1.Time  `json:"created"`
	Distrusted *metav1.Time `json:"distrusted,omitempty"`
	// NotAfter is when the certificate expires.
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// Fingerprint is the certificate's SHA-256 (DER, hex): public.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// KeysetRotationRecord is the journal of a keyset rotation: when it started
// and when each step was done.
type KeysetRotationRecord struct {
	Started *metav1.Time           `json:"started,omitempty"`
	Done    map[string]metav1.Time `json:"done,omitempty"`
	// Waiting is the person's step the last run stopped at ("" when none):
	// `kops-rotate run --yes --done STEP` goes on once it is done.
	Waiting string `json:"waiting,omitempty"`
}
