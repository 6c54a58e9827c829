// Package finish implements `kubectl rotate finish`: drop a Secret's
// previous values once its consumers are healthy.
package finish

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cli/target"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

var examples = templates.Examples(`
	# Delete secret/diracx-secrets-previous once every consumer runs the new values
	kubectl rotate finish secret/diracx-secrets -n diracx

	# The Deepdesk back-compat copy is no longer needed once data is re-encrypted
	kubectl rotate finish secret/admin-secrets --force`)

// Options of `kubectl rotate finish`.
type Options struct {
	target.Secret
	Force bool
}

// NewCmdFinish returns the `finish` command.
func NewCmdFinish(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Secret: target.NewSecret(streams)}
	cmd := &cobra.Command{
		Use:                   "finish secret/NAME",
		ValidArgsFunction:     completion.SpecifiedResourceTypeAndNameNoRepeatCompletionFunc(f, []string{"secret"}),
		DisableFlagsInUseLine: true,
		Short:                 "Delete a Secret's previous values (NAME-previous) once its consumers are healthy",
		Long: templates.LongDesc(`
			Delete NAME-previous, the copy of the values the last rotation replaced, and
			with it the way back. Refuses while the last rotation is not complete or any
			consumer's rollout is not healthy, unless --force.`),
		Example: examples,
		Run: func(cmd *cobra.Command, a []string) {
			cmdutil.CheckErr(o.Complete("finish", f, cmd, a))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "Delete the previous values even if consumers are not healthy.")
	o.AddFlags(cmd, true)
	return cmd
}

// Run deletes the companion.
func (o *Options) Run(ctx context.Context) error {
	res, err := secret.Finish(ctx, o.RotationClients(), secret.FinishOptions{
		Namespace: o.Clients.Namespace, Name: o.Name, Force: o.Force, DryRun: o.DryRun, Progress: o.Progress(),
	})
	if err != nil {
		return err
	}
	if o.Output != "" {
		return output.PrintObject(o.PrintFlags, o.Output, res, o.Out)
	}
	if res.DryRun != "" {
		fmt.Fprintf(o.Out, "secret/%s would be deleted (dry run)\n", res.Deleted)
	}
	return nil
}
