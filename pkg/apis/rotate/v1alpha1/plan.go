package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RotationPlanRun is what a plan run did, as `kubectl rotate apply -o
// json|yaml` prints it: built from the run's journal; no value, only
// fingerprints.
type RotationPlanRun struct {
	metav1.TypeMeta `json:",inline"`
	Plan            string `json:"plan"`
	// Target is the cluster the plan runs on (set when printed).
	Target      *ClusterTarget `json:"target,omitempty"`
	Fingerprint string         `json:"fingerprint"`
	// RotationID keys every step of this run: pending companions and hook
	// Jobs carry it, so a re-run knows its own work.
	RotationID string                  `json:"rotationId"`
	Started    metav1.Time             `json:"started"`
	Updated    metav1.Time             `json:"updated"`
	Items      map[string]*PlanRunItem `json:"items"`
	// Restarted is set once the coalesced restarts after the last finish
	// completed.
	Restarted bool `json:"restarted,omitempty"`
	// Restarts are the workloads restarted (kind/name), in order.
	Restarts []string `json:"restarts,omitempty"`
}

// PlanRunItem is one plan item's progress.
type PlanRunItem struct {
	// Done is the last step that completed ("" for none).
	Done string `json:"done"`
	// Failed is the step that failed last, with its error (one line, no
	// value); cleared when that step succeeds.
	Failed string `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	// KID is the key a key-set item published at create and promotes at
	// finish.
	KID string `json:"kid,omitempty"`
	// Fingerprints of the pending values, by key.
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
	// Steps records when each step finished.
	Steps map[string]metav1.Time `json:"steps,omitempty"`
	// Hooks are the last result of each hook that ran, by step.
	Hooks map[string]*PlanHookResult `json:"hooks,omitempty"`
}

// PlanHookResult is what one hook of a plan did: exit code, times and a
// redacted tail of its output.
type PlanHookResult struct {
	Step string `json:"step"`
	// Kind is exec or job.
	Kind string `json:"kind"`
	// ExitCode is the hook's exit code; -1 when it has none (killed by a
	// signal or timeout, a Job that failed without a terminated container).
	ExitCode int         `json:"exitCode"`
	Started  metav1.Time `json:"started"`
	Finished metav1.Time `json:"finished"`
	// Output is the last bytes of the combined output (for a Job: the logs
	// of its failed pod), with every pending and current value, and its
	// encoded forms, replaced by [REDACTED].
	Output string `json:"output,omitempty"`
	// Job is namespace/name of the Job a job hook ran.
	Job string `json:"job,omitempty"`
}
