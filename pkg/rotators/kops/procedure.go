package kops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// The procedure's state, by the engine's rule (pkg/procedure): a step's
// state is derived from the keysets first. The keysets show where the
// rotation stands (staged, promoted, distrusted: keysets.go), so the
// keyset steps are done when the keysets say so, and the kops CLI steps of
// a stage are done once the keysets are past that stage. What the keysets
// cannot show is journaled (Journal): the kops CLI steps run in the stage
// the keysets are in, and the key ids those steps were run for (FactKeys).
// A mark counts only while the keysets hold the same ids, so a journal
// left by an earlier, finished or rolled back rotation never skips a step.

// FactKeys is the journal fact with the key ids the rotation's steps were
// made for: for each keyset in rotation, its new keypair (the staged one,
// the primary once promoted).
const FactKeys = "keys"

// view is what the keysets show, for every rotatable keyset.
type view struct {
	sts     []KeysetStatus
	stage   Stage
	anyIdle bool
	// ids: keyset -> its new keypair, for the keysets in rotation.
	ids map[string]string
}

func (s *Store) view(ctx context.Context) (*view, error) {
	sts, err := s.Statuses(ctx, s.Selected)
	if err != nil {
		return nil, err
	}
	return newView(sts), nil
}

func newView(sts []KeysetStatus) *view {
	v := &view{sts: sts, stage: Overall(sts), ids: map[string]string{}}
	for _, st := range sts {
		switch {
		case st.Stage == StageIdle:
			v.anyIdle = true
		case len(st.Staged) > 0:
			v.ids[st.Name] = st.Staged[len(st.Staged)-1].ID
		default:
			v.ids[st.Name] = st.Primary.ID
		}
	}
	return v
}

// past reports whether the keysets are beyond stage st (every keyset that
// is in rotation, and with none left idle when st is idle).
func (v *view) past(st Stage) bool {
	order := map[Stage]int{StageIdle: 0, StageStaged: 1, StagePromoted: 2, StageDistrusted: 3}
	if v.stage == StageIdle {
		return false
	}
	if st == StageIdle && v.stage == StageStaged && v.anyIdle {
		return false // staging stopped half-way
	}
	return order[v.stage] > order[st]
}

// newest is the creation time of the newest of the rotation's keypairs.
func (v *view) newest() time.Time {
	var t time.Time
	for _, id := range v.ids {
		if c := itemCreated(id); c.After(t) {
			t = c
		}
	}
	return t
}

// validMarks returns the journal's marks that apply to the keysets as they
// are: all of them when the journal's key ids are the keysets' ids; none
// when they differ (another rotation's journal). A record written before
// the ids were journaled keeps the marks made after the rotation's newest
// keypair was created (kOps ids carry their creation time).
func validMarks(r *procedure.Record, v *view) (map[string]time.Time, error) {
	var ids map[string]string
	found, err := r.Get(FactKeys, &ids)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	if found {
		if maps.Equal(ids, v.ids) && len(ids) > 0 {
			maps.Copy(out, r.Steps)
		}
		return out, nil
	}
	if len(v.ids) == 0 {
		return out, nil
	}
	since := v.newest().Truncate(time.Second)
	for step, at := range r.Steps {
		if !at.Before(since) {
			out[step] = at
		}
	}
	return out, nil
}

// bind ties the record to the keysets' ids: marks made for other ids are
// forgotten (a new rotation starts its record), and the ids are journaled.
func bind(r *procedure.Record, v *view, now time.Time) error {
	var ids map[string]string
	if found, err := r.Get(FactKeys, &ids); err != nil {
		return err
	} else if found && maps.Equal(ids, v.ids) {
		return nil
	}
	marks, err := validMarks(r, v)
	if err != nil {
		return err
	}
	if len(marks) == 0 {
		r.Started = now.UTC().Truncate(time.Second)
		r.Failed, r.Error, r.Waiting = "", "", ""
	}
	r.Steps = marks
	// The keyset steps the keysets show done are done in this rotation.
	for st, step := range map[Stage]string{StageIdle: StepStage, StageStaged: StepPromote, StagePromoted: StepDistrust} {
		if _, ok := marks[step]; !ok && v.past(st) {
			r.Mark(step, now)
		}
	}
	return r.Put(FactKeys, v.ids)
}

