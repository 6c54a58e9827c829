package kops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

// The journal lives under backups/ (a prefix kops delete cluster accepts);
// a record at the old rotation/state.yaml is read, and removed by the next
// write, with the precondition kept on whichever file was read.
func TestJournalLocationAndMigration(t *testing.T) {
	ctx := context.Background()
	legacyRec := "started: \"2026-01-01T00:00:00Z\"\ndone:\n  update-after-stage: \"2026-01-01T00:00:00Z\"\n"
	tests := []struct {
		name     string
		legacy   bool
		meddle   func(t *testing.T, dir string) // between Load and Save
		conflict bool
	}{
		{name: "fresh"},
		{name: "old location migrated", legacy: true},
		{name: "old location rewritten meanwhile", legacy: true, conflict: true, meddle: func(t *testing.T, dir string) {
			writeJournalFileAt(t, filepath.Join(dir, "rotation", "state.yaml"), "started: \"2026-02-02T00:00:00Z\"\n")
		}},
		{name: "new location appeared meanwhile", legacy: true, conflict: true, meddle: func(t *testing.T, dir string) {
			writeJournalFileAt(t, filepath.Join(dir, "backups", "kops-rotate", "state.yaml"), "started: \"2026-02-02T00:00:00Z\"\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			base := "file://" + root
			vctx := vfs.NewVFSContext()
			kopstest.Seed(t, base, vctx, "kubernetes-ca")
			s, err := Open(ctx, base, kopstest.ClusterName, vctx)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, kopstest.ClusterName)
			oldFile, newFile := filepath.Join(dir, "rotation", "state.yaml"), filepath.Join(dir, "backups", "kops-rotate", "state.yaml")
			if tt.legacy {
				writeJournalFileAt(t, oldFile, legacyRec)
			}
			j, err := s.Journal()
			if err != nil {
				t.Fatal(err)
			}
			r, err := j.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.legacy != (r != nil && r.Marked(StepUpdate1)) {
				t.Fatalf("Load = %+v, want the old record read: %v", r, tt.legacy)
			}
			if r == nil {
				r = &procedure.Record{Started: time.Now().UTC().Truncate(time.Second)}
			}
			if tt.meddle != nil {
				tt.meddle(t, dir)
			}
			r.Mark(StepRoll1, time.Now())
			err = j.Save(ctx, r)
			if tt.conflict {
				if !errors.Is(err, procedure.ErrConflict) {
					t.Fatalf("Save = %v, want a conflict", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(oldFile); !os.IsNotExist(err) {
				t.Errorf("the old-location record is still there: %v", err)
			}
			back, err := (&Journal{Path: j.Path, Legacy: j.Legacy}).Load(ctx)
			if err != nil || !back.Marked(StepRoll1) || back.Marked(StepUpdate1) != tt.legacy {
				t.Fatalf("read back: %+v %v", back, err)
			}
			if _, err := os.Stat(newFile); err != nil {
				t.Errorf("the journal is not at %s: %v", newFile, err)
			}
			// A second write keeps the precondition on the new file.
			r.Mark(StepExport1, time.Now())
			if err := j.Save(ctx, r); err != nil {
				t.Fatalf("second Save: %v", err)
			}
			if err := j.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(newFile); !os.IsNotExist(err) {
				t.Errorf("Delete left %s: %v", newFile, err)
			}
		})
	}
}

func writeJournalFileAt(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
