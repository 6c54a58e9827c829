package kops

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

func memStore(t *testing.T) *Store {
	t.Helper()
	return newStore(t, "memfs://"+strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), vfs.NewTestingVFSContext(), "kubernetes-ca", "service-account")
}

func okRunner(context.Context, []string) error { return nil }

// isCLI: a step only the journal can show done (a kops CLI step or a
// person's step).
func isCLI(step string) bool { return !KeysetStepName(step) }

// memSteps are the steps of memStore's rotation (kubernetes-ca and
// service-account, kOps' default flags): no Terraform applies.
func memSteps() []string {
	sc := Scope{Keysets: map[string]bool{"kubernetes-ca": true, "service-account": true}}
	var out []string
	for _, st := range Procedure {
		if sc.Applies(st) {
			out = append(out, st)
		}
	}
	return out
}

// firstLine is what a run prints first when it starts at step.
func firstLine(ctx context.Context, step, state string) string {
	if PersonStep(step) {
		return "==> " + step + ": done by a person (--done " + step + ")\n"
	}
	return "==> " + Command(ctx, step, clusterName, state) + "\n"
}

// effects records the steps whose work was done (the "after" phase is
// reached only once the keysets changed or the kops CLI returned).
type effects struct {
	done           []string
	failStep, when string
	failed         bool
}

func (e *effects) hook(step, phase string) error {
	if phase == "after" {
		e.done = append(e.done, step)
	}
	if step == e.failStep && phase == e.when && !e.failed {
		e.failed = true
		return errString("simulated crash")
	}
	return nil
}

// TestRunResumesAtEveryStep fails the run at every step, before its work
// and after it (as a kill -9 would, before the journal is written), then
// re-runs: no step is done twice whose effect is in the keysets or whose
// journal mark is valid. Only a kops CLI step killed after it finished
// and before it was journaled runs again: nothing but the journal can
// show that it ran.
func TestRunResumesAtEveryStep(t *testing.T) {
	type tc struct {
		name, step, when string
	}
	var tests []tc
	steps := memSteps()
	for _, step := range steps {
		for _, when := range []string{"before", "after"} {
			tests = append(tests, tc{name: step + "/" + when, step: step, when: when})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := memStore(t)
			e := &effects{failStep: tt.step, when: tt.when}
			s.hook = e.hook
			var out bytes.Buffer
			err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: &out})
			if err == nil || !strings.Contains(err.Error(), "("+tt.step+") failed: simulated crash: re-run the same command to resume") {
				t.Fatalf("first run: %v", err)
			}
			first := len(e.done)
			out.Reset()
			if err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: &out}); err != nil {
				t.Fatalf("re-run: %v", err)
			}
			want := slices.Clone(steps)
			if tt.when == "after" && isCLI(tt.step) {
				i := slices.Index(want, tt.step)
				want = slices.Insert(want, i+1, tt.step)
			}
			if !slices.Equal(e.done, want) {
				t.Errorf("steps done over both runs:\n  %v\nwant\n  %v", e.done, want)
			}
			resumedAt := e.done[first]
			wantAt := tt.step
			if tt.when == "after" && !isCLI(tt.step) {
				wantAt = steps[slices.Index(steps, tt.step)+1]
			}
			if resumedAt != wantAt {
				t.Errorf("re-run resumed at %s, want %s", resumedAt, wantAt)
			}
			if !strings.HasPrefix(out.String(), firstLine(ctx, wantAt, s.StateStore)) || !strings.Contains(out.String(), "Rotation complete") {
				t.Errorf("re-run output:\n%s", out.String())
			}
			sts, err := s.Status(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				if st.Stage != StageIdle || len(st.Distrusted) != 1 || len(st.Staged)+len(st.Previous) != 0 {
					t.Errorf("%s after the run: %s, %d distrusted: a keyset step ran twice", st.Name, st.Stage, len(st.Distrusted))
				}
			}
			// A third run changes nothing.
			e.done = nil
			out.Reset()
			if err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: &out}); err != nil || len(e.done) != 0 || !strings.HasPrefix(out.String(), "Rotation complete") {
				t.Errorf("run after completion: %v, ran %v:\n%s", err, e.done, out.String())
			}
		})
	}
}

