package plan

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/hooks"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// legacyKey is where kube-rotate before the procedure engine kept a plan's
// journal (a Journal, with each item's last step done) in
// configmap/kube-rotate-plan-NAME.
const legacyKey = "journal.json"

// legacyItem is an item of such a journal.
type legacyItem struct {
	Done         string                   `json:"done"`
	Failed       string                   `json:"failed,omitempty"`
	Error        string                   `json:"error,omitempty"`
	KID          string                   `json:"kid,omitempty"`
	Fingerprints map[string]string        `json:"fingerprints,omitempty"`
	Steps        map[string]time.Time     `json:"steps,omitempty"`
	Hooks        map[string]*hooks.Result `json:"hooks,omitempty"`
}

// readLegacy turns a journal an earlier version wrote into the engine's
// Record, so that a run it started resumes (or is undone) here: the same
// rotation id, the steps it marked, and what its hooks ran for (the values
// whose fingerprints it journaled, or the kid). It returns nil for a
// ConfigMap without one.
func readLegacy(cm *corev1.ConfigMap) (*procedure.Record, error) {
	raw, ok := cm.Data[legacyKey]
	if !ok {
		return nil, nil
	}
	var old struct {
		Plan        string                 `json:"plan"`
		Fingerprint string                 `json:"fingerprint"`
		RotationID  string                 `json:"rotationId"`
		Started     time.Time              `json:"started"`
		Updated     time.Time              `json:"updated"`
		Items       map[string]*legacyItem `json:"items"`
		Restarted   bool                   `json:"restarted,omitempty"`
		Restarts    []string               `json:"restarts,omitempty"`
	}
	if err := json.Unmarshal([]byte(raw), &old); err != nil {
		return nil, err
	}
	r := &procedure.Record{Procedure: "plan " + old.Plan, Started: old.Started, Updated: old.Updated}
	put := func(k string, v any) {
		// Put fails only for values that do not encode; these all do.
		_ = r.Put(k, v)
	}
	put(factPlan, old.Plan)
	put(factFingerprint, old.Fingerprint)
	put(factRotationID, old.RotationID)
	if len(old.Restarts) > 0 {
		put(factRestarts, old.Restarts)
	}
	r.Mark(StepStart, old.Started)
	if old.Restarted {
		r.Mark(StepRestart, old.Updated)
	}
	for name, it := range old.Items {
		if it.KID != "" {
			put(itemFact(name, factKID), it.KID)
		}
		if len(it.Fingerprints) > 0 {
			put(itemFact(name, factFingerprints), it.Fingerprints)
		}
		if len(it.Hooks) > 0 {
			put(itemFact(name, factHooks), it.Hooks)
		}
		for _, s := range Steps {
			at, ok := it.Steps[s]
			if !ok {
				continue
			}
			r.Mark(stepName(name, s), at)
			if s == StepSet || s == StepTested {
				switch {
				case it.KID != "":
					put(itemFact(name, factRanFor+s), it.KID)
				case len(it.Fingerprints) > 0:
					put(itemFact(name, factRanFor+s), digest(it.Fingerprints))
				}
			}
		}
		if it.Failed != "" {
			r.Failed, r.Error = stepName(name, it.Failed), it.Error
		}
	}
	return r, nil
}
