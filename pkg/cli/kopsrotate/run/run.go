// Package run implements `kops-rotate run`: the whole kOps keyset
// rotation, step by step, resuming where it stopped, and stopping where a
// person has to act.
package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	uexec "k8s.io/utils/exec"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// ExitWaiting is the exit code of a run that stopped for a person: not a
// failure; re-run with --done STEP once the printed step is done.
const ExitWaiting = 3

// Options of `kops-rotate run`.
type Options struct {
	Cluster *clusterflags.Flags
	Yes     bool
	// Keysets are the keysets to rotate (all rotatable ones when empty).
	Keysets []string
	// CLI are the kops flags passed through.
	CLI           kops.CLIOptions
	validateCount int32
	Done          string
	ReissueTokens bool
	TokenTimeout  time.Duration
	// Runner runs the kops CLI; nil means kops from PATH.
	Runner kops.Runner
	// KopsVersion reports the kops CLI's version; nil means kops from PATH.
	KopsVersion func(context.Context) (string, error)
	cmd         *cobra.Command
	genericiooptions.IOStreams
}

// kopsFlags are the flags passed through to the kops CLI (and --context,
// for the token check): giving any of them replaces the set the
// rotation's run journaled.
var kopsFlags = []string{"target", "out", "instance-group-roles", "validate-count", "cloudonly", "admin", "user", "auth-plugin", "kubeconfig", "context", "validate-wait"}

// NewCmdRun returns the `run` command.
func NewCmdRun(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Cluster: cluster, TokenTimeout: time.Minute, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "run [KEYSET...|all] [--yes] [--done STEP]",
		Short: "Drive the whole procedure: stage, update, roll, validate, export, promote, ... distrust, update, roll, validate, export; stopping where a person acts",
		Long: templates.LongDesc(fmt.Sprintf(`
			Run kOps' keyset rotation procedure from where it stands. Keyset steps use the
			kOps libraries; update, rolling-update, validate and export run the kops CLI
			found on PATH, which must be the kops version that last updated the cluster
			(its kops-version.txt). After every rolling update, kops validate cluster --wait
			must pass before the next stage.

			Some steps only a person can do, and run stops there with exit code %d after
			printing exactly what to do: hand the kubeconfig's new certificate-authority-data
			to the cluster's other API clients (after the stage) and new admin credentials to
			their holders (after the promote), when kubernetes-ca is rotated; apply the
			Terraform kops wrote, with --target terraform; and, when service-account is
			rotated, the legacy service-account token Secrets that stop working at the
			distrust (listed with the cluster's kubeconfig; --reissue-tokens issues them
			again with the new key). Re-run with --done STEP once that step is done.

			Every finished step is recorded in the state store
			(backups/kops-rotate/state.yaml under the cluster's config base, a path kops
			delete cluster accepts and removes with the cluster), so a run stopped at any
			point resumes at the right step; the kops flags given are recorded too, and a
			re-run without them uses them again. Without --yes it prints the steps it would
			run and changes nothing.`, ExitWaiting)),
		Example: templates.Examples(fmt.Sprintf(`
			# What would run next
			%[1]s run --name k8s.example.com --state s3://kops-state

			# Run it (re-run the same command after any failure to resume)
			%[1]s run --yes

			# It stopped (exit code 3) for the new CA data to be handed out; that is done
			%[1]s run --yes --done distribute-ca-after-stage

			# Rotate the service-account signing key only, reissuing legacy token Secrets
			%[1]s run service-account --yes --reissue-tokens --kubeconfig ~/.kube/k8s.example.com

			# A Terraform-managed cluster: kops writes Terraform, a person applies it
			%[1]s run --yes --target terraform --out ./terraform

			# Roll the control plane only, validating twice after each node
			%[1]s run --yes --instance-group-roles control-plane --validate-count 2`, name)),
		Run: func(cmd *cobra.Command, args []string) {
			o.Keysets = args
			o.cmd = cmd
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Yes, "yes", false, "Run the steps (default: print them).")
	f.StringVar(&o.Done, "done", "", "The person's step the last run stopped at is done (the step name it printed).")
	f.BoolVar(&o.ReissueTokens, "reissue-tokens", false, "Reissue the legacy service-account token Secrets the distrust would break (once the new key signs), instead of stopping for a person.")
	f.DurationVar(&o.TokenTimeout, "token-timeout", o.TokenTimeout, "How long to wait for each reissued token.")
	f.StringVar(&o.CLI.Context, "context", "", "The kubeconfig context of the cluster, for the service-account tokens (default: the cluster name, as kops export kubecfg names it).")
	f.StringVar(&o.CLI.Target, "target", "", "kops update cluster --target: direct (default) or terraform (kops writes Terraform to --out; a person applies it).")
	f.StringVar(&o.CLI.Out, "out", "", "kops update cluster --out: the Terraform directory, with --target terraform.")
	f.StringSliceVar(&o.CLI.InstanceGroupRoles, "instance-group-roles", nil, "kops rolling-update cluster --instance-group-roles (apiserver, bastion, control-plane, node).")
	f.Int32Var(&o.validateCount, "validate-count", 0, "kops rolling-update cluster --validate-count.")
	f.BoolVar(&o.CLI.CloudOnly, "cloudonly", false, "kops rolling-update cluster --cloudonly (no drain, no validation: downtime).")
	f.DurationVar(&o.CLI.Admin, "admin", 0, "kops export kubecfg --admin lifetime after the promote (default kOps', 18h).")
	f.StringVar(&o.CLI.User, "user", "", "kops export kubecfg --user: an existing kubeconfig user instead of the admin credential.")
	f.BoolVar(&o.CLI.AuthPlugin, "auth-plugin", false, "kops export kubecfg --auth-plugin.")
	f.StringVar(&o.CLI.Kubeconfig, "kubeconfig", "", "The kubeconfig kops export kubecfg writes and kops validate cluster and the token check read (default: $KUBECONFIG or ~/.kube/config).")
	f.DurationVar(&o.CLI.ValidateWait, "validate-wait", 0, fmt.Sprintf("kops validate cluster --wait after each rolling update (default %s).", kops.DefaultValidateWait))
	return cmd
}

