// Package undo implements `kubectl rotate undo`: put a Secret's previous
// values back and restart its consumers.
package undo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cli/target"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	rotateplan "github.com/kube-rotate/kube-rotate/pkg/rotators/plan"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

var examples = templates.Examples(`
	# Put back the values the last rotation replaced, and restart their consumers
	kubectl rotate undo secret/diracx-secrets -n diracx

	# See what would be restored
	kubectl rotate undo secret/diracx-secrets -n diracx --dry-run=client

	# Roll back a whole plan run: finished items from NAME-previous, pending values dropped
	kubectl rotate undo -f diracx-db.yaml`)

// Options of `kubectl rotate undo`.
type Options struct {
	target.Secret
	Restart string
	Timeout time.Duration
	// Filename is a RotationPlan whose run to roll back (-f).
	Filename string
}

// NewCmdUndo returns the `undo` command.
func NewCmdUndo(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Secret: target.NewSecret(streams), Restart: "rollout", Timeout: consumers.DefaultTimeout}
	cmd := &cobra.Command{
		Use:                   "undo (secret/NAME | -f PLAN.yaml)",
		ValidArgsFunction:     completion.SpecifiedResourceTypeAndNameNoRepeatCompletionFunc(f, []string{"secret"}),
		DisableFlagsInUseLine: true,
		Short:                 "Restore the values a rotation replaced (from NAME-previous) and restart consumers",
		Long: templates.LongDesc(`
			Restore the previous values kept in NAME-previous by the last rotation, remove
			keys that rotation created, restart the workloads that read them once and wait
			until they are healthy. Re-running it resumes an interrupted undo; once the
			previous values are in place it changes nothing.`),
		Example: examples,
		Run: func(cmd *cobra.Command, a []string) {
			if o.Filename != "" {
				cmdutil.CheckErr(o.undoPlan(cmd, f, a))
				return
			}
			cmdutil.CheckErr(o.Complete("undo", f, cmd, a))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVar(&o.Restart, "restart", o.Restart, "rollout: restart consumers and wait; none: only restore the values.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each rollout.")
	cmd.Flags().StringVarP(&o.Filename, "filename", "f", "", "Roll back the run of this RotationPlan instead of one Secret.")
	o.AddFlags(cmd, true)
	return cmd
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if err := o.Secret.Validate(); err != nil {
		return err
	}
	if o.Restart != "rollout" && o.Restart != "none" {
		return fmt.Errorf("--restart %q is not supported: use rollout or none", o.Restart)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

// Run restores.
func (o *Options) Run(ctx context.Context) error {
	res, err := secret.Undo(ctx, o.RotationClients(), secret.UndoOptions{
		Namespace: o.Clients.Namespace, Name: o.Name, Restart: o.Restart == "rollout", Timeout: o.Timeout,
		DryRun: o.DryRun, By: kube.WhoAmI(ctx, o.Clients.Kube), Progress: o.Progress(), On: o.Clients.Target.String(),
	})
	if res == nil {
		return err
	}
	t := o.Clients.Target
	res.Target = &t
	switch {
	case o.Output != "":
		return errors.Join(output.PrintObject(o.PrintFlags, o.Output, res, o.Out), err)
	case res.DryRun == string(secret.DryRunClient):
		return errors.Join(output.PrintPlan(ctx, o.Out, res), err)
	case res.DryRun != "":
		if err == nil {
			fmt.Fprintf(o.Out, "\nundo accepted by the API server (dry run): secret/%s was not changed\n", o.Name)
		}
	case err == nil && len(res.Secrets) == 1 && res.Secrets[0].Warnings == nil:
		fmt.Fprintf(o.Out, "\nundo complete: secret/%s holds its previous values (generation %d), %d workload(s) restarted\n",
			o.Name, res.Secrets[0].Generation, len(res.Restarted))
	}
	return err
}

// undoPlan rolls back the run of a RotationPlan. It takes none of the
// flags of a Secret's undo: the plan says how to restart, and a dry run of
// a plan's rollback is not offered (it would write).
func (o *Options) undoPlan(cmd *cobra.Command, f cmdutil.Factory, args []string) error {
	ctx := cmd.Context()
	if len(args) > 0 {
		return errors.New("give secret/NAME or -f PLAN.yaml, not both")
	}
	for _, name := range []string{"dry-run", "output", "restart", "timeout"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("undo -f takes no --%s: the plan's spec.restart and spec.timeout apply, and `kubectl rotate apply -f %s -o yaml` shows what its run did", name, o.Filename)
		}
	}
	p, err := planspec.ParseFile(o.Filename)
	if err != nil {
		return err
	}
	clients, err := kube.NewClients(f)
	if err != nil {
		return err
	}
	err = rotateplan.Undo(ctx, rotateplan.Options{Plan: p, Clients: secret.Clients{Kube: clients.Kube, Dynamic: clients.Dynamic},
		Namespace: clients.Namespace, By: kube.WhoAmI(ctx, clients.Kube), Progress: o.ErrOut})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "plan %s: rolled back\n", p.Metadata.Name)
	return nil
}
