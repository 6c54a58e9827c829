// Package secret carries out the staged rotation of Secret values:
// validate and plan everything first; keep the previous values in a
// companion Secret; write the new values with resourceVersion
// preconditions; restart each consuming workload once; wait until they are
// healthy; record the result on the Secret. A run killed at any point can
// be re-run: a Secret whose new values are written but whose consumers are
// not yet healthy is resumed, never rotated a second time.
package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
)

// APIVersion and kinds of the structured records printed with -o json|yaml.
const (
	APIVersion       = "rotate.kube-rotate.io/v1alpha1"
	KindRotation     = "SecretRotation"
	KindFinish       = "SecretRotationFinish"
	CompanionSuffix  = "-previous"
	DefaultPrevious  = 7 * 24 * time.Hour
	dryRunAllMarker  = "All"
	FieldManager     = consumers.FieldManager
	externalSecretGr = "external-secrets.io"
)

// DryRun selects kubectl's dry-run strategies.
type DryRun string

// Dry-run strategies, as kubectl's --dry-run.
const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// Clients are the API clients a rotation uses.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Change says how one key gets its new value.
type Change struct {
	// Key in the Secret's data.
	Key string
	// Source describes the new value for plans: "random:32", "file",
	// "stdin", "url-password", "json-field aws_secret_access_key", ...
	Source string
	// Make returns the new value from the current one (exists is false
	// when the key is absent). Errors must not contain values.
	Make func(old []byte, exists bool) ([]byte, error)
	// Generated is true for random values: a client dry run shows no
	// fingerprint for them, since the real run generates other ones.
	Generated bool
}

// Options of a rotation.
type Options struct {
	Namespace string
	// Secrets to rotate; each gets every Change.
	Secrets []string
	Changes []Change
	// CreateKeys allows changing keys the Secret does not have yet.
	CreateKeys bool
	// KeepPrevious writes the old values to NAME-previous first.
	KeepPrevious bool
	// PreviousTTL sets the companion's expires-at.
	PreviousTTL time.Duration
	// Restart restarts consumers and waits for them.
	Restart bool
	// ExtraTargets are restarted too (--restart-target).
	ExtraTargets []consumers.Workload
	// Timeout bounds each rollout wait.
	Timeout time.Duration
	// UndoOnFailure restores the previous values if a rollout fails.
	UndoOnFailure bool
	DryRun        DryRun
	// By names who rotates, for the history.
	By string
	// Method is how the values were made, as `kubectl rotate secret` flags
	// that carry no value and no local path (e.g. "--key token --generate
	// hex:32"); it is recorded so `kubectl rotate status` can say exactly
	// how to rotate the Secret again. "" keeps the recorded one.
	Method string
	// Now returns the current time; tests set it.
	Now func() time.Time
	// Progress receives progress lines (never values); nil discards them.
	Progress io.Writer
	// BeforeWrite, if set, runs after planning and before the first write
	// of a real (not dry) run that changes values, e.g. to hand a token
	// over; an error stops the run with nothing changed.
	BeforeWrite func(context.Context) error
	// AfterFailedWrite, if set, runs when writing failed after BeforeWrite
	// succeeded, to take back what BeforeWrite handed out.
	AfterFailedWrite func(context.Context)
}

// Result is what a rotation did (or, in a dry run, would do). It is the
// structured record printed with -o json|yaml.
type Result struct {
	metav1.TypeMeta `json:",inline"`
	// DryRun is "client" or "server" for a dry run.
	DryRun  string         `json:"dryRun,omitempty"`
	Secrets []SecretResult `json:"secrets"`
	// Consumers are every workload found reading a changed key.
	Consumers []consumers.Workload `json:"consumers"`
	// Restarted lists the workloads restarted, kind/name.
	Restarted []string `json:"restarted,omitempty"`
	// Unhealthy lists workloads whose rollout did not complete.
	Unhealthy []consumers.Unhealthy `json:"unhealthy,omitempty"`
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
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
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

// Phases reported in Result.Phase.
const (
	PhasePlanned  = "planned"
	PhaseComplete = "complete"
	PhaseFailed   = "failed"
	PhaseUndone   = "undone"
)

// UndoCommand returns the command that restores a Secret's previous values.
func UndoCommand(namespace, name string) string {
	return fmt.Sprintf("kubectl rotate undo secret/%s -n %s", name, namespace)
}

// CompanionName returns the name of a Secret's previous-values companion.
func CompanionName(secret string) string { return secret + CompanionSuffix }

// DeepCopyObject makes Result a runtime.Object for kubectl's printers.
func (r *Result) DeepCopyObject() runtime.Object { return deepCopy(r) }

// DeepCopyObject makes FinishResult a runtime.Object for kubectl's printers.
func (r *FinishResult) DeepCopyObject() runtime.Object { return deepCopy(r) }

func deepCopy[T any, P interface {
	*T
	runtime.Object
}](in P) runtime.Object {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	out := P(new(T))
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: APIVersion, Kind: kind}
}