// Run drives the procedure.
func (o *Options) Run(ctx context.Context) error {
	set := false
	if o.cmd != nil {
		for _, name := range kopsFlags {
			set = set || o.cmd.Flags().Changed(name)
		}
		if o.cmd.Flags().Changed("validate-count") {
			o.CLI.ValidateCount = &o.validateCount
		}
	}
	if set {
		if err := o.CLI.Validate(); err != nil {
			return err
		}
	}
	s, err := o.Cluster.Open(ctx)
	if err != nil {
		return err
	}
	s.Selected = o.Keysets
	runner, version := o.Runner, o.KopsVersion
	if runner == nil {
		runner = kops.ExecRunner(o.Out, o.ErrOut)
	}
	if version == nil {
		version = kops.ExecKopsVersion
	}
	ro := kops.RunOptions{Yes: o.Yes, Runner: runner, Out: o.Out, CLI: o.CLI, CLISet: set, Done: o.Done,
		ReissueTokens: o.ReissueTokens, TokenTimeout: o.TokenTimeout, KopsVersion: version, KubeClient: o.kubeClient(s.Cluster)}
	err = s.Run(ctx, ro)
	var werr *procedure.WaitError
	if errors.As(err, &werr) {
		fmt.Fprintf(o.Out, "\n%s\n", werr.Message)
		return uexec.CodeExitError{Err: fmt.Errorf("stopped for a person at step %s (exit code %d): re-run with --done %s once it is done", werr.Step, ExitWaiting, werr.Step), Code: ExitWaiting}
	}
	return err
}

// kubeClient opens the cluster with a kubeconfig (the run's --kubeconfig,
// or the one its journal holds) and the cluster's context.
func (o *Options) kubeClient(cluster string) func(context.Context, string, string) (kubernetes.Interface, string, error) {
	return func(_ context.Context, kubeconfig, kctx string) (kubernetes.Interface, string, error) {
		cf := genericclioptions.NewConfigFlags(false)
		if kctx == "" {
			kctx = cluster
		}
		*cf.KubeConfig, *cf.Context = kubeconfig, kctx
		where := "context " + kctx
		if kubeconfig != "" {
			where = "kubeconfig " + kubeconfig + ", " + where
		}
		cfg, err := cf.ToRESTConfig()
		if err != nil {
			return nil, where, err
		}
		kc, err := kubernetes.NewForConfig(cfg)
		return kc, where, err
	}
}
