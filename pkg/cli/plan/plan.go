// Package plan implements `kubectl rotate plan -f PLAN.yaml`: what `apply`
// would do, item by item, checked against the cluster; nothing is changed.
package plan

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	rotateplan "github.com/kube-rotate/kube-rotate/pkg/rotators/plan"
)

var examples = templates.Examples(`
	# What apply would do: each item's steps, hooks and the workloads that would restart
	kubectl rotate plan -f diracx-db.yaml`)

// Options of `kubectl rotate plan`.
type Options struct {
	Filename string

	plan    *planspec.Plan
	clients *kube.Clients
	genericiooptions.IOStreams
}

// NewCmdPlan returns the `plan` command.
func NewCmdPlan(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "plan -f PLAN.yaml",
		DisableFlagsInUseLine: true,
		Short:                 "Show what apply would do with a RotationPlan, checked against the cluster; change nothing",
		Long: templates.LongDesc(`
			Read a RotationPlan strictly, check that every Secret it changes exists with the
			keys it edits, and print each item's steps (create, set, test, finish), its hooks
			and the workloads that would restart; while a run of the plan is under way, the
			steps already done are marked (done). Nothing is written.`),
		Example: examples,
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f))
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVarP(&o.Filename, "filename", "f", "", "The RotationPlan file.")
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

// Run checks the plan against the cluster and prints it.
func (o *Options) Run(ctx context.Context) error {
	if err := rotateplan.Preflight(ctx, o.clients.Kube, o.plan, o.clients.Namespace); err != nil {
		return err
	}
	return rotateplan.Describe(ctx, o.Out, o.clients.Kube, o.plan, o.clients.Namespace)
}
