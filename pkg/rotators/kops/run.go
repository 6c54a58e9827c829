package kops

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Runner runs the kops CLI with args (update, rolling-update, export).
type Runner func(ctx context.Context, args []string) error

// ExecRunner runs `kops` from PATH with its output passed through.
func ExecRunner(out, errOut io.Writer) Runner {
	return func(ctx context.Context, args []string) error {
		path, err := exec.LookPath("kops")
		if err != nil {
			return fmt.Errorf("the kops CLI is not on PATH: install kops %s or run the printed commands yourself", "v1.36")
		}
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Stdout, cmd.Stderr, cmd.Env = out, errOut, os.Environ()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("kops %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
}

// RunOptions of Run.
type RunOptions struct {
	// Yes runs the steps; without it Run prints them and changes nothing.
	Yes bool
	// Runner runs the kops CLI steps.
	Runner Runner
	Out    io.Writer
}

// hook, for tests: called before ("before") and after ("after") each
// step's work; an error fails the step there, as a crash would.
type hook func(step, phase string) error

// runState is one Run's view of the keysets, read again after every step.
type runState struct {
	s *Store
	o RunOptions
	v *view
}

func (p *runState) cur(ctx context.Context) (*view, error) {
	if p.v == nil {
		v, err := p.s.view(ctx)
		if err != nil {
			return nil, err
		}
		p.v = v
	}
	return p.v, nil
}

func (p *runState) at(step, phase string) error {
	if p.s.hook != nil {
		return p.s.hook(step, phase)
	}
	return nil
}

// Steps are kOps' procedure (docs/operations/rotate-secrets.md) as engine
// steps, in order (Procedure lists their names): the keyset steps stage,
// promote and distrust, each followed by kops update cluster --yes, kops
// rolling-update cluster --yes and kops export kubecfg.
//
// Done: stage, promote and distrust are done when the keysets are past
// them; the kops CLI steps of a stage are done when the keysets are past
// that stage, or when the journal marks them for the key ids the keysets
// hold now (validMarks). Every Do first ties the journal to those ids
// (bind), so the marks it writes say which keys they were made for.
func (s *Store) Steps(ctx context.Context, o RunOptions) []procedure.Step {
	p := &runState{s: s, o: o}
	return p.steps(ctx)
}

func (p *runState) steps(ctx context.Context) []procedure.Step {
	s := p.s
	var steps []procedure.Step
	for _, name := range Procedure {
		name := name
		f := &procedure.Func{StepName: name, What: Command(ctx, name, s.Cluster, s.StateStore)}
		f.UndoFunc = func(ctx context.Context, _ *procedure.Record) error {
			return fmt.Errorf("undo a stage with `%s rollback` (see `%s status`)", display.KopsRotate(ctx), display.KopsRotate(ctx))
		}
		var past Stage // the stage whose end makes this step done
		switch name {
		case StepStage:
			past = StageIdle
		case StepUpdate1, StepRoll1, StepExport1, StepPromote:
			past = StageStaged
		case StepUpdate2, StepRoll2, StepExportAfterProm, StepDistrust:
			past = StagePromoted
		default:
			past = StageDistrusted // never: the final steps are journaled
		}
		keyset := KopsArgs(name) == nil
		f.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
			v, err := p.cur(ctx)
			if err != nil {
				return false, err
			}
			if v.past(past) {
				return true, nil
			}
			if keyset {
				return false, nil
			}
			marks, err := validMarks(r, v)
			if err != nil {
				return false, err
			}
			_, ok := marks[name]
			return ok, nil
		}
		f.DoFunc = func(ctx context.Context, r *procedure.Record) error {
			fmt.Fprintf(p.o.Out, "==> %s\n", f.What)
			defer func() { p.v = nil }() // read the keysets again after any step
			v, err := p.cur(ctx)
			if err != nil {
				return err
			}
			if err := bind(r, v, time.Now()); err != nil {
				return err
			}
			if err := p.at(name, "before"); err != nil {
				return err
			}
			var changes []Change
			switch name {
			case StepStage:
				changes, err = s.Stage(ctx, s.Selected)
			case StepPromote:
				if changes, err = s.Promote(ctx, s.Selected); err == nil {
					err = RecordPromote(r, changes)
				}
			case StepDistrust:
				if err = exportGate(ctx, r.Steps); err == nil {
					changes, err = s.Distrust(ctx, s.Selected, false)
				}
			default:
				err = p.o.Runner(ctx, append(KopsArgs(name), "--name", s.Cluster, "--state", s.StateStore))
			}
			for _, c := range changes {
				fmt.Fprintf(p.o.Out, "    %s\n", c)
			}
			if err != nil {
				return err
			}
			if err := p.at(name, "after"); err != nil {
				return err
			}
			if keyset {
				// The new keypairs are the rotation's ids from here on.
				p.v = nil
				v, err := p.cur(ctx)
				if err != nil {
					return err
				}
				return bind(r, v, time.Now())
			}
			return nil
		}
		steps = append(steps, f)
	}
	return steps
}

// procedure is the rotation on the engine, journaled in the state store.
// The journal is kept when the rotation completes: it is what says the
// final roll and export were done, so the rotation is over (Status, Run).
func (p *runState) procedure(ctx context.Context) (*procedure.Procedure, error) {
	j, err := p.s.Journal()
	if err != nil {
		return nil, err
	}
	return &procedure.Procedure{Name: p.s.procName(), Steps: p.steps(ctx), Journal: j, KeepJournal: true,
		UndoCommand: display.KopsRotate(ctx) + " rollback --name " + p.s.Cluster + " --state " + p.s.StateStore + " (one stage at a time)"}, nil
}

// Run drives the whole procedure from where it stands on the engine
// (pkg/procedure), one step at a time, journaling each finished step in
// the state store so a run killed at any point resumes at the right step.
// A finished rotation is reported, not restarted: `kops-rotate stage`
// starts the next one.
func (s *Store) Run(ctx context.Context, o RunOptions) error {
	p := &runState{s: s, o: o}
	proc, err := p.procedure(ctx)
	if err != nil {
		return err
	}
	if !o.Yes {
		plan, r, err := proc.Plan(ctx)
		if err != nil {
			return err
		}
		var next []string
		for _, st := range plan {
			if st.Done {
				continue
			}
			next = append(next, st.What)
			if KopsArgs(st.Name) == nil {
				break // the keyset step that ends the stage
			}
		}
		if len(next) == 0 {
			complete(ctx, o.Out, r)
			return nil
		}
		v, err := p.cur(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Stage: %s. Steps to run now (nothing was changed; add --yes to run them):\n", v.stage)
		for _, c := range next {
			fmt.Fprintf(o.Out, "  %s\n", c)
		}
		return nil
	}
	r, err := proc.Run(ctx)
	if err != nil {
		return err
	}
	complete(ctx, o.Out, r)
	return nil
}

func complete(ctx context.Context, out io.Writer, r *procedure.Record) {
	fmt.Fprintf(out, "Rotation complete (finished %s). `%s stage all` starts the next one.\n", r.Steps[StepExportAfterDistr].Format("2006-01-02T15:04:05Z"), display.KopsRotate(ctx))
}
