// Package kopsrotate assembles the `kops-rotate` command tree, which drives
// the kOps keyset rotation procedure on a kOps state store.
package kopsrotate

import (
	"fmt"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/satokens"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kops"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/ciliumipsec"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/keysets"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/run"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/status"
	"github.com/kube-rotate/kube-rotate/pkg/cli/version"
	"github.com/kube-rotate/kube-rotate/pkg/display"
)

// DisplayName returns how the binary presents itself given how it was
// called: krew links it as kubectl-kops_rotate, which kubectl runs for
// `kubectl kops-rotate`; called directly it is `kops-rotate`.
func DisplayName(argv0 string) string {
	// Split on both separators: a Windows path reaches us as-is.
	base := argv0[strings.LastIndexAny(argv0, `/\`)+1:]
	base = strings.TrimSuffix(base, ".exe")
	if rest, ok := strings.CutPrefix(base, "kubectl-"); ok {
		return "kubectl " + strings.ReplaceAll(rest, "_", "-")
	}
	return "kops-rotate"
}

// NewCmdKopsRotate returns the root command. argv0 is os.Args[0].
func NewCmdKopsRotate(argv0 string, streams genericiooptions.IOStreams) *cobra.Command {
	name := DisplayName(argv0)
	cmd := &cobra.Command{
		Use:   "kops-rotate",
		Short: "Rotate kOps keysets (CAs, service-account keys) as a staged, gated, resumable procedure",
		Long: templates.LongDesc(fmt.Sprintf(`
			Rotate the keysets of a kOps cluster (the CAs and the service-account signing
			key) following kOps' documented procedure: stage a new keypair, roll the
			cluster, export the kubeconfig, promote, roll, export, distrust the old
			keypair, roll, export; with a rollback for every stage.

			Built against the kOps %s libraries; reads and writes the kOps state store
			(--state or KOPS_STATE_STORE) directly.`, kops.Version)),
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: name,
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		// The core words the commands it suggests as the user types them.
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			cmd.SetContext(display.WithKopsRotate(cmd.Context(), name))
		},
		Run: func(cmd *cobra.Command, args []string) {
			cmd.Help()
		},
	}
	cluster := &clusterflags.Flags{}
	cluster.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(status.NewCmdStatus(name, cluster, streams))
	cmd.AddCommand(keysets.NewCmds(name, cluster, streams)...)
	cmd.AddCommand(run.NewCmdRun(name, cluster, streams))
	cmd.AddCommand(satokens.NewCmd(name, streams))
	cmd.AddCommand(ciliumipsec.NewCmd(name, cluster, streams))
	cmd.AddCommand(encryptionconfig.NewCmd(name, cluster, streams))
	cmd.AddCommand(version.NewCmdVersion(name, streams))
	return cmd
}
