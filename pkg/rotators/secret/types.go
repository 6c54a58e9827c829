// Package secret carries out the staged rotation of Secret values:
// validate and plan everything first; keep the previous values in a
// companion Secret; write the new values with resourceVersion
// preconditions; restart each consuming workload once; wait until they are
// healthy; record the result on the Secret. Rotate, Undo and ForceSync
// run as procedures on the engine (pkg/procedure). A run killed at any
// point can be re-run: a Secret whose new values are written but whose
// consumers are not yet healthy is resumed at the first step not done,
// never rotated a second time, and the restarts journaled for its values
// (JournalAnnotation) are not done again.
package secret

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/delivery"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/changes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
)

// APIVersion and kinds of the structured records printed with -o json|yaml.
const (
	APIVersion      = v1alpha1.APIVersion
	KindRotation    = v1alpha1.KindSecretRotation
	KindFinish      = v1alpha1.KindSecretRotationFinish
	CompanionSuffix = "-previous"
	DefaultPrevious = 7 * 24 * time.Hour
	dryRunAllMarker = "All"
	FieldManager    = consumers.FieldManager
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

// Change says how one key gets its new value (model/changes builds them).
type Change = changes.Change

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
	// ReplacePrevious lets a rotation replace a companion that still holds
	// an unfinished, unexpired earlier rotation's values (refused
	// otherwise: they would be lost).
	ReplacePrevious bool
	// Restart restarts consumers and waits for them.
	Restart bool
	// Index, if set, is the namespace's workloads as the caller listed
	// them (a plan lists them once for all its items); nil lists them.
	Index *consumers.Index
	// ExtraTargets are restarted too (--restart-target).
	ExtraTargets []consumers.Workload
	// Timeout bounds each rollout wait.
	Timeout time.Duration
	// Workers bounds the writes in flight at once (companions, Secrets,
	// restarts, records); 0 is parallel.DefaultWorkers. The client's QPS
	// and burst bound their rate.
	Workers int
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
	// On names the cluster ("cluster prod (context ..., server ...)"): a
	// run that writes says it first, once its checks passed.
	On string
	// Handover, if set, is a token handed over once (cluster/delivery)
	// after planning and before the first write of a real run that
	// changes values; a failed hand-over stops the run with nothing
	// changed, and the token is taken back if the values cannot be
	// written. A resumed run hands nothing over.
	Handover *Handover
}

// Handover is a token and where it goes (the --hashed pair's plain half).
type Handover struct {
	Target delivery.Target
	Token  []byte
	// ErrOut is told when a token is taken back; nil discards it.
	ErrOut io.Writer
}

// Result is what a rotation did (or, in a dry run, would do): the
// SecretRotation record printed with -o json|yaml.
type Result = v1alpha1.SecretRotation

// SecretResult is one Secret's part of a rotation.
type SecretResult = v1alpha1.SecretResult

// KeyChange is one key's change, shown by fingerprints.
type KeyChange = v1alpha1.KeyChange

// Phases reported in Result.Phase.
const (
	PhasePlanned  = "planned"
	PhaseComplete = "complete"
	PhaseFailed   = "failed"
	PhaseUndone   = "undone"
)

// UndoCommand returns the command that restores a Secret's previous values.
// acting says which cluster a run writes to, before its first write.
func acting(o *Options, verb string) {
	if o.On != "" && o.DryRun != DryRunClient {
		fmt.Fprintf(o.Progress, "%s on %s\n", verb, o.On)
	}
}

func UndoCommand(ctx context.Context, namespace, name string) string {
	return fmt.Sprintf("%s undo secret/%s -n %s", display.KubectlRotate(ctx), name, namespace)
}

// CompanionName returns the name of a Secret's previous-values companion.
func CompanionName(secret string) string { return secret + CompanionSuffix }

func typeMeta(kind string) metav1.TypeMeta { return v1alpha1.TypeMeta(kind) }
