// Package plan carries out a rotation plan (pkg/model/planspec) on the
// staged-procedure engine (pkg/procedure): for each item, create the new
// values in a pending companion, run the set and test hooks, then finish
// (move the values into place, keep the old ones, restart consumers).
//
// State: a step's state is derived from the objects first. create is done
// when NAME-pending holds this rotation's values (or the item finished),
// finish when NAME-pending is gone and the Secret holds the values whose
// fingerprints create journaled; a key-set item's create and finish are
// read from its key set. The journal (a procedure.Record in the ConfigMap
// kube-rotate-plan-NAME, every write resourceVersion-guarded) keeps only
// what the objects cannot show: the rotation id, hook results and which
// values each hook ran for, the restarts done, the kid a key-set item
// published and the fingerprints of the values made. A run stopped at any
// point resumes at the first step whose effect is missing.
package plan

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Steps of an item, in order.
const (
	StepPending  = ""
	StepCreated  = "create"
	StepSet      = "set"
	StepTested   = "test"
	StepFinished = "finish"
)

// Steps lists the four steps of an item in order.
var Steps = []string{StepCreated, StepSet, StepTested, StepFinished}

// Steps of the run around the items' steps.
const (
	// StepStart names the rotation (its id) and starts the journal.
	StepStart = "start"
	// StepRestart restarts every consumer once after the last finish
	// (restart: coalesced only).
	StepRestart = "restart"
)

// PlanLabel labels a journal ConfigMap with its plan's name.
const PlanLabel = v1alpha1.PlanLabel

// Journal facts of the run (procedure.Record.Facts); an item's facts are
// keyed ITEM/NAME (itemFact).
const (
	factPlan        = "plan"
	factFingerprint = "fingerprint"
	factRotationID  = "rotationId"
	// factRestarts are the workloads restarted (kind/name), in order.
	factRestarts = "restarts"
	// factRestored are the items whose finish an undo reverted, for the
	// restart that ends the undo.
	factRestored = "undo/restored"

	// factFingerprints: the fingerprints of the values create made, by key.
	factFingerprints = "fingerprints"
	// factKID: the key a key-set item published at create.
	factKID = "kid"
	// factHooks: the last result of each hook, by step.
	factHooks = "hooks"
	// factRanFor + step: what a hook succeeded for (the digest of the
	// pending values' fingerprints, or the kid).
	factRanFor = "ran-for/"
)

func itemFact(item, fact string) string { return item + "/" + fact }

// stepName is the engine's name of an item's step: ITEM/STEP.
func stepName(item, step string) string { return item + "/" + step }

// Journal is what a plan run did, as `kubectl rotate apply -o json|yaml`
// prints it (a RotationPlanRun), built from the run's procedure.Record.
type Journal = v1alpha1.RotationPlanRun

// ItemJournal is one item's progress.
type ItemJournal = v1alpha1.PlanRunItem

// NewRotationID returns a fresh id: UTC time and 6 random hex digits.
func NewRotationID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// JournalName is the ConfigMap holding a plan's journal.
func JournalName(plan string) string { return "kube-rotate-plan-" + plan }

// NextStep returns the first step item has not completed in j, or "" when
// it is finished.
func NextStep(j *Journal, item string) string {
	done := StepPending
	if ij := j.Items[item]; ij != nil {
		done = ij.Done
	}
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

// view builds the Journal users see from the engine's Record.
func view(p *planspec.Plan, r *procedure.Record) *Journal {
	if r == nil {
		return nil
	}
	j := &Journal{Plan: r.String(factPlan), Fingerprint: r.String(factFingerprint), RotationID: r.String(factRotationID),
		Started: metav1.NewTime(r.Started), Updated: metav1.NewTime(r.Updated), Items: map[string]*ItemJournal{}, Restarted: r.Marked(StepRestart)}
	if j.Plan == "" {
		j.Plan = p.Metadata.Name
	}
	_, _ = r.Get(factRestarts, &j.Restarts)
	for _, it := range p.Spec.Items {
		ij := &ItemJournal{KID: r.String(itemFact(it.Name, factKID))}
		used := ij.KID != ""
		if ok, _ := r.Get(itemFact(it.Name, factFingerprints), &ij.Fingerprints); ok {
			used = true
		}
		if ok, _ := r.Get(itemFact(it.Name, factHooks), &ij.Hooks); ok {
			used = true
		}
		consecutive := true
		for _, s := range Steps {
			at, ok := r.Steps[stepName(it.Name, s)]
			if !ok {
				consecutive = false
				continue
			}
			if ij.Steps == nil {
				ij.Steps = map[string]metav1.Time{}
			}
			ij.Steps[s] = metav1.NewTime(at)
			if consecutive {
				ij.Done = s
			}
			used = true
		}
		if step, ok := strings.CutPrefix(r.Failed, it.Name+"/"); ok {
			ij.Failed, ij.Error = step, r.Error
			used = true
		}
		if used {
			j.Items[it.Name] = ij
		}
	}
	return j
}

// digest is a fingerprint of fingerprints: which values a hook ran for,
// without a value.
func digest(fps map[string]string) string {
	keys := make([]string, 0, len(fps))
	for k := range fps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + fps[k] + "\n")
	}
	return values.Fingerprint([]byte(b.String()))
}

// appendFact appends to a []string fact.
func appendFact(r *procedure.Record, key string, more ...string) error {
	if len(more) == 0 {
		return nil
	}
	var cur []string
	return r.Modify(key, &cur, func() error {
		cur = append(cur, more...)
		return nil
	})
}