// writeJournal puts a record in the store's journal file, as another run
// (or an earlier kops-rotate) would have left it.
func writeJournal(t *testing.T, s *Store, r *procedure.Record, raw string) {
	t.Helper()
	j, err := s.Journal()
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(raw)
	if r != nil {
		if b, err = encodeRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Path.WriteFile(context.Background(), bytes.NewReader(b), nil); err != nil {
		t.Fatal(err)
	}
}

func ids(t *testing.T, s *Store) map[string]string {
	t.Helper()
	v, err := s.view(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v.ids
}

// TestJournalPrecondition: a journal changed, created or removed between
// Load and Save (or Delete) is a conflict; one left as read is written.
func TestJournalPrecondition(t *testing.T) {
	other := []byte("started: \"2026-01-01T00:00:00Z\"\ndone:\n  stage: \"2026-01-01T00:00:00Z\"\n")
	tests := []struct {
		name     string
		existing bool
		meddle   func(ctx context.Context, p vfs.Path) error
		del      bool
		conflict bool
	}{
		{"untouched, no file before", false, nil, false, false},
		{"untouched, file before", true, nil, false, false},
		{"changed between Load and Save", true, func(ctx context.Context, p vfs.Path) error { return p.WriteFile(ctx, bytes.NewReader(other), nil) }, false, true},
		{"created between Load and Save", false, func(ctx context.Context, p vfs.Path) error { return p.WriteFile(ctx, bytes.NewReader(other), nil) }, false, true},
		{"removed between Load and Save", true, func(ctx context.Context, p vfs.Path) error { return p.Remove(ctx) }, false, true},
		{"changed between Load and Delete", true, func(ctx context.Context, p vfs.Path) error { return p.WriteFile(ctx, bytes.NewReader(other), nil) }, true, true},
		{"untouched, Delete", true, nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, "file://"+t.TempDir(), vfs.NewVFSContext(), "kubernetes-ca")
			if tt.existing {
				writeJournal(t, s, &procedure.Record{Procedure: "x", Steps: map[string]time.Time{StepStage: time.Now().UTC().Truncate(time.Second)}}, "")
			}
			j, err := s.Journal()
			if err != nil {
				t.Fatal(err)
			}
			r, err := j.Load(ctx)
			if err != nil || (r != nil) != tt.existing {
				t.Fatalf("Load: %v %v", r, err)
			}
			if r == nil {
				r = &procedure.Record{}
			}
			if tt.meddle != nil {
				if err := tt.meddle(ctx, j.Path); err != nil {
					t.Fatal(err)
				}
			}
			r.Mark(StepUpdate1, time.Now())
			if tt.del {
				err = j.Delete(ctx)
			} else {
				err = j.Save(ctx, r)
			}
			if got := errors.Is(err, procedure.ErrConflict); got != tt.conflict {
				t.Fatalf("conflict = %v (%v), want %v", got, err, tt.conflict)
			}
			if tt.conflict {
				if b, _ := j.Path.ReadFile(ctx); tt.meddle != nil && !tt.del && b != nil && !bytes.Equal(b, other) {
					t.Errorf("the other writer's journal was overwritten:\n%s", b)
				}
				return
			}
			if !tt.del {
				// The journal's own write is what the next Save expects.
				r.Mark(StepRoll1, time.Now())
				if err := j.Save(ctx, r); err != nil {
					t.Fatalf("second Save: %v", err)
				}
				back, err := (&Journal{Path: j.Path}).Load(ctx)
				if err != nil || !back.Marked(StepUpdate1) || !back.Marked(StepRoll1) {
					t.Fatalf("read back: %+v %v", back, err)
				}
			}
		})
	}

	// In a run: another writer between two of its saves stops it.
	t.Run("run", func(t *testing.T) {
		ctx := context.Background()
		s := memStore(t)
		s.hook = func(step, phase string) error {
			if step == StepRoll1 && phase == "before" {
				writeJournal(t, s, nil, string(other))
			}
			return nil
		}
		err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: io.Discard})
		if !errors.Is(err, procedure.ErrConflict) || !strings.Contains(err.Error(), "another run of") {
			t.Fatalf("run with a meddled journal: %v", err)
		}
	})
}

