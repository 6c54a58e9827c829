// Package encryptionconfig implements `kops-rotate encryption-config`: the
// graceful rotation of a kOps cluster's encryption-at-rest keys in the
// state store's encryptionconfig secret (what `kops create secret
// encryptionconfig` stores and nodeup places on the control plane), with
// kops update cluster and a control-plane rolling update after every edit.
package encryptionconfig

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/kube-rotate/kube-rotate/pkg/cli/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	rot "github.com/kube-rotate/kube-rotate/pkg/rotators/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Target is the kOps front end of the encryption verbs.
type Target struct {
	Cluster *clusterflags.Flags
	// Kubeconfig and Context reach the cluster's API (default: kops'
	// kubeconfig, context named after the cluster).
	Kubeconfig, Context string
	// Runner runs the kops CLI (nil: kops from PATH).
	Runner kops.Runner
	yes    bool
	errOut io.Writer
}

// NewCmd returns `kops-rotate encryption-config`.
func NewCmd(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) *cobra.Command {
	t := &Target{Cluster: cluster, errOut: streams.ErrOut}
	cmd := encryption.NewCmd("encryption-config", "Rotate the cluster's encryption-at-rest keys (the encryptionconfig secret) gracefully: stage, promote, rewrite, retire",
		name, "--name k8s.example.com --state s3://kops-state --yes", t, streams)
	cmd.Aliases = []string{"encryptionconfig"}
	return cmd
}

// AddFlags implements encryption.Target.
func (t *Target) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&t.Kubeconfig, "kubeconfig", "", "Kubeconfig of the cluster, to see which kube-apiservers applied the configuration and for the rewrite (default: $KUBECONFIG or ~/.kube/config).")
	fs.StringVar(&t.Context, "context", "", "Kubeconfig context of the cluster (default: the cluster name, as kops export kubecfg names it).")
}

// AddActFlag implements encryption.Target: kops' --yes.
func (t *Target) AddActFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&t.yes, "yes", false, "Write the secret and run kops update cluster --yes and the control-plane rolling update (default: print the steps).")
}

// Act implements encryption.Target.
func (t *Target) Act(cmd *cobra.Command) (bool, error) { return t.yes, nil }

// Options implements encryption.Target.
func (t *Target) Options(ctx context.Context, act bool, out io.Writer) (*rot.Options, error) {
	s, err := t.Cluster.Open(ctx)
	if err != nil {
		return nil, err
	}
	src, err := s.EncryptionSource()
	if err != nil {
		return nil, err
	}
	j, err := s.EncryptionJournal()
	if err != nil {
		return nil, err
	}
	kc, md, err := t.clients(s.Cluster)
	if err != nil {
		return nil, err
	}
	runner := t.Runner
	if runner == nil {
		runner = kops.ExecRunner(out, t.errOut)
	}
	if !act {
		runner = func(context.Context, []string) error { return errors.New("internal: kops would run in a dry run") }
	}
	return &rot.Options{
		Source: src, Journal: j, Kube: kc, Metadata: md,
		Rollout:    s.EncryptionRollout(runner, kops.CLIOptions{}),
		Distribute: "check that the control-plane instances were replaced (kops rolling-update cluster --instance-group-roles control-plane) and that nodeup placed the new /srv/kubernetes/kube-apiserver/encryptionconfig.yaml, then re-run",
		Command:    "kops-rotate encryption-config %s --name " + s.Cluster + " --state " + s.StateStore + " --yes",
		Out:        out,
	}, nil
}

func (t *Target) clients(cluster string) (kubernetes.Interface, metadata.Interface, error) {
	cf := genericclioptions.NewConfigFlags(false)
	kctx := t.Context
	if kctx == "" {
		kctx = cluster
	}
	*cf.KubeConfig, *cf.Context = t.Kubeconfig, kctx
	cfg, err := cf.ToRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	// kubectl rotate's limits (client-go's QPS 5 makes the rewrite crawl).
	cfg.QPS, cfg.Burst = kube.DefaultQPS, kube.DefaultBurst
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	return kc, md, err
}
