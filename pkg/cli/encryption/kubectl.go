package encryption

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/metadata"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/etcdstore"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	rot "github.com/kube-rotate/kube-rotate/pkg/rotators/encryption"
)

// JournalName is the ConfigMap that journals a self-managed control
// plane's rotation.
const JournalName = "kube-rotate-encryption"

// FileTarget is `kubectl rotate encryption`: the configuration is a file
// on this machine (the one kube-apiserver's --encryption-provider-config
// names, or the copy the operator ships to every control-plane node); the
// journal is a ConfigMap in the cluster.
type FileTarget struct {
	Factory          cmdutil.Factory
	Config           string
	JournalNamespace string
	// Etcd, when its endpoints are set, is read to count what is stored
	// under each key (status, and the retire's check).
	Etcd etcdstore.Options
}

// NewCmdEncryption returns `kubectl rotate encryption`.
func NewCmdEncryption(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	t := &FileTarget{Factory: f}
	return NewCmd("encryption", "Rotate the keys of a self-managed control plane's EncryptionConfiguration (stage, promote, rewrite, retire)",
		"kubectl rotate", "--config /etc/kubernetes/enc/enc.yaml", t, streams)
}

// AddFlags implements Target.
func (t *FileTarget) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&t.Config, "config", "", "The EncryptionConfiguration file kube-apiserver's --encryption-provider-config names (or the copy you ship to every control-plane node).")
	fs.StringVar(&t.JournalNamespace, "journal-namespace", "kube-system", "Namespace of the journal ConfigMap "+JournalName+".")
	fs.StringSliceVar(&t.Etcd.Endpoints, "etcd-endpoints", nil, "etcd endpoints kube-apiserver stores in (e.g. https://127.0.0.1:2379): status then counts the objects under each key, and the retire waits until none is under the old keys.")
	fs.StringVar(&t.Etcd.CACert, "etcd-cacert", "", "etcd CA certificate (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).")
	fs.StringVar(&t.Etcd.Cert, "etcd-cert", "", "etcd client certificate (kubeadm: /etc/kubernetes/pki/apiserver-etcd-client.crt).")
	fs.StringVar(&t.Etcd.Key, "etcd-key", "", "etcd client key (kubeadm: /etc/kubernetes/pki/apiserver-etcd-client.key).")
	fs.StringVar(&t.Etcd.Prefix, "etcd-prefix", "/registry", "kube-apiserver's --etcd-prefix.")
}

// AddActFlag implements Target: kubectl's --dry-run.
func (t *FileTarget) AddActFlag(cmd *cobra.Command) { cmdutil.AddDryRunFlag(cmd) }

// Act implements Target.
func (t *FileTarget) Act(cmd *cobra.Command) (bool, error) {
	dr, err := cmdutil.GetDryRunStrategy(cmd)
	if err != nil {
		return false, err
	}
	if dr == cmdutil.DryRunServer {
		return false, errors.New("--dry-run=server is not supported here: the configuration is a file; use --dry-run=client")
	}
	return dr == cmdutil.DryRunNone, nil
}

// Options implements Target.
func (t *FileTarget) Options(ctx context.Context, act bool, out io.Writer) (*rot.Options, error) {
	if t.Config == "" {
		return nil, errors.New("no configuration: pass --config FILE, the EncryptionConfiguration kube-apiserver's --encryption-provider-config names")
	}
	var stored func(ctx context.Context, resources, prefixes []string) (map[string]int64, error)
	if len(t.Etcd.Endpoints) > 0 {
		if (t.Etcd.Cert == "") != (t.Etcd.Key == "") {
			return nil, errors.New("--etcd-cert and --etcd-key go together: pass both, or neither")
		}
		stored = func(ctx context.Context, resources, prefixes []string) (map[string]int64, error) {
			c, err := etcdstore.Open(t.Etcd)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return etcdstore.Count(ctx, c, t.Etcd.Prefix, resources, prefixes)
		}
	}
	kc, err := t.Factory.KubernetesClientSet()
	if err != nil {
		return nil, err
	}
	cfg, err := t.Factory.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &rot.Options{
		Stored:  stored,
		Source:  &rot.File{Path: t.Config},
		Journal: &procedure.ConfigMapJournal{Client: kc, Namespace: t.JournalNamespace, Name: JournalName},
		Kube:    kc, Metadata: md,
		Distribute: fmt.Sprintf("copy %s to the path --encryption-provider-config names on every control-plane node (kube-apiserver with --encryption-provider-config-automatic-reload applies it within about a minute; without it, restart kube-apiserver), then re-run", t.Config),
		Command:    "kubectl rotate encryption %s --config " + t.Config,
		Out:        out,
	}, nil
}
