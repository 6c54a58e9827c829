// Package rotate assembles the `kubectl rotate` command tree. Each verb lives
// in its own package under pkg/cli; this package only wires them together
// with kubectl's connection flags.
package rotate

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/apply"
	"github.com/kube-rotate/kube-rotate/pkg/cli/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/cli/finish"
	"github.com/kube-rotate/kube-rotate/pkg/cli/history"
	"github.com/kube-rotate/kube-rotate/pkg/cli/jwk"
	"github.com/kube-rotate/kube-rotate/pkg/cli/plan"
	"github.com/kube-rotate/kube-rotate/pkg/cli/secret"
	"github.com/kube-rotate/kube-rotate/pkg/cli/status"
	"github.com/kube-rotate/kube-rotate/pkg/cli/undo"
	"github.com/kube-rotate/kube-rotate/pkg/cli/verbosity"
	"github.com/kube-rotate/kube-rotate/pkg/cli/version"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/display"
)

// DisplayName is how the command presents itself in help and examples:
// kubectl runs the kubectl-rotate binary for `kubectl rotate`.
const DisplayName = "kubectl rotate"

// NewCmdRotate returns the root `kubectl rotate` command.
func NewCmdRotate(streams genericiooptions.IOStreams) *cobra.Command {
	flags := kube.NewFlags()
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate Secrets and keys safely: plan, keep the old value, restart only consumers, verify, undo",
		Long: templates.LongDesc(`
			Rotate secret values and signing keys on a Kubernetes cluster as a staged,
			resumable procedure: plan first, keep the previous value until the new one is
			proven, restart only the workloads that use it, wait until they are healthy,
			and record what was done so it can be re-run or undone at any step.

			Secret values are never printed, logged or passed on a command line.`),
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: DisplayName,
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetContext(display.WithKubectlRotate(cmd.Context(), DisplayName))
			if err := verbosity.Validate(); err != nil {
				return err
			}
			return flags.Validate()
		},
		Run: func(cmd *cobra.Command, args []string) {
			cmd.Help()
		},
	}
	flags.AddFlags(cmd.PersistentFlags())
	verbosity.AddFlags(cmd.PersistentFlags())
	f := flags.NewFactory()
	// kubectl's own completions: -n NAMESPACE, --context, --cluster, --user.
	for flag, fn := range map[string]cobra.CompletionFunc{
		"namespace": completion.ResourceNameCompletionFunc(f, "namespace"),
		"context":   completion.ContextCompletionFunc,
		"cluster":   completion.ClusterCompletionFunc,
		"user":      completion.UserCompletionFunc,
	} {
		_ = cmd.RegisterFlagCompletionFunc(flag, fn)
	}
	cmd.AddCommand(
		secret.NewCmdSecret(f, streams),
		jwk.NewCmdJWK(f, streams),
		undo.NewCmdUndo(f, streams),
		finish.NewCmdFinish(f, streams),
		history.NewCmdHistory(f, streams),
		status.NewCmdStatus(f, streams),
		apply.NewCmdApply(f, streams),
		plan.NewCmdPlan(f, streams),
		encryption.NewCmdEncryption(f, streams),
		version.NewCmdVersion(DisplayName, streams),
	)
	return cmd
}
