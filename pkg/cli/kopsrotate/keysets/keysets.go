// Package keysets implements the keyset steps of `kops-rotate`: stage,
// promote, distrust and rollback. Each changes keysets through the kOps
// libraries and journals the step through the core (kops.Store.KeysetStep:
// the rotation's journal in the state store is written there and by the
// engine `run` uses, never here), and prints what it did and the commands
// that follow.
package keysets

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Options of a keyset step.
type Options struct {
	Cluster *clusterflags.Flags
	Force   bool
	// Exported says the kubeconfig was exported by hand since the promote.
	Exported bool
	// Kubeconfig is passed to kops validate cluster (promote, distrust).
	Kubeconfig string
	step       string
	genericiooptions.IOStreams
}

type verb struct {
	use, short, example string
	step                string
}

var verbs = []verb{
	{"stage [KEYSET...|all]", "Create a new keypair in each keyset that has none staged (idempotent)", `
		# Stage every rotatable keyset (the CAs and service-account)
		%[1]s stage all --name k8s.example.com --state s3://kops-state`, kops.StepStage},
	{"promote [KEYSET...|all]", "Make each keyset's staged keypair its primary (refused until the cluster validates after its rolling update)", `
		# After the cluster was updated and rolled with the staged keypairs
		# (kops validate cluster runs first unless kops-rotate run validated it)
		%[1]s promote all`, kops.StepPromote},
	{"distrust [KEYSET...|all]", "Distrust the keypairs older than each primary (refused until promoted, validated and the kubeconfig exported)", `
		# After the cluster was rolled with the promoted keypairs and the kubeconfig exported
		%[1]s distrust all`, kops.StepDistrust},
	{"rollback [KEYSET...|all]", "Undo the current stage: staged -> distrust the staged keys; promoted -> promote the previous primary back; distrusted -> trust the previous keys again", `
		# Something broke after promote: the previous primaries come back
		%[1]s rollback`, kops.StepRollback},
}

// NewCmds returns stage, promote, distrust and rollback.
func NewCmds(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) []*cobra.Command {
	var cmds []*cobra.Command
	for _, v := range verbs {
		o := &Options{Cluster: cluster, step: v.step, IOStreams: streams}
		cmd := &cobra.Command{
			Use:                   v.use,
			DisableFlagsInUseLine: true,
			Short:                 v.short,
			Example:               templates.Examples(fmt.Sprintf(v.example, name)),
			Run: func(cmd *cobra.Command, args []string) {
				cmdutil.CheckErr(o.Run(cmd.Context(), args))
			},
		}
		if v.step == kops.StepPromote || v.step == kops.StepDistrust {
			cmd.Flags().StringVar(&o.Kubeconfig, "kubeconfig", "", "Kubeconfig for kops validate cluster, which runs first unless kops-rotate run validated the cluster since its rolling update (default: kops' own, $KUBECONFIG or ~/.kube/config).")
		}
		switch v.step {
		case kops.StepDistrust:
			cmd.Flags().BoolVar(&o.Force, "force", false, "Distrust even if a keyset is not promoted (the kubeconfig export is still required).")
			cmd.Flags().BoolVar(&o.Exported, "exported", false, "The kubeconfig was exported since the promote by hand (kops export kubecfg --admin): journal it, so the export gate passes.")
		case kops.StepRollback:
			cmd.Flags().BoolVar(&o.Force, "force", false, "Trust the old keypairs again even though the rotation is finished, or was not distrusted by this tool.")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// Run performs the step.
func (o *Options) Run(ctx context.Context, names []string) error {
	s, err := o.Cluster.Open(ctx)
	if err != nil {
		return err
	}
	s.Validate = s.ExecValidate(o.Kubeconfig)
	if o.Exported {
		if err := s.MarkExported(ctx); err != nil {
			return err
		}
	}
	changes, err := s.KeysetStep(ctx, o.step, names, o.Force)
	for _, c := range changes {
		fmt.Fprintln(o.Out, c)
	}
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintln(o.Out, "Nothing to change: every selected keyset already has a staged keypair")
	}
	after, err := s.Status(ctx, names)
	if err != nil {
		return err
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil {
		return err
	}
	cmds := kops.NextCommands(ctx, kops.Overall(after), rec, o.Cluster.Name, o.Cluster.State)
	if len(cmds) > 0 {
		fmt.Fprintf(o.Out, "\nNext:\n  %s\n", strings.Join(cmds, "\n  "))
	}
	return nil
}
