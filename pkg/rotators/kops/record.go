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
// Keyset steps change keysets; the others run the kops CLI.
const (
	StepStage            = "stage"
	StepUpdate1          = "update-after-stage"
	StepRoll1            = "rolling-update-after-stage"
	StepExport1          = "export-after-stage"
	StepPromote          = "promote"
	StepUpdate2          = "update-after-promote"
	StepRoll2            = "rolling-update-after-promote"
	StepExportAfterProm  = "export-after-promote"
	StepDistrust         = "distrust"
	StepUpdate3          = "update-after-distrust"
	StepRoll3            = "rolling-update-after-distrust"
	StepExportAfterDistr = "export-after-distrust"
)

// Procedure lists the steps in order.
var Procedure = []string{StepStage, StepUpdate1, StepRoll1, StepExport1, StepPromote, StepUpdate2, StepRoll2,
	StepExportAfterProm, StepDistrust, StepUpdate3, StepRoll3, StepExportAfterDistr}

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
	if r == nil {
		return out, nil
	}
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	marks, err := validMarks(r, v)
	if err != nil {
		return nil, err
	}
	if len(marks) > 0 {
		out.Done = marks
		if !r.Started.IsZero() {
			t := r.Started
			out.Started = &t
		}
	}
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
