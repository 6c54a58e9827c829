package kops

import (
	"context"
	"fmt"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/display"
)

// KopsArgs returns the arguments of the kops CLI for a step that runs it
// (update, rolling-update, export), or nil for a keyset step.
func KopsArgs(step string) []string {
	switch step {
	case StepUpdate1, StepUpdate2, StepUpdate3:
		return []string{"update", "cluster", "--yes"}
	case StepRoll1, StepRoll2, StepRoll3:
		return []string{"rolling-update", "cluster", "--yes"}
	case StepExport1, StepExportAfterDistr:
		return []string{"export", "kubecfg"}
	case StepExportAfterProm:
		// New admin credentials are issued by the new CA.
		return []string{"export", "kubecfg", "--admin"}
	}
	return nil
}

// Command returns the command line of a step of kOps' procedure
// (docs/operations/rotate-secrets.md) for one cluster; kops-rotate is named
// as the context says it runs (pkg/display).
func Command(ctx context.Context, step, cluster, state string) string {
	target := fmt.Sprintf("--name %s --state %s", cluster, state)
	tool := display.KopsRotate(ctx)
	switch step {
	case StepStage:
		return tool + " stage all " + target
	case StepPromote:
		return tool + " promote all " + target
	case StepDistrust:
		return tool + " distrust all " + target
	}
	if args := KopsArgs(step); args != nil {
		return "kops " + strings.Join(args, " ") + " " + target
	}
	return ""
}

// stageSteps are the steps that belong to each stage of the procedure,
// ending with the keyset step that moves to the next stage.
var stageSteps = map[Stage][]string{
	StageIdle:       {StepStage},
	StageStaged:     {StepUpdate1, StepRoll1, StepExport1, StepPromote},
	StagePromoted:   {StepUpdate2, StepRoll2, StepExportAfterProm, StepDistrust},
	StageDistrusted: {StepUpdate3, StepRoll3, StepExportAfterDistr},
}

// NextSteps returns the steps still to do in the current stage, in order,
// skipping those the record says are done in this rotation.
func NextSteps(stage Stage, rec *Record) []string {
	var out []string
	for _, s := range stageSteps[stage] {
		if _, done := rec.Done[s]; done && stage != StageIdle {
			continue
		}
		out = append(out, s)
	}
	return out
}

// NextCommands returns the command lines of the steps still to do in stage.
func NextCommands(ctx context.Context, stage Stage, rec *Record, cluster, state string) []string {
	var out []string
	for _, st := range NextSteps(stage, rec) {
		out = append(out, Command(ctx, st, cluster, state))
	}
	return out
}

// RollbackCommands returns what undoes the current stage, as the kOps
// documentation gives it. Every stage's rollback runs `kops update cluster
// --yes` before the rolling update: the instances' user data carries a
// hash of the CA bundle and the primary ids, so without the update
// `kops rolling-update` finds nothing to roll.
func RollbackCommands(ctx context.Context, stage Stage, cluster, state string) []string {
	target := fmt.Sprintf("--name %s --state %s", cluster, state)
	rollback := display.KopsRotate(ctx) + " rollback " + target
	switch stage {
	case StageStaged:
		return []string{rollback, "kops update cluster --yes " + target, "kops rolling-update cluster --yes " + target}
	case StagePromoted:
		return []string{rollback, "kops update cluster --yes " + target, "kops rolling-update cluster --yes " + target}
	case StageDistrusted:
		return []string{rollback, "kops update cluster --yes " + target, "kops rolling-update cluster --force --yes " + target}
	}
	return nil
}