// TestDerivedStateWinsOverAStaleJournal: journal marks made for other key
// ids (an earlier rotation's record) never skip a step; marks for the ids
// the keysets hold do. A record from before the ids were journaled counts
// only for marks made after the rotation's keys were created.
func TestDerivedStateWinsOverAStaleJournal(t *testing.T) {
	stage1 := []string{StepUpdate1, StepRoll1, StepValidate1, StepExport1, StepDistributeCA}
	steps := memSteps()
	tests := []struct {
		name string
		// journal builds the record for the staged keysets' ids.
		journal func(ids map[string]string) *procedure.Record
		// wantFirst is the first step the run does.
		wantFirst string
	}{
		{"no journal", nil, StepUpdate1},
		{"marks for these key ids", func(ids map[string]string) *procedure.Record {
			return record(ids, time.Now(), stage1...)
		}, StepPromote},
		{"marks from another key id", func(ids map[string]string) *procedure.Record {
			other := map[string]string{}
			for k := range ids {
				other[k] = "7412345678901234567890"
			}
			return record(other, time.Now(), Procedure...)
		}, StepUpdate1},
		{"marks from another keyset set", func(ids map[string]string) *procedure.Record {
			fewer := map[string]string{"kubernetes-ca": ids["kubernetes-ca"]}
			return record(fewer, time.Now(), stage1...)
		}, StepUpdate1},
		{"earlier record without ids, marks before the keys", func(map[string]string) *procedure.Record {
			return record(nil, time.Now().Add(-time.Hour), Procedure...)
		}, StepUpdate1},
		{"earlier record without ids, marks after the keys", func(map[string]string) *procedure.Record {
			return record(nil, time.Now().Add(time.Minute), stage1...)
		}, StepPromote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := memStore(t)
			if _, err := s.Stage(ctx, nil); err != nil { // staged by hand: no journal
				t.Fatal(err)
			}
			if tt.journal != nil {
				writeJournal(t, s, tt.journal(ids(t, s)), "")
			}
			e := &effects{}
			s.hook = e.hook
			var out bytes.Buffer
			if err := s.Run(ctx, RunOptions{Runner: okRunner, Out: &out}); err != nil {
				t.Fatal(err)
			}
			if want := "  " + Command(ctx, tt.wantFirst, clusterName, s.StateStore) + "\n"; !strings.Contains(out.String(), "Stage: staged.") || !strings.Contains(out.String(), want) {
				t.Errorf("dry run does not list %q first:\n%s", want, out.String())
			}
			if err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: io.Discard}); err != nil {
				t.Fatal(err)
			}
			i := slices.Index(steps, tt.wantFirst)
			if !slices.Equal(e.done, steps[i:]) {
				t.Errorf("ran %v, want %v", e.done, steps[i:])
			}
		})
	}

	// The distrust gate reads the journal the same way: an export marked
	// for another key id does not open it.
	t.Run("distrust gate", func(t *testing.T) {
		ctx := context.Background()
		s := memStore(t)
		if _, err := s.Stage(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Promote(ctx, nil); err != nil {
			t.Fatal(err)
		}
		other := map[string]string{"kubernetes-ca": "1", "service-account": "2"}
		writeJournal(t, s, record(other, time.Now(), StepPromote, StepExportAfterProm), "")
		if _, err := s.KeysetStep(ctx, StepDistrust, nil, false); err == nil || !strings.Contains(err.Error(), "not been exported since the promote") {
			t.Errorf("distrust with a stale export mark: %v", err)
		}
		rec, err := s.ReadRecord(ctx)
		if err != nil || len(rec.Done) != 0 {
			t.Errorf("ReadRecord shows a stale journal: %+v %v", rec, err)
		}
		writeJournal(t, s, record(ids(t, s), time.Now(), StepPromote, StepExportAfterProm), "")
		if ch, err := s.KeysetStep(ctx, StepDistrust, nil, false); err != nil || len(ch) != 2 {
			t.Errorf("distrust with a valid export mark: %v %v", ch, err)
		}
	})
}

