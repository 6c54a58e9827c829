// Package satokens implements `kops-rotate service-account-tokens`: the
// legacy service-account token Secrets a service-account keyset rotation
// breaks at distrust, read with the cluster's kubeconfig, and their
// reissue once the new key signs.
package satokens

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/satokens"
)

// Options of `kops-rotate service-account-tokens`.
type Options struct {
	Config  *genericclioptions.ConfigFlags
	Reissue bool
	Timeout time.Duration
	// Name is how the tool is run, for the commands it suggests.
	Name string
	genericiooptions.IOStreams
}

// NewCmd returns the `service-account-tokens` command.
func NewCmd(name string, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Config: genericclioptions.NewConfigFlags(false), Timeout: time.Minute, Name: name, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "service-account-tokens [--reissue]",
		DisableFlagsInUseLine: true,
		Short:                 "List the legacy service-account token Secrets a service-account key rotation breaks, and reissue them",
		Long: templates.LongDesc(`
			Legacy service-account token Secrets (type kubernetes.io/service-account-token)
			hold tokens signed with the cluster's service-account key. When a rotation of the
			service-account keyset distrusts the old key, those tokens stop working. Once
			the new key signs (its promote rolled out), --reissue removes each token so that
			kube-controller-manager's tokens controller issues a new one, and waits for it.
			Token values are never printed.`),
		Example: templates.Examples(fmt.Sprintf(`
			# Which token Secrets the rotation will break (the cluster's kubeconfig)
			%[1]s service-account-tokens --kubeconfig ~/.kube/k8s.example.com

			# After promote service-account and its rolling update: issue them again
			%[1]s service-account-tokens --kubeconfig ~/.kube/k8s.example.com --reissue`, name)),
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().StringVar(o.Config.KubeConfig, "kubeconfig", "", "Path to the kubeconfig of the kOps cluster (default: $KUBECONFIG or ~/.kube/config).")
	cmd.Flags().StringVar(o.Config.Context, "context", "", "The kubeconfig context of the kOps cluster.")
	cmd.Flags().BoolVar(&o.Reissue, "reissue", false, "Remove each token so that the tokens controller issues a new one with the current key, and wait for it.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each token to be issued again.")
	return cmd
}

// Run lists the tokens, and reissues them with --reissue.
func (o *Options) Run(ctx context.Context) error {
	cfg, err := o.Config.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("the cluster's kubeconfig: %w", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	toks, err := satokens.List(ctx, kc, "")
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		fmt.Fprintln(o.Out, "No legacy service-account token Secrets: a service-account key rotation breaks none.")
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(tw, "NAMESPACE\tSECRET\tSERVICEACCOUNT\tISSUED")
	for _, t := range toks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", t.Namespace, t.Name, t.ServiceAccount, t.Issued)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.Reissue {
		fmt.Fprintf(o.Out, "\nThese %d token(s) are signed with the service-account key: they stop working when the old key is distrusted.\n"+
			"Once the new key signs (after `%s promote service-account` is rolled out), issue them again:\n  %s service-account-tokens --reissue\n",
			len(toks), o.Name, o.Name)
		return nil
	}
	for _, t := range toks {
		if err := satokens.Reissue(ctx, kc, t, o.Timeout); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "%s: token issued again\n", t.Ref())
	}
	return nil
}
