package kopskeys

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
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
			fmt.Fprintf(o.Out, "Rotation complete (finished %s). `kops-rotate stage all` starts the next one.\n", rec.Done[StepExportAfterDistr].Format("2006-01-02T15:04:05Z"))
			return nil
		}
		next := NextSteps(stage, rec)
		if len(next) == 0 {
			return fmt.Errorf("stage %s has no step left but is not finished: check `kops-rotate status`", stage)
		}
		step := next[0]
		if !o.Yes {
			fmt.Fprintf(o.Out, "Stage: %s. Steps to run now (nothing was changed; add --yes to run them):\n", stage)
			for _, st := range next {
				fmt.Fprintf(o.Out, "  %s\n", Command(st, s.Cluster, s.StateStore))
			}
			return nil
		}
		fmt.Fprintf(o.Out, "==> %s\n", Command(step, s.Cluster, s.StateStore))
		var changes []Change
		switch step {
		case StepStage:
			if err := s.ResetRecord(ctx); err != nil {
				return err
			}
			changes, err = s.Stage(ctx, nil)
		case StepPromote:
			changes, err = s.Promote(ctx, nil)
		case StepDistrust:
			changes, err = s.Distrust(ctx, nil, false)
		default:
			args := append(KopsArgs(step), "--name", s.Cluster, "--state", s.StateStore)
			err = o.Runner(ctx, args)
		}
		for _, c := range changes {
			fmt.Fprintf(o.Out, "    %s\n", c)
		}
		if err != nil {
			return fmt.Errorf("step %s failed: %w; fix the cause and re-run `kops-rotate run --yes` to resume here", step, err)
		}
		if err := s.MarkDone(ctx, step); err != nil {
			return err
		}
	}
}
