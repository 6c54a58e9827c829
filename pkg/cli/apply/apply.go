// Package apply implements `kubectl rotate apply -f PLAN.yaml`: rotate every
// item of a RotationPlan in one resumable run (create, set, test, finish).
package apply

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/parallel"
	rotateplan "github.com/kube-rotate/kube-rotate/pkg/rotators/plan"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

var examples = templates.Examples(`
	# Rotate every DiracX database password: new values staged in NAME-pending,
	# set in the database by the plan's hook, tested, then put in place
	kubectl rotate apply -f diracx-db.yaml

	# After a failed hook or a crash: the same command resumes where it stopped
	kubectl rotate apply -f diracx-db.yaml

	# A record of the run for audit: ids, steps, times, fingerprints (no values)
	kubectl rotate apply -f diracx-db.yaml -o json

	# Items whose hooks share a backing system that takes one change at a time
	kubectl rotate apply -f diracx-db.yaml --workers 1`)

// Options of `kubectl rotate apply`.
type Options struct {
	Filename   string
	Output     string
	Workers    int
	PrintFlags *genericclioptions.JSONYamlPrintFlags

	plan    *planspec.Plan
	clients *kube.Clients
	genericiooptions.IOStreams
}

// NewCmdApply returns the `apply` command.
func NewCmdApply(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "apply -f PLAN.yaml",
		DisableFlagsInUseLine: true,
		Short:                 "Rotate every item of a RotationPlan in one resumable run: create, set, test, finish",
		Long: templates.LongDesc(`
			Rotate the Secrets of a RotationPlan (rotate.kube-rotate.io/v1alpha1). Each item
			goes through four steps: create (new values in NAME-pending; nothing in use
			changes), set (its set hook applies them to the backing system), test (its test
			hook proves they work) and finish (the values move into place, the old ones stay
			in NAME-previous). Workloads reading changed keys restart once, after all writes.

			The items of one phase (items with no after list, then those after them, and so
			on) run side by side, --workers at a time; items of one Secret run one after
			another. Each item's steps keep their order.

			Progress is journaled in configmap/kube-rotate-plan-NAME after every step: after
			a failed hook or a crash, the same command resumes at the first unfinished step.`),
		Example: examples,
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVarP(&o.Filename, "filename", "f", "", "The RotationPlan file.")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml (the run's record, no values). Progress then goes to stderr.")
	cmd.Flags().IntVar(&o.Workers, "workers", parallel.DefaultWorkers, "Items of one phase rotated at once (1: one item after another).")
	return cmd
}

// Complete reads the plan and builds the clients.
func (o *Options) Complete(f cmdutil.Factory) error {
	if o.Filename == "" {
		return errors.New("give the plan with -f PLAN.yaml")
	}
	p, err := planspec.ParseFile(o.Filename)
	if err != nil {
		return err
	}
	o.plan = p
	o.clients, err = kube.NewClients(f)
	return err
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Workers < 1 {
		return fmt.Errorf("--workers %d: give 1 or more (1 rotates one item after another)", o.Workers)
	}
	return output.ValidateFormat(o.Output)
}

// Run applies the plan.
func (o *Options) Run(ctx context.Context) error {
	j, err := rotateplan.Apply(ctx, rotateplan.Options{Plan: o.plan, Clients: secret.Clients{Kube: o.clients.Kube, Dynamic: o.clients.Dynamic},
		Namespace: o.clients.Namespace, PlanFile: o.Filename, On: o.clients.Target.String(), By: kube.WhoAmI(ctx, o.clients.Kube), Progress: output.Progress(o.IOStreams, o.Output), Workers: o.Workers})
	if j != nil && o.Output != "" {
		j.TypeMeta = v1alpha1.TypeMeta(v1alpha1.KindRotationPlanRun)
		t := o.clients.Target
		j.Target = &t
		if perr := output.PrintObject(o.PrintFlags, o.Output, j, o.Out); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}