// exportGate refuses a distrust before the kubeconfig was exported after
// the promote (it would lock the current kubeconfig out).
func exportGate(ctx context.Context, marks map[string]time.Time) error {
	promoted, okP := marks[StepPromote]
	exported, okE := marks[StepExportAfterProm]
	if !okE || okP && exported.Before(promoted) {
		return fmt.Errorf("the kubeconfig has not been exported since the promote (kops export kubecfg --admin): distrusting now would lock out the current kubeconfig; export it (%[1]s run does), or if you exported it yourself, say so: %[1]s distrust --exported", display.KopsRotate(ctx))
	}
	return nil
}

// distrustRollbackGate refuses to trust the old keypairs again when this
// rotation's distrust is not kops-rotate's (rotated by hand: no mark for
// these keys) or the rotation is finished (the export after the distrust
// is journaled): the cluster no longer uses those keypairs.
func distrustRollbackGate(ctx context.Context, marks map[string]time.Time) error {
	distrusted, okD := marks[StepDistrust]
	finished, okF := marks[StepExportAfterDistr]
	switch {
	case !okD:
		return fmt.Errorf("the old keypairs were not distrusted by %[1]s for these keys (no journal of it): trusting them again is not a rollback of this rotation; start a new one with `%[1]s stage all`, or pass --force to trust them again anyway", display.KopsRotate(ctx))
	case okF && !finished.Before(distrusted):
		return fmt.Errorf("the rotation is finished (the kubeconfig was exported after the distrust, %s): trusting the old keypairs again would reopen it; start a new rotation with `%s stage all`, or pass --force to trust them again anyway", finished.Format(time.RFC3339), display.KopsRotate(ctx))
	}
	return nil
}

// MarkExported journals that the kubeconfig was exported since the promote
// by hand (kops export kubecfg --admin), for the keys the keysets hold now,
// so that distrust's export gate passes without skipping any other gate.
func (s *Store) MarkExported(ctx context.Context) error {
	return s.journaled(ctx, func(r *procedure.Record, before *view) error {
		if !before.past(StageStaged) {
			return fmt.Errorf("nothing is promoted: an export now is not the export after the promote; run `%s promote` first", display.KopsRotate(ctx))
		}
		r.Mark(StepExportAfterProm, time.Now())
		return nil
	})
}

// procName names the procedure in the journal and messages.
func (s *Store) procName() string { return "kops-rotate run " + s.Cluster }

