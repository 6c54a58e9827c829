// Package undo implements `kubectl rotate undo`: put a Secret's previous
// values back and restart its consumers.
package undo

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cmd/args"
	"github.com/kube-rotate/kube-rotate/pkg/cmd/output"
	"github.com/kube-rotate/kube-rotate/pkg/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/kube"
	"github.com/kube-rotate/kube-rotate/pkg/rotation"
)

var examples = templates.Examples(`
	# Put back the values the last rotation replaced, and restart their consumers
	kubectl rotate undo secret/diracx-secrets -n diracx

	# See what would be restored
	kubectl rotate undo secret/diracx-secrets -n diracx --dry-run=client`)

// Options of `kubectl rotate undo`.
type Options struct {
	Name       string
	Restart    string
	Timeout    time.Duration
	Output     string
	DryRun     rotation.DryRun
	PrintFlags *genericclioptions.JSONYamlPrintFlags

	clients *kube.Clients
	genericiooptions.IOStreams
}

// NewCmdUndo returns the `undo` command.
func NewCmdUndo(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Restart: "rollout", Timeout: consumers.DefaultTimeout, PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "undo secret/NAME",
		DisableFlagsInUseLine: true,
		Short:                 "Restore the values a rotation replaced (from NAME-previous) and restart consumers",
		Long: templates.LongDesc(`
			Restore the previous values kept in NAME-previous by the last rotation, remove
			keys that rotation created, restart the workloads that read them once and wait
			until they are healthy. Re-running it resumes an interrupted undo; once the
			previous values are in place it changes nothing.`),
		Example: examples,
		Run: func(cmd *cobra.Command, a []string) {
			cmdutil.CheckErr(o.Complete(f, cmd, a))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVar(&o.Restart, "restart", o.Restart, "rollout: restart consumers and wait; none: only restore the values.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each rollout.")
	cmdutil.AddDryRunFlag(cmd)
	output.AddOutputFlag(cmd, o.PrintFlags, &o.Output)
	return cmd
}

// Complete parses the argument and builds clients.
func (o *Options) Complete(f cmdutil.Factory, cmd *cobra.Command, a []string) error {
	var err error
	if o.Name, err = args.SecretName("undo", a); err != nil {
		return err
	}
	dr, err := cmdutil.GetDryRunStrategy(cmd)
	if err != nil {
		return err
	}
	o.DryRun = output.DryRun(dr)
	o.clients, err = kube.NewClients(f)
	return err
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Output != "" && o.Output != "json" && o.Output != "yaml" {
		return fmt.Errorf("--output %q is not supported: use json or yaml", o.Output)
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
	if ctx == nil {
		ctx = context.Background()
	}
	progress := o.Out
	if o.Output != "" {
		progress = o.ErrOut
	}
	res, err := rotation.Undo(ctx, rotation.Clients{Kube: o.clients.Kube, Dynamic: o.clients.Dynamic}, rotation.UndoOptions{
		Namespace: o.clients.Namespace, Name: o.Name, Restart: o.Restart == "rollout", Timeout: o.Timeout,
		DryRun: o.DryRun, By: kube.WhoAmI(ctx, o.clients.Kube), Progress: progress,
	})
	if res != nil {
		var perr error
		switch {
		case o.Output != "":
			perr = output.PrintObject(o.PrintFlags, o.Output, res, o.Out)
		case res.DryRun == string(rotation.DryRunClient):
			perr = output.PrintPlan(o.Out, res)
		case err == nil && len(res.Secrets) == 1 && res.Secrets[0].Warnings == nil:
			fmt.Fprintf(o.Out, "\nundo complete: secret/%s holds its previous values (generation %d), %d workload(s) restarted\n",
				o.Name, res.Secrets[0].Generation, len(res.Restarted))
		}
		if perr != nil {
			return perr
		}
	}
	return err
}
