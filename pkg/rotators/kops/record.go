package kops

import (
	"context"
	"fmt"
	"time"

	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Steps of kOps' procedure (docs/operations/rotate-secrets.md), in order.
// Keyset steps change keysets; CLI steps run the kops CLI (update,
// rolling-update, validate, export); a person's steps stop `run` until
// the person says they are done (PersonStep).
const (
	StepStage             = "stage"
	StepUpdate1           = "update-after-stage"
	StepApply1            = "terraform-apply-after-stage"
	StepRoll1             = "rolling-update-after-stage"
	StepValidate1         = "validate-after-stage"
	StepExport1           = "export-after-stage"
	StepDistributeCA      = "distribute-ca-after-stage"
	StepPromote           = "promote"
	StepUpdate2           = "update-after-promote"
	StepApply2            = "terraform-apply-after-promote"
	StepRoll2             = "rolling-update-after-promote"
	StepValidate2         = "validate-after-promote"
	StepExportAfterProm   = "export-after-promote"
	StepDistributeCreds   = "distribute-credentials-after-promote"
	StepServiceAcctTokens = "service-account-tokens"
	StepDistrust          = "distrust"
	StepUpdate3           = "update-after-distrust"
	StepApply3            = "terraform-apply-after-distrust"
	StepRoll3             = "rolling-update-after-distrust"
	StepValidate3         = "validate-after-distrust"
	StepExportAfterDistr  = "export-after-distrust"
)

// Procedure lists the steps in order.
var Procedure = []string{
	StepStage, StepUpdate1, StepApply1, StepRoll1, StepValidate1, StepExport1, StepDistributeCA,
	StepPromote, StepUpdate2, StepApply2, StepRoll2, StepValidate2, StepExportAfterProm, StepDistributeCreds, StepServiceAcctTokens,
	StepDistrust, StepUpdate3, StepApply3, StepRoll3, StepValidate3, StepExportAfterDistr,
}

// PersonStep reports whether step is one only a person can do: hand the
// new CA data or admin credentials to the cluster's other API clients,
// apply Terraform, deal with legacy service-account tokens.
func PersonStep(step string) bool {
	switch step {
	case StepApply1, StepApply2, StepApply3, StepDistributeCA, StepDistributeCreds, StepServiceAcctTokens:
		return true
	}
	return false
}

// KeysetStepName reports whether step changes the keysets (stage,
// promote, distrust).
func KeysetStepName(step string) bool {
	return step == StepStage || step == StepPromote || step == StepDistrust
}

// Record is the progress of one rotation as `status` shows it: the steps
// done in the rotation the keysets are in now. It is read from the journal
// (Journal: <configBase>/backups/kops-rotate/state.yaml), keeping only the marks made
// for the key ids the keysets hold now: a record from an earlier or
// abandoned rotation shows nothing.
type Record struct {
	// Started is when the rotation's first step ran.
	Started *time.Time `json:"started,omitempty"`
	// Done maps each finished step to when it finished.
	Done map[string]time.Time `json:"done,omitempty"`
	// Waiting is the person's step `run` stopped at, "" when none.
	Waiting string `json:"waiting,omitempty"`
	// Skip reports the steps that do not apply to this rotation (nil: all
	// apply).
	Skip func(step string) bool `json:"-"`
	// CLI are the kops flags the rotation's run uses (journaled by run).
	CLI CLIOptions `json:"-"`
}

// Finished reports whether the last step was recorded after the distrust.
func (r *Record) Finished() bool {
	d, ok1 := r.Done[StepDistrust]
	f, ok2 := r.Done[StepExportAfterDistr]
	return ok1 && ok2 && !f.Before(d)
}

// Next returns the first step not done yet, or "" when all are.
func (r *Record) Next() string {
	for _, s := range Procedure {
		if r.Skip != nil && r.Skip(s) {
			continue
		}
		if _, ok := r.Done[s]; !ok {
			return s
		}
	}
	return ""
}

// journalPath returns where the journal lives and where earlier versions
// kept it.
//
// The rule is kOps': `kops delete cluster` (DeleteAllClusterState in
// k8s.io/kops/pkg/client/simple/vfsclientset/clientset.go, v1.36.2)
// refuses with "refusing to delete: unknown file found" when the config
// base holds any file outside config, cluster.spec,
// cluster-completed.spec, the kops-version marker, addons/,
// clusteraddons/, pki/, secrets/, instancegroup/, igconfig/, manifests/
// and backups/. The old <configBase>/rotation/state.yaml broke it. The
// journal is now <configBase>/backups/kops-rotate/state.yaml: a prefix
// kOps accepts and deletes with the cluster (so a deleted cluster leaves
// no journal behind; a re-created cluster of the same name starts with
// none, and its marks would not apply anyway since they are tied to key
// ids). It stays inside the cluster's directory, so `kops get clusters`
// is unchanged: it takes every top-level child of the state store for a
// cluster (listChildNames in vfsclientset/utils.go), so a journal beside
// the clusters would show up as a broken one; kOps itself writes only backups/etcd/<name> there
// (etcd-manager's backup store), which this name does not touch.
func (s *Store) journalPath() (p, legacy vfs.Path, err error) {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return base.Join("backups", "kops-rotate", "state.yaml"), base.Join("rotation", "state.yaml"), nil
}

// ReadRecord reads the rotation record: the journal's marks that apply to
// the keysets as they are (see Journal and the key ids in procedure.go); a
// missing journal, or one from another rotation, is an empty record. It
// writes nothing.
func (s *Store) ReadRecord(ctx context.Context) (*Record, error) {
	j, err := s.Journal()
	if err != nil {
		return nil, err
	}
	r, err := j.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := &Record{Done: map[string]time.Time{}}
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	if r == nil {
		sc := ScopeOf(v.sts, out.CLI)
		out.Skip = func(step string) bool { return !sc.Applies(step) }
		return out, nil
	}
	marks, err := validMarks(r, v)
	if err != nil {
		return nil, err
	}
	sc := ScopeOf(v.sts, out.CLI)
	if len(marks) > 0 {
		if _, err := r.Get(FactCLI, &out.CLI); err != nil {
			return nil, err
		}
		sc = ScopeOf(v.sts, out.CLI)
		// The engine marks a step that does not apply as done; the record
		// shows only the steps this rotation has.
		for step := range marks {
			if !sc.Applies(step) {
				delete(marks, step)
			}
		}
		out.Done = marks
		if !r.Started.IsZero() {
			t := r.Started
			out.Started = &t
		}
		out.Waiting = r.Waiting
	}
	out.Skip = func(step string) bool { return !sc.Applies(step) }
	return out, nil
}

// MarkDone records, through the journal, that step finished now (a step
// done by hand, such as a rolling update run outside kops-rotate).
func (s *Store) MarkDone(ctx context.Context, step string) error {
	return s.journaled(ctx, func(r *procedure.Record, _ *view) error {
		r.Mark(step, time.Now())
		return nil
	})
}

// StepsFrom returns step and every step after it in the procedure.
func StepsFrom(step string) []string {
	for i, s := range Procedure {
		if s == step {
			return append([]string{}, Procedure[i:]...)
		}
	}
	return nil
}
