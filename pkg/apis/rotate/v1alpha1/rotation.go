package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SecretRotation is what a rotation of Secrets did (or, in a dry run, would do). It is the
// structured record printed with -o json|yaml.
type SecretRotation struct {
	metav1.TypeMeta `json:",inline"`
	// DryRun is "client" or "server" for a dry run.
	DryRun string `json:"dryRun,omitempty"`
	// Target is the cluster the rotation acts on.
	Target  *ClusterTarget `json:"target,omitempty"`
	Secrets []SecretResult `json:"secrets"`
	// Consumers are every workload found reading a changed key.
	Consumers []Workload `json:"consumers"`
	// Restarted lists the workloads restarted, kind/name.
	Restarted []string `json:"restarted,omitempty"`
	// Unhealthy lists workloads whose rollout did not complete.
	Unhealthy []Unhealthy `json:"unhealthy,omitempty"`
	// Phase is the outcome: planned, complete, failed, undone.
	Phase string `json:"phase"`
	// Undo lists the commands that put the previous values back.
	Undo []string `json:"undo,omitempty"`
}

// SecretResult is one Secret's part of a rotation.
type SecretResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation after this rotation.
	Generation int64 `json:"generation"`
	// Resumed is true when an earlier interrupted run had already written
	// the values and this run only restarted and waited.
	Resumed bool        `json:"resumed,omitempty"`
	Keys    []KeyChange `json:"keys"`
	// Previous names the companion holding the previous values.
	Previous string `json:"previous,omitempty"`
	// ExpiresAt is when the previous values may be deleted.
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	Warnings  []string     `json:"warnings,omitempty"`
}

// KeyChange is one key's change, shown by fingerprints.
type KeyChange struct {
	Key    string `json:"key"`
	Source string `json:"source,omitempty"`
	// Old and New are fingerprints (values are never recorded).
	Old     string `json:"old,omitempty"`
	New     string `json:"new"`
	Created bool   `json:"created,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SecretRotationFinish is what `kubectl rotate finish` did.
type SecretRotationFinish struct {
	metav1.TypeMeta `json:",inline"`
	DryRun          string `json:"dryRun,omitempty"`
	Secret          string `json:"secret"`
	Namespace       string `json:"namespace"`
	// Deleted names the companion removed.
	Deleted   string      `json:"deleted"`
	Consumers []Workload  `json:"consumers"`
	Unhealthy []Unhealthy `json:"unhealthy,omitempty"`
}
