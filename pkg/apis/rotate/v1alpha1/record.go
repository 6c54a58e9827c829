// Package v1alpha1 is kube-rotate's API (group rotate.kube-rotate.io): the kinds it defines and what kube-rotate writes on the objects it rotates:
// annotations and labels under rotate.kube-rotate.io/, and the rotation
// history kept on each Secret. Records hold fingerprints, never values.
package v1alpha1

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix of every annotation and label this project writes.
const Prefix = "rotate.kube-rotate.io/"

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

// Entry is one rotation in a Secret's history.
type Entry struct {
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Generation int64     `json:"generation"`
	// Keys maps each changed key to the fingerprint of its new value.
	Keys map[string]string `json:"keys"`
	By   string            `json:"by,omitempty"`
}

// KeyNames returns the entry's keys, sorted.
func (e Entry) KeyNames() []string {
	out := make([]string, 0, len(e.Keys))
	for k := range e.Keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ReadHistory parses the History annotation; a missing one is empty.
func ReadHistory(annotations map[string]string) ([]Entry, error) {
	raw, ok := annotations[History]
	if !ok || raw == "" {
		return nil, nil
	}
	var h []Entry
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, fmt.Errorf("annotation %s is not valid: %w", History, err)
	}
	return h, nil
}

// GenerationOf returns the Generation annotation, 0 when absent.
func GenerationOf(annotations map[string]string) (int64, error) {
	raw, ok := annotations[Generation]
	if !ok {
		return 0, nil
	}
	g, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || g < 0 {
		return 0, fmt.Errorf("annotation %s=%q is not a generation number", Generation, raw)
	}
	return g, nil
}

// Apply records entry on annotations (modified in place): rotated-at,
// generation, keys, fingerprints, phase and the bounded history.
func Apply(annotations map[string]string, e Entry, phase string) error {
	h, err := ReadHistory(annotations)
	if err != nil {
		return err
	}
	h = append(h, e)
	if len(h) > MaxHistory {
		h = h[len(h)-MaxHistory:]
	}
	hist, err := json.Marshal(h)
	if err != nil {
		return err
	}
	fps, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	annotations[RotatedAt] = e.Time.UTC().Format(time.RFC3339)
	annotations[Generation] = strconv.FormatInt(e.Generation, 10)
	annotations[Keys] = strings.Join(e.KeyNames(), ",")
	annotations[Fingerprints] = string(fps)
	annotations[Phase] = phase
	annotations[History] = string(hist)
	return nil
}