func record(ids map[string]string, at time.Time, steps ...string) *procedure.Record {
	r := &procedure.Record{Procedure: "kops-rotate run " + clusterName, Started: at.UTC().Truncate(time.Second)}
	for _, st := range steps {
		r.Mark(st, at)
	}
	if ids != nil {
		_ = r.Put(FactKeys, ids)
	}
	return r
}

// TestKeysetCommandsShareTheJournal: the single keyset steps write the
// same journal the run reads (the record's one writer), and an earlier
// record in the old format (started and done only) stays readable.
func TestKeysetCommandsShareTheJournal(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	old := "started: \"2020-01-01T00:00:00Z\"\ndone:\n  stage: \"2020-01-01T00:00:00Z\"\n  update-after-stage: \"2020-01-01T00:00:00Z\"\n"
	writeJournal(t, s, nil, old)
	if rec, err := s.ReadRecord(ctx); err != nil || len(rec.Done) != 0 {
		t.Fatalf("an old-format record from before these keys: %+v %v", rec, err)
	}
	if _, err := s.KeysetStep(ctx, StepStage, nil, false); err != nil {
		t.Fatal(err)
	}
	j, _ := s.Journal()
	r, err := j.Load(ctx)
	if err != nil || !r.Marked(StepStage) || r.Marked(StepUpdate1) {
		t.Fatalf("journal after stage: %+v %v", r, err)
	}
	var got map[string]string
	if ok, _ := r.Get(FactKeys, &got); !ok || len(got) != 2 || got["kubernetes-ca"] != ids(t, s)["kubernetes-ca"] {
		t.Errorf("journal key ids %v, keysets %v", got, ids(t, s))
	}
	// run takes it from there: the CLI steps of the staged stage, then promote.
	e := &effects{}
	s.hook = e.hook
	if err := runYes(s, ctx, RunOptions{Yes: true, Runner: okRunner, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.done, memSteps()[1:]) {
		t.Errorf("run after stage did %v", e.done)
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil || !rec.Finished() || len(rec.Done) != len(memSteps()) {
		t.Errorf("record after the run: %+v %v", rec, err)
	}
	// The rotation is finished: a rollback is refused (it would trust the
	// old keypairs again), unless forced; a forced rollback of the distrust
	// forgets the steps from the distrust on.
	if _, err := s.KeysetStep(ctx, StepRollback, nil, false); err == nil || !strings.Contains(err.Error(), "the rotation is finished") {
		t.Fatalf("rollback of a finished rotation: %v", err)
	}
	if _, err := s.KeysetStep(ctx, StepRollback, nil, true); err != nil {
		t.Fatal(err)
	}
	rec, _ = s.ReadRecord(ctx)
	if _, ok := rec.Done[StepDistrust]; ok || rec.Finished() {
		t.Errorf("record after rolling back the distrust: %+v", rec)
	}
	if _, ok := rec.Done[StepExportAfterProm]; !ok {
		t.Errorf("rollback of the distrust forgot the export after promote: %+v", rec)
	}
}
