package v1alpha1

// Every annotation and label name kube-rotate reads or writes is declared
// here, once.

// Prefix of every annotation and label this project writes: the group.
const Prefix = GroupName + "/"

// Annotations on a rotated Secret.
const (
	// RotatedAt is when the values last changed (RFC 3339, UTC).
	RotatedAt = Prefix + "rotated-at"
	// Generation counts rotations (and undos) of the Secret.
	Generation = Prefix + "generation"
	// Keys lists the keys changed by the last rotation, comma-separated.
	Keys = Prefix + "keys"
	// Fingerprints maps each changed key to the fingerprint of its new value (JSON).
	Fingerprints = Prefix + "fingerprints"
	// Previous names the companion Secret holding the values before the last rotation.
	Previous = Prefix + "previous"
	// Phase is where the last rotation stands: PhaseWritten or PhaseComplete.
	Phase = Prefix + "phase"
	// History is the list of past rotations (JSON, newest last, bounded).
	History = Prefix + "history"
	// Method is how the values were made: `kubectl rotate secret` flags
	// without values or local paths, replayed by `kubectl rotate status`.
	Method = Prefix + "method"
)

// Annotations and labels on a companion (previous-values) Secret.
const (
	// CompanionOf labels a companion with its source Secret's name.
	CompanionOf = Prefix + "companion-of"
	// ExpiresAt is when the previous values may be deleted (RFC 3339, UTC).
	ExpiresAt = Prefix + "expires-at"
	// Source names the source Secret.
	Source = Prefix + "source"
)

// JWKSKeyLabel marks a Secret holding a JSON Web Key Set; its value names
// the data key holding the set, or is "true" when that key cannot be a
// label value. `kubectl rotate jwk` sets it; `kubectl rotate status` finds
// key sets by it without reading other Secrets' values.
const JWKSKeyLabel = Prefix + "jwks-key"

// ManagedByLabel and ManagedBy mark objects this project creates.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "kube-rotate"
)

// Phases of a rotation as recorded on the Secret.
const (
	// PhaseWritten: new values are in place; consumers are not yet
	// restarted and healthy. A re-run resumes from here instead of
	// generating again (which would lose the previous values).
	PhaseWritten = "written"
	// PhaseComplete: consumers restarted and healthy (or none to restart).
	PhaseComplete = "complete"
	// PhaseFailed: consumers did not become healthy.
	PhaseFailed = "failed"
)

// Actions recorded in the history.
const (
	ActionRotate    = "rotate"
	ActionUndo      = "undo"
	ActionForceSync = "force-sync"
)

// MaxHistory bounds the history kept on a Secret.
const MaxHistory = 20

// Annotations and labels of other objects kube-rotate writes.
const (
	// CreatedKeys on a companion lists keys the rotation added, so undo
	// removes them.
	CreatedKeys = Prefix + "created-keys"
	// JournalAnnotation on a rotated Secret holds the journal (a procedure
	// record, JSON, no value) of the rotation, force-sync or undo going on:
	// the restarts done, which the objects cannot show. It is removed when
	// the procedure completes.
	JournalAnnotation = Prefix + "journal"
	// RecordsAnnotation on a key-set Secret keeps when each kid was made
	// and retired (JSON), for key sets that cannot say it themselves.
	RecordsAnnotation = Prefix + "jwks-keys"
	// PlanLabel labels a plan's journal ConfigMap with the plan's name.
	PlanLabel = Prefix + "plan"
	// RotationIDAnnotation keys a plan run's pending companions and hook
	// Jobs, so a re-run knows its own work.
	RotationIDAnnotation = Prefix + "rotation-id"
	// PendingOfLabel labels a pending companion (NAME-pending) with its
	// Secret's name.
	PendingOfLabel = Prefix + "pending-of"
	// ItemAnnotation names the plan item a pending companion belongs to.
	ItemAnnotation = Prefix + "plan-item"
	// JWKSecretLabel labels a `jwk rotate` journal ConfigMap with its
	// key-set Secret.
	JWKSecretLabel = Prefix + "jwk-secret"
	// LabelItem, LabelStep and LabelRotationID label a hook Job with its
	// plan item, step and rotation id.
	LabelItem       = Prefix + "item"
	LabelStep       = Prefix + "step"
	LabelRotationID = Prefix + "rotation-id"
	// RestartedFor on a workload's pod template names the write a restart
	// was for (a digest of the written Secrets' write records, no value):
	// set in the same patch as kubectl's restartedAt, it tells a re-run
	// after a kill that the workload was restarted for these values
	// already, whatever the journal managed to save.
	RestartedFor = Prefix + "restarted-for"
)
