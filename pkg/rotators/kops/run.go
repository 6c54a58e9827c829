package kops

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/display"
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

// Run drives the whole procedure from where it stands, one step at a time,
// recording each finished step in the state store so a run killed at any
// point resumes at the right step. A finished rotation is reported, not
// restarted: `kops-rotate stage` starts the next one.
func (s *Store) Run(ctx context.Context, o RunOptions) error {
	for {
		sts, err := s.Status(ctx, nil)
		if err != nil {
			return err
		}
		rec, err := s.ReadRecord(ctx)
		if err != nil {
			return err
		}
		stage := Overall(sts)
		if rec.Finished() && stage == StageIdle {
			fmt.Fprintf(o.Out, "Rotation complete (finished %s). `%s stage all` starts the next one.\n", rec.Done[StepExportAfterDistr].Format("2006-01-02T15:04:05Z"), display.KopsRotate(ctx))
			return nil
		}
		next := NextSteps(stage, rec)
		if len(next) == 0 {
			return fmt.Errorf("stage %s has no step left but is not finished: check `%s status`", stage, display.KopsRotate(ctx))
		}
		step := next[0]
		if !o.Yes {
			fmt.Fprintf(o.Out, "Stage: %s. Steps to run now (nothing was changed; add --yes to run them):\n", stage)
			for _, st := range next {
				fmt.Fprintf(o.Out, "  %s\n", Command(ctx, st, s.Cluster, s.StateStore))
			}
			return nil
		}
		fmt.Fprintf(o.Out, "==> %s\n", Command(ctx, step, s.Cluster, s.StateStore))
		var changes []Change
		switch step {
		case StepStage:
			// run starts a rotation: the previous one's record goes.
			if err = s.ResetRecord(ctx); err == nil {
				changes, err = s.KeysetStep(ctx, step, nil, false)
			}
		case StepPromote, StepDistrust:
			changes, err = s.KeysetStep(ctx, step, nil, false)
		default:
			args := append(KopsArgs(step), "--name", s.Cluster, "--state", s.StateStore)
			if err = o.Runner(ctx, args); err == nil {
				err = s.MarkDone(ctx, step)
			}
		}
		for _, c := range changes {
			fmt.Fprintf(o.Out, "    %s\n", c)
		}
		if err != nil {
			return fmt.Errorf("step %s failed: %w; fix the cause and re-run `%s run --yes` to resume here", step, err, display.KopsRotate(ctx))
		}
	}
}

// StepRollback names the rollback of the current stage for KeysetStep.
const StepRollback = "rollback"

// KeysetStep takes one keyset step on the keysets named (all rotatable
// ones when empty) and keeps the record in step with it: stage (a new
// rotation from idle forgets the previous one's record), promote, distrust
// (force skips its gates), or rollback of the stage the keysets are in,
// which unmarks that stage's steps. `kops-rotate run` and the single-step
// commands both take steps through it.
func (s *Store) KeysetStep(ctx context.Context, step string, names []string, force bool) ([]Change, error) {
	before, err := s.Status(ctx, names)
	if err != nil {
		return nil, err
	}
	stage := Overall(before)
	var changes []Change
	switch step {
	case StepStage:
		if stage == StageIdle {
			if err := s.ResetRecord(ctx); err != nil {
				return nil, err
			}
		}
		changes, err = s.Stage(ctx, names)
	case StepPromote:
		changes, err = s.Promote(ctx, names)
	case StepDistrust:
		changes, err = s.Distrust(ctx, names, force)
	case StepRollback:
		changes, err = s.Rollback(ctx, names)
	default:
		return nil, fmt.Errorf("internal: %s is no keyset step", step)
	}
	if err != nil {
		return changes, err
	}
	switch {
	case step != StepRollback:
		err = s.MarkDone(ctx, step)
	case stage == StageStaged:
		err = s.ResetRecord(ctx)
	case stage == StagePromoted:
		err = s.Unmark(ctx, StepsFrom(StepPromote)...)
	case stage == StageDistrusted:
		err = s.Unmark(ctx, StepsFrom(StepDistrust)...)
	}
	return changes, err
}
