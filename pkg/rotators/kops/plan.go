package kops

import (
	"context"
	"fmt"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/display"
)

// Command returns the command line of a step of kOps' procedure
// (docs/operations/rotate-secrets.md) for one cluster, with kOps' default
// flags; kops-rotate is named as the context says it runs (pkg/display).
func Command(ctx context.Context, step, cluster, state string) string {
	return CLIOptions{}.Command(ctx, step, cluster, state)
}

// Command returns the command line of a step with these kops flags; a
// person's step is said in words, with the command that goes on after it.
func (o CLIOptions) Command(ctx context.Context, step, cluster, state string) string {
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
	if PersonStep(step) {
		return fmt.Sprintf("(a person) %s; `%s run` stops here until re-run with --done %s", personWhat[step], tool, step)
	}
	if args := o.Args(step); args != nil {
		return "kops " + strings.Join(args, " ") + " " + target
	}
	return ""
}

// personWhat says in a few words what a person's step is.
var personWhat = map[string]string{
	StepApply1:            "apply the Terraform kops wrote (terraform apply)",
	StepApply2:            "apply the Terraform kops wrote (terraform apply)",
	StepApply3:            "apply the Terraform kops wrote (terraform apply)",
	StepDistributeCA:      "hand the kubeconfig's new certificate-authority-data to every other client of the Kubernetes API",
	StepDistributeCreds:   "hand new admin credentials to every other holder of admin credentials",
	StepServiceAcctTokens: "reissue or retire the legacy service-account token Secrets (they stop working at distrust)",
}

// Scope decides which steps apply to one rotation: the CA data and admin
// credential hand-outs only when kubernetes-ca is rotated (kOps'
// procedure, steps 2, 4 and 6), the service-account tokens only when
// service-account is, and the Terraform applies only with --target
// terraform.
type Scope struct {
	// Keysets are the keysets the rotation changes.
	Keysets map[string]bool
	CLI     CLIOptions
}

// Applies reports whether step is part of this rotation.
func (sc Scope) Applies(step string) bool {
	switch step {
	case StepApply1, StepApply2, StepApply3:
		return sc.CLI.Terraform()
	case StepDistributeCA, StepDistributeCreds:
		return sc.Keysets["kubernetes-ca"]
	case StepServiceAcctTokens:
		return sc.Keysets["service-account"]
	}
	return true
}

// ScopeOf is the scope of the rotation of the keysets shown: those in
// rotation, or, when none is, those a stage would rotate.
func ScopeOf(sts []KeysetStatus, cli CLIOptions) Scope {
	sc := Scope{Keysets: map[string]bool{}, CLI: cli}
	for _, st := range sts {
		if st.Stage != StageIdle {
			sc.Keysets[st.Name] = true
		}
	}
	if len(sc.Keysets) == 0 {
		for _, st := range sts {
			sc.Keysets[st.Name] = true
		}
	}
	return sc
}

// stageSteps are the steps that belong to each stage of the procedure,
// ending with the keyset step that moves to the next stage.
var stageSteps = map[Stage][]string{
	StageIdle:       {StepStage},
	StageStaged:     {StepUpdate1, StepApply1, StepRoll1, StepValidate1, StepExport1, StepDistributeCA, StepPromote},
	StagePromoted:   {StepUpdate2, StepApply2, StepRoll2, StepValidate2, StepExportAfterProm, StepDistributeCreds, StepServiceAcctTokens, StepDistrust},
	StageDistrusted: {StepUpdate3, StepApply3, StepRoll3, StepValidate3, StepExportAfterDistr},
}

// NextSteps returns the steps still to do in the current stage, in order,
// skipping those the record says are done in this rotation and those that
// do not apply to it (rec.Skip).
func NextSteps(stage Stage, rec *Record) []string {
	var out []string
	for _, s := range stageSteps[stage] {
		if _, done := rec.Done[s]; done && stage != StageIdle {
			continue
		}
		if rec.Skip != nil && rec.Skip(s) {
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
		out = append(out, rec.CLI.Command(ctx, st, cluster, state))
	}
	return out
}

// RollbackCommands returns what undoes the current stage, as the kOps
// documentation gives it. Every stage's rollback runs `kops update cluster
// --yes` before the rolling update: the instances' user data carries a
// hash of the CA bundle and the primary ids, so without the update
// `kops rolling-update` finds nothing to roll.
func RollbackCommands(ctx context.Context, stage Stage, cluster, state string) []string {
	return CLIOptions{}.RollbackCommands(ctx, stage, cluster, state)
}

// RollbackCommands is RollbackCommands with these kops flags: with
// --target terraform the update writes Terraform that a person applies
// before the rolling update.
func (o CLIOptions) RollbackCommands(ctx context.Context, stage Stage, cluster, state string) []string {
	target := fmt.Sprintf("--name %s --state %s", cluster, state)
	if stage != StageStaged && stage != StagePromoted && stage != StageDistrusted {
		return nil
	}
	out := []string{display.KopsRotate(ctx) + " rollback " + target, "kops " + strings.Join(o.Args(StepUpdate1), " ") + " " + target}
	if o.Terraform() {
		out = append(out, "(a person) apply the Terraform in "+o.Out+" (terraform apply)")
	}
	roll := o.Args(StepRoll1)
	if stage == StageDistrusted {
		// kOps' procedure: nothing in the user data changes back, so force.
		roll = append([]string{"rolling-update", "cluster", "--force"}, roll[2:]...)
	}
	return append(out, "kops "+strings.Join(roll, " ")+" "+target)
}
