package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EncryptionRotationStatus is where an encryption-at-rest key rotation
// stands, as `kubectl rotate encryption status` and `kops-rotate
// encryption-config status` print it with -o json|yaml: read from the
// EncryptionConfiguration (its key names and order), the journal, and the
// cluster. It holds no key material.
type EncryptionRotationStatus struct {
	metav1.TypeMeta `json:",inline"`
	// Source is where the configuration lives.
	Source string `json:"source"`
	// Stage is idle, staged or promoted.
	Stage string `json:"stage"`
	// Key is the rotation's key (the staged one, or the first); Old are the
	// keys it replaces.
	Key       string               `json:"key"`
	Old       []string             `json:"old,omitempty"`
	Providers []EncryptionProvider `json:"providers"`
	// Hash is the configuration's sha256, as kube-apiserver reports it in
	// apiserver_encryption_config_controller_last_config_info.
	Hash string `json:"hash"`
	// Checked is true when the cluster was asked which API servers applied
	// the configuration; Pending are those that have not.
	Checked bool     `json:"checked"`
	Pending []string `json:"pending,omitempty"`
	// Rewritten is true when the rewrite completed under the configuration
	// as it is; Rewrite is the last rewrite, per resource.
	Rewritten bool                `json:"rewritten"`
	Rewrite   []EncryptionRewrite `json:"rewrite,omitempty"`
	// Stored counts the objects etcd stores under each key prefix, when
	// etcd was read.
	Stored map[string]int64 `json:"stored,omitempty"`
	// RetiredKept is where the retired keys are kept for a rollback of the
	// retire ("" when none are).
	RetiredKept string `json:"retiredKept,omitempty"`
	// Steps are the journal's steps done; Failed and Error its last
	// failure; Rollback the rollback in progress.
	Steps    []string `json:"steps,omitempty"`
	Failed   string   `json:"failed,omitempty"`
	Error    string   `json:"error,omitempty"`
	Rollback string   `json:"rollback,omitempty"`
	// Next is the command that goes on.
	Next string `json:"next"`
}

// EncryptionProvider is one provider that encrypts with keys (aescbc,
// aesgcm, secretbox) and is first in its resources entry.
type EncryptionProvider struct {
	// Index is its resources entry.
	Index     int             `json:"index"`
	Resources []string        `json:"resources"`
	Type      string          `json:"type"`
	Keys      []EncryptionKey `json:"keys"`
}

// EncryptionKey is one key: never its secret.
type EncryptionKey struct {
	Name string `json:"name"`
	// Created is when it was made, from its name (none for a key named by
	// hand).
	Created *metav1.Time `json:"created,omitempty"`
	// Encrypts is true for the first key; the others only decrypt.
	Encrypts bool `json:"encrypts"`
	Bytes    int  `json:"bytes"`
}

// EncryptionRewrite is what the rewrite did for one resource.
type EncryptionRewrite struct {
	Resource  string `json:"resource"`
	Rewritten int64  `json:"rewritten"`
	Conflicts int64  `json:"conflicts"`
	Gone      int64  `json:"gone"`
	Elapsed   string `json:"elapsed"`
}
