package kops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/util/pkg/vfs"
	"sigs.k8s.io/yaml"
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

// Record is the progress of one rotation, kept in the state store at
// <configBase>/rotation/state.yaml so `run` can resume where it stopped and
// `distrust` can check the kubeconfig was exported after promote.
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

func (s *Store) recordPath() (vfs.Path, error) {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return base.Join("rotation", "state.yaml"), nil
}

// ReadRecord reads the rotation record; a missing one is empty.
func (s *Store) ReadRecord(ctx context.Context) (*Record, error) {
	p, err := s.recordPath()
	if err != nil {
		return nil, err
	}
	b, err := p.ReadFile(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return &Record{Done: map[string]time.Time{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	r := &Record{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		return nil, fmt.Errorf("%s is not a kops-rotate record: %w", p, err)
	}
	if r.Done == nil {
		r.Done = map[string]time.Time{}
	}
	return r, nil
}

// MarkDone records that step finished now.
func (s *Store) MarkDone(ctx context.Context, step string) error {
	r, err := s.ReadRecord(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	if r.Started == nil {
		r.Started = &now
	}
	r.Done[step] = now
	return s.writeRecord(ctx, r)
}

// ResetRecord forgets a finished (or rolled back) rotation.
func (s *Store) ResetRecord(ctx context.Context) error {
	return s.writeRecord(ctx, &Record{Done: map[string]time.Time{}})
}

func (s *Store) writeRecord(ctx context.Context, r *Record) error {
	p, err := s.recordPath()
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	if err := p.WriteFile(ctx, bytesReader(b), nil); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// Unmark forgets steps (a rollback undoes them).
func (s *Store) Unmark(ctx context.Context, steps ...string) error {
	r, err := s.ReadRecord(ctx)
	if err != nil {
		return err
	}
	for _, st := range steps {
		delete(r.Done, st)
	}
	return s.writeRecord(ctx, r)
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