// journaled loads the journal, binds it to the keysets, lets change edit
// it, and saves it with the journal's precondition: the single keyset
// commands take their steps through it, so the journal stays the record's
// only writer.
func (s *Store) journaled(ctx context.Context, change func(r *procedure.Record, before *view) error) error {
	j, err := s.Journal()
	if err != nil {
		return err
	}
	r, err := j.Load(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	if r == nil {
		r = &procedure.Record{Started: now.UTC().Truncate(time.Second)}
	}
	before, err := s.view(ctx)
	if err != nil {
		return err
	}
	if err := bind(r, before, now); err != nil {
		return err
	}
	if err := change(r, before); err != nil {
		return err
	}
	after, err := s.view(ctx)
	if err != nil {
		return err
	}
	if err := bind(r, after, now); err != nil {
		return err
	}
	r.Procedure, r.Updated = s.procName(), now.UTC().Truncate(time.Second)
	if err := j.Save(ctx, r); err != nil {
		return fmt.Errorf("%w: another kops-rotate is working on cluster %s; let it finish, then re-run", err, s.Cluster)
	}
	return nil
}

// StepRollback names the rollback of the current stage for KeysetStep.
const StepRollback = "rollback"

// KeysetStep takes one keyset step on the keysets named (all rotatable
// ones when empty) and journals it: stage, promote, distrust (force skips
// its gates: not promoted yet, kubeconfig not exported since the promote),
// or rollback of the stage the keysets are in, which forgets that stage's
// steps. The single-step commands take steps through it; `run` takes the
// same steps through the engine (Run). A stage that makes new keypairs
// starts a new record: the previous rotation's marks were made for other
// ids.
func (s *Store) KeysetStep(ctx context.Context, step string, names []string, force bool) ([]Change, error) {
	var changes []Change
	var stepErr error
	err := s.journaled(ctx, func(r *procedure.Record, _ *view) error {
		var err error
		switch step {
		case StepStage:
			changes, err = s.Stage(ctx, names)
		case StepPromote:
			if err := s.validationGate(ctx, r, step, StepValidate1); err != nil {
				return err
			}
			if changes, err = s.Promote(ctx, names); err == nil {
				err = RecordPromote(r, changes)
			}
		case StepDistrust:
			sts, serr := s.Statuses(ctx, names)
			if serr != nil {
				return serr
			}
			validate := StepValidate2
			if Overall(sts) == StageStaged {
				validate = StepValidate1
			}
			if err := s.validationGate(ctx, r, step, validate); err != nil {
				return err
			}
			// The keysets' own gate (not promoted yet) comes first, unless
			// force skips it; force never skips the export gate: an export
			// done by hand is journaled with MarkExported (--exported).
			if force || Overall(sts) != StageStaged {
				if err := exportGate(ctx, r.Steps); err != nil {
					return err
				}
			}
			changes, err = s.Distrust(ctx, names, force)
		case StepRollback:
			sts, serr := s.Statuses(ctx, names)
			if serr != nil {
				return serr
			}
			stage := Overall(sts)
			if stage == StageDistrusted && !force {
				if err := distrustRollbackGate(ctx, r.Steps); err != nil {
					return err
				}
			}
			if changes, err = s.Rollback(ctx, names, PromotedFromJournal(r)); err != nil {
				break
			}
			switch stage {
			case StageStaged:
				r.Steps = nil
			case StagePromoted:
				unmark(r, StepsFrom(StepPromote))
			case StageDistrusted:
				unmark(r, StepsFrom(StepDistrust))
			}
			return nil
		default:
			return fmt.Errorf("internal: %s is no keyset step", step)
		}
		if err != nil {
			if len(changes) == 0 {
				return err
			}
			// Some keysets changed: journal what the keysets now show
			// (bind does), not the step.
			stepErr = err
			return nil
		}
		r.Mark(step, time.Now())
		return nil
	})
	if err != nil {
		return changes, err
	}
	return changes, stepErr
}

// validationGate refuses a promote or distrust while the cluster has not
// validated since the stage's rolling update: unless the journal shows the
// validation for these keys (run validates after each rolling update), it
// runs `kops validate cluster` now (Store.Validate) and journals a pass.
func (s *Store) validationGate(ctx context.Context, r *procedure.Record, step, validate string) error {
	if r.Marked(validate) {
		return nil
	}
	if s.Validate == nil {
		return fmt.Errorf("%s refused: cluster %s has not been validated since its rolling update, and kops-rotate cannot run kops validate cluster here; nothing changed", step, s.Cluster)
	}
	if err := s.Validate(ctx); err != nil {
		var cv *cannotValidate
		if errors.As(err, &cv) {
			return fmt.Errorf("%s refused, nothing changed: kops validate cluster could not run: %w", step, cv.err)
		}
		return fmt.Errorf("%s refused, nothing changed: cluster %s does not validate (%v): wait for the rolling update to settle or fix the cluster, then re-run; `kops validate cluster --wait 15m --name %s --state %s` shows what is wrong", step, s.Cluster, err, s.Cluster, s.StateStore)
	}
	r.Mark(validate, time.Now())
	return nil
}

func unmark(r *procedure.Record, steps []string) {
	for _, st := range steps {
		r.Unmark(st)
	}
}

// Status returns the rotatable keysets (all, or those named) with their
// stages; a rotation whose final roll and export are journaled after the
// distrust is over, and its keysets show as idle, as do keysets distrusted
// by hand (DistrustedByHand).
func (s *Store) Status(ctx context.Context, names []string) ([]KeysetStatus, error) {
	sts, err := s.Statuses(ctx, names)
	if err != nil {
		return nil, err
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil {
		return nil, err
	}
	// A distrust with no journal for these keys was made by hand (kops
	// distrust keypair): kOps keeps distrusted keypairs forever, so the
	// keysets alone would show "distrusted" forever. It shows as idle,
	// flagged; `run --yes` still takes the final update, rolling update,
	// validation and export (harmless when they were done by hand).
	byHand := len(rec.Done) == 0
	if rec.Finished() || byHand {
		for i := range sts {
			if sts[i].Stage == StageDistrusted {
				sts[i].Stage = StageIdle
				sts[i].DistrustedByHand = byHand
			}
		}
	}
	return sts, nil
}
