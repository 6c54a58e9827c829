// Package plan carries out a rotation plan (pkg/model/planspec): for each item,
// create the new values in a pending companion, run the set and test
// hooks, then finish (move the values into place, keep the old ones,
// restart consumers). Progress is journaled in the cluster after every
// step, so a run stopped at any point resumes at the first unfinished
// step of each item.
package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/hooks"
)

// Steps of an item, in order.
const (
	StepPending  = ""
	StepCreated  = "create"
	StepSet      = "set"
	StepTested   = "test"
	StepFinished = "finish"
)

// Steps lists the four steps in order.
var Steps = []string{StepCreated, StepSet, StepTested, StepFinished}

// JournalKey is the ConfigMap data key holding the journal.
const JournalKey = "journal.json"

// PlanLabel labels a journal ConfigMap with its plan's name.
const PlanLabel = v1alpha1.Prefix + "plan"

// Journal is a plan run's progress, kept in a ConfigMap.
type Journal struct {
	Plan        string `json:"plan"`
	Fingerprint string `json:"fingerprint"`
	// RotationID keys every step of this run: pending companions and hook
	// Jobs carry it, so a re-run knows its own work.
	RotationID string                  `json:"rotationId"`
	Started    time.Time               `json:"started"`
	Updated    time.Time               `json:"updated"`
	Items      map[string]*ItemJournal `json:"items"`
	// Restarted is set once the coalesced restarts after the last finish
	// completed.
	Restarted bool `json:"restarted,omitempty"`
	// Restarts are the workloads restarted (kind/name), in order.
	Restarts []string `json:"restarts,omitempty"`
}

// ItemJournal is one item's progress.
type ItemJournal struct {
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
	Steps map[string]time.Time `json:"steps,omitempty"`
	// Hooks are the last result of each hook that ran (exit code, times,
	// redacted output tail), by step.
	Hooks map[string]*hooks.Result `json:"hooks,omitempty"`
}

// NewRotationID returns a fresh id: UTC time and 6 random hex digits.
func NewRotationID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// JournalName is the ConfigMap holding a plan's journal.
func JournalName(plan string) string { return "kube-rotate-plan-" + plan }

// Store reads and writes a journal with resourceVersion preconditions.
type Store struct {
	Client    kubernetes.Interface
	Namespace string
	Plan      string
	cm        *corev1.ConfigMap
}

// Load returns the journal, or nil when the plan never ran here.
func (s *Store) Load(ctx context.Context) (*Journal, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Get(ctx, JournalName(s.Plan), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.cm = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal configmap/%s in namespace %s: %w", JournalName(s.Plan), s.Namespace, err)
	}
	s.cm = cm
	j := &Journal{}
	if err := json.Unmarshal([]byte(cm.Data[JournalKey]), j); err != nil {
		return nil, fmt.Errorf("configmap/%s: the journal is not readable (%v): delete it to start the plan over", cm.Name, err)
	}
	if j.Items == nil {
		j.Items = map[string]*ItemJournal{}
	}
	return j, nil
}

// Save writes the journal, guarded by the resourceVersion last read or
// written: two runs of one plan cannot both make progress.
func (s *Store) Save(ctx context.Context, j *Journal) error {
	j.Updated = time.Now().UTC().Truncate(time.Second)
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if s.cm == nil {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: JournalName(s.Plan), Namespace: s.Namespace,
			Labels: map[string]string{PlanLabel: s.Plan, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy}},
			Data: map[string]string{JournalKey: string(b)}}
		created, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: v1alpha1.ManagedBy})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("configmap/%s appeared while this run started: another run of plan %s is going on; let it finish, then re-run", cm.Name, s.Plan)
		}
		if err != nil {
			return fmt.Errorf("writing the journal configmap/%s: %w", cm.Name, err)
		}
		s.cm = created
		return nil
	}
	cm := s.cm.DeepCopy()
	cm.Data = map[string]string{JournalKey: string(b)}
	updated, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: v1alpha1.ManagedBy})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("configmap/%s changed under this run: another run of plan %s is going on; let it finish, then re-run", cm.Name, s.Plan)
	}
	if err != nil {
		return fmt.Errorf("writing the journal configmap/%s: %w", cm.Name, err)
	}
	s.cm = updated
	return nil
}

// Delete removes the journal (after undo, or to start over).
func (s *Store) Delete(ctx context.Context) error {
	err := s.Client.CoreV1().ConfigMaps(s.Namespace).Delete(ctx, JournalName(s.Plan), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the journal configmap/%s: %w", JournalName(s.Plan), err)
	}
	s.cm = nil
	return nil
}

// Mark records that step completed for item.
func (j *Journal) Mark(item, step string, now time.Time) {
	ij := j.item(item)
	ij.Done, ij.Failed, ij.Error = step, "", ""
	if ij.Steps == nil {
		ij.Steps = map[string]time.Time{}
	}
	ij.Steps[step] = now.UTC().Truncate(time.Second)
}

// Fail records that step failed for item; err must hold no value.
func (j *Journal) Fail(item, step string, err error) {
	ij := j.item(item)
	ij.Failed, ij.Error = step, err.Error()
}

// Next returns the first step item has not completed, or "" when it is
// finished.
func (j *Journal) Next(item string) string {
	done := j.item(item).Done
	if done == StepPending {
		return Steps[0]
	}
	for i, s := range Steps {
		if s == done && i+1 < len(Steps) {
			return Steps[i+1]
		}
	}
	return ""
}

func (j *Journal) item(name string) *ItemJournal {
	if j.Items == nil {
		j.Items = map[string]*ItemJournal{}
	}
	ij, ok := j.Items[name]
	if !ok {
		ij = &ItemJournal{}
		j.Items[name] = ij
	}
	return ij
}

// HookResult records the result of item's hook for step.
func (j *Journal) HookResult(item, step string, r *hooks.Result) {
	if r == nil {
		return
	}
	ij := j.item(item)
	if ij.Hooks == nil {
		ij.Hooks = map[string]*hooks.Result{}
	}
	ij.Hooks[step] = r
}
