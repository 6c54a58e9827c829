// Package kops rotates the keysets of a kOps cluster (its CAs and the
// service-account signing key) through the kOps libraries, following kOps'
// documented procedure: stage a new keypair, promote it, distrust the old
// one, with a rollback for every stage. The stage of the whole procedure
// is derived from the keysets themselves, so nothing can drift from them.
package kops

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"k8s.io/kops/pkg/apis/kops"
	"k8s.io/kops/pkg/client/simple"
	"k8s.io/kops/pkg/client/simple/vfsclientset"
	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"
)

// Store is one cluster's keystore in a kOps state store.
type Store struct {
	// StateStore is the state store URL (--state / KOPS_STATE_STORE).
	StateStore string
	// Cluster is the cluster name (--name / KOPS_CLUSTER_NAME).
	Cluster string
	// Selected are the keysets the procedure (Run) and its journal work
	// on, as the commands name them ("all" or keyset names); nil is every
	// rotatable keyset. A service-account-only rotation selects
	// service-account.
	Selected []string
	// Validate checks the cluster with `kops validate cluster` for the
	// single promote and distrust commands when the journal has no
	// validation since the stage's rolling update; nil refuses them then.
	Validate func(ctx context.Context) error

	vfsContext *vfs.VFSContext
	clientset  simple.Clientset
	cluster    *kops.Cluster
	hook       hook // tests only
}

// Open finds the cluster in the state store. vfsContext nil means kOps'
// default context (real stores); tests pass vfs.NewTestingVFSContext().
func Open(ctx context.Context, stateStore, cluster string, vfsContext *vfs.VFSContext) (*Store, error) {
	if stateStore == "" {
		return nil, fmt.Errorf("no state store: pass --state or set KOPS_STATE_STORE (for example s3://bucket or file:///path)")
	}
	if cluster == "" {
		return nil, fmt.Errorf("no cluster name: pass --name or set KOPS_CLUSTER_NAME")
	}
	if vfsContext == nil {
		vfsContext = vfs.Context
	}
	base, err := vfsContext.BuildVfsPath(stateStore)
	if err != nil {
		return nil, fmt.Errorf("state store %q: %w", stateStore, err)
	}
	cs := vfsclientset.NewVFSClientset(vfsContext, base)
	c, err := cs.GetCluster(ctx, cluster)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading cluster %q from %s: %w", cluster, stateStore, err)
	}
	if c == nil {
		return nil, fmt.Errorf("cluster %q not found in state store %s: check --name and --state (kops get clusters --state %s)", cluster, stateStore, stateStore)
	}
	return &Store{StateStore: stateStore, Cluster: cluster, vfsContext: vfsContext, clientset: cs, cluster: c}, nil
}

// keystore returns a fresh keystore: kOps' keystore caches keysets (the
// kubernetes-ca in particular), so every step takes a new one.
func (s *Store) keystore() (fi.CAStore, error) {
	ks, err := s.clientset.KeyStore(s.cluster)
	if err != nil {
		return nil, fmt.Errorf("opening the keystore of cluster %s: %w", s.Cluster, err)
	}
	return ks, nil
}

// Rotatable reports whether kOps rotates a keyset: the service-account
// key and every CA (a name containing "-ca"), as `kops create keypair`.
func Rotatable(name string) bool {
	return name == "service-account" || strings.Contains(name, "-ca")
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
