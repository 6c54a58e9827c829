package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KeyState is a key's state in a key set's rotation.
type KeyState string

// States.
const (
	// KeyStateNext: published for verification, not yet signing.
	KeyStateNext KeyState = "next"
	// KeyStateActive: the signing key.
	KeyStateActive KeyState = "active"
	// KeyStateRetiring: verifies tokens it signed earlier; signs no more.
	KeyStateRetiring KeyState = "retiring"
	// KeyStateExpired: past Slurm's exp for the key; its tokens are rejected.
	KeyStateExpired KeyState = "expired"
)

// KeyRow is one key of a KeySet, as `jwk list` shows it: never key material.
type KeyRow struct {
	KID       string       `json:"kid"`
	Kty       string       `json:"kty"`
	Alg       string       `json:"alg,omitempty"`
	Use       string       `json:"use,omitempty"`
	KeyOps    []string     `json:"keyOps,omitempty"`
	State     KeyState     `json:"state"`
	Created   *metav1.Time `json:"created,omitempty"`
	CreatedBy string       `json:"createdFrom,omitempty"`
	Retired   *metav1.Time `json:"retired,omitempty"`
	// Expires is Slurm's exp: tokens of this kid are rejected after it.
	Expires *metav1.Time `json:"expires,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// KeySet is the -o json|yaml form of `kubectl rotate jwk list` and of the
// other jwk subcommands' results.
type KeySet struct {
	metav1.TypeMeta `json:",inline"`
	Store           string   `json:"store"`
	Layout          string   `json:"layout"`
	DryRun          string   `json:"dryRun,omitempty"`
	Changed         []string `json:"changed,omitempty"`
	Keys            []KeyRow `json:"keys"`
	// Warnings: what the set's system would make of it (a set it refuses,
	// a signing key it rejects, no signing key, a key file it cannot read).
	Warnings []string `json:"warnings,omitempty"`
}
