// Package run implements `kops-rotate run`: the whole kOps keyset
// rotation, step by step, resuming where it stopped.
package run

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Options of `kops-rotate run`.
type Options struct {
	Cluster *clusterflags.Flags
	Yes     bool
	// Keysets are the keysets to rotate (all rotatable ones when empty).
	Keysets []string
	// Runner runs the kops CLI; nil means kops from PATH.
	Runner kops.Runner
	genericiooptions.IOStreams
}

// NewCmdRun returns the `run` command.
func NewCmdRun(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Cluster: cluster, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "run [KEYSET...|all] [--yes]",
		Short: "Drive the whole procedure: stage, update, roll, export, promote, update, roll, export, distrust, update, roll, export",
		Long: templates.LongDesc(`
			Run kOps' keyset rotation procedure from where it stands. Keyset steps use the
			kOps libraries; update, rolling-update and export run the kops CLI found on
			PATH. Every finished step is recorded in the state store
			(backups/kops-rotate/state.yaml under the cluster's config base, a path kops
			delete cluster accepts and removes with the cluster), so a run stopped at any point resumes at the
			right step. Without --yes it prints the steps it would run and changes nothing.`),
		Example: templates.Examples(fmt.Sprintf(`
			# What would run next
			%[1]s run --name k8s.example.com --state s3://kops-state

			# Run it all (re-run the same command after any failure to resume)
			%[1]s run --yes

			# Rotate the service-account signing key only
			%[1]s run service-account --yes`, name)),
		Run: func(cmd *cobra.Command, args []string) {
			o.Keysets = args
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "Run the steps (default: print them).")
	return cmd
}

// Run drives the procedure.
func (o *Options) Run(ctx context.Context) error {
	s, err := o.Cluster.Open(ctx)
	if err != nil {
		return err
	}
	s.Selected = o.Keysets
	runner := o.Runner
	if runner == nil {
		runner = kops.ExecRunner(o.Out, o.ErrOut)
	}
	return s.Run(ctx, kops.RunOptions{Yes: o.Yes, Runner: runner, Out: o.Out})
}
