// Package clusterflags holds kops-rotate's --name and --state flags, which
// default to kOps' own KOPS_CLUSTER_NAME and KOPS_STATE_STORE.
package clusterflags

import (
	"context"
	"os"

	"github.com/spf13/pflag"

	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Flags name the cluster and its state store.
type Flags struct {
	Name, State string
}

// AddFlags registers --name and --state.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Name, "name", os.Getenv("KOPS_CLUSTER_NAME"), "Name of the cluster (default $KOPS_CLUSTER_NAME).")
	fs.StringVar(&f.State, "state", os.Getenv("KOPS_STATE_STORE"), "kOps state store, e.g. s3://bucket or file:///path (default $KOPS_STATE_STORE).")
}

// Open opens the cluster's keystore.
func (f *Flags) Open(ctx context.Context) (*kops.Store, error) {
	return kops.Open(ctx, f.State, f.Name, nil)
}
