package kops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"
	"k8s.io/kops/util/pkg/vfs/acls"

	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/encryption"
)

// EncryptionConfigSecret is the state-store secret `kops create secret
// encryptionconfig` writes (cmd/kops/create_secret_encryptionconfig.go)
// and nodeup copies, byte for byte, to the control plane's
// /srv/kubernetes/kube-apiserver/encryptionconfig.yaml
// (nodeup/pkg/model/kube_apiserver.go); the hash of its data is in the
// instances' nodeup configuration, so a change needs kops update cluster
// and a control-plane rolling update.
const EncryptionConfigSecret = "encryptionconfig"

// EncryptionConfig reads the cluster's encryption configuration from the
// state store through kOps' secret store, and parses it.
func (s *Store) EncryptionConfig(ctx context.Context) ([]byte, *encryptionconfig.Config, error) {
	ss, err := s.clientset.SecretStore(s.cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the secret store of cluster %s: %w", s.Cluster, err)
	}
	sec, err := ss.FindSecret(EncryptionConfigSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("reading secret %s of cluster %s: %w", EncryptionConfigSecret, s.Cluster, err)
	}
	if sec == nil {
		return nil, nil, fmt.Errorf("cluster %s has no %s secret: create one with `kops create secret encryptionconfig -f FILE` and set spec.encryptionConfig: true", s.Cluster, EncryptionConfigSecret)
	}
	cfg, err := encryptionconfig.Parse(sec.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("secret %s of cluster %s: %w", EncryptionConfigSecret, s.Cluster, err)
	}
	return sec.Data, cfg, nil
}

// ReplaceEncryptionConfig writes the cluster's encryption configuration
// as `kops create secret encryptionconfig --force` does, if the secret
// still holds was (kOps' vfs has no compare-and-swap: it is read again
// and compared first, as the rotation journal is).
func (s *Store) ReplaceEncryptionConfig(ctx context.Context, was, data []byte) error {
	cur, _, err := s.EncryptionConfig(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, was) {
		return fmt.Errorf("secret %s of cluster %s changed since it was read: nothing was written; re-run to start from what it holds now", EncryptionConfigSecret, s.Cluster)
	}
	ss, err := s.clientset.SecretStore(s.cluster)
	if err != nil {
		return fmt.Errorf("opening the secret store of cluster %s: %w", s.Cluster, err)
	}
	if _, err := ss.ReplaceSecret(EncryptionConfigSecret, &fi.Secret{Data: data}); err != nil {
		return fmt.Errorf("writing secret %s of cluster %s: %w", EncryptionConfigSecret, s.Cluster, err)
	}
	return nil
}

// EncryptionSource is the cluster's encryptionconfig secret as an
// encryption.Source. The document a retire replaces (it holds the retired
// keys) is kept at <configBase>/backups/kops-rotate/encryptionconfig-retired.yaml
// (a prefix kops delete cluster accepts and deletes with the cluster, as
// the journal's; see journalPath), written with the ACL kOps gives its own
// state-store files.
func (s *Store) EncryptionSource() (encryption.Source, error) {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return &encryptionSource{s: s, kept: base.Join("backups", "kops-rotate", "encryptionconfig-retired.yaml")}, nil
}

// EncryptionJournal is the journal of the cluster's encryption key
// rotation: <configBase>/backups/kops-rotate/encryption.yaml, with the
// keyset journal's precondition.
func (s *Store) EncryptionJournal() (*Journal, error) {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	return &Journal{Path: base.Join("backups", "kops-rotate", "encryption.yaml"), Cluster: s.cluster}, nil
}

type encryptionSource struct {
	s    *Store
	kept vfs.Path
}

func (e *encryptionSource) String() string {
	return "secret " + EncryptionConfigSecret + " of cluster " + e.s.Cluster
}

func (e *encryptionSource) KeptAt() string { return e.kept.Path() }

func (e *encryptionSource) Read(ctx context.Context) ([]byte, error) {
	b, _, err := e.s.EncryptionConfig(ctx)
	return b, err
}

func (e *encryptionSource) Write(ctx context.Context, was, data []byte) error {
	return e.s.ReplaceEncryptionConfig(ctx, was, data)
}

func (e *encryptionSource) Keep(ctx context.Context, data []byte) error {
	acl, err := acls.GetACL(ctx, e.kept, e.s.cluster)
	if err != nil {
		return fmt.Errorf("ACL for %s: %w", e.kept, err)
	}
	if err := e.kept.WriteFile(ctx, bytes.NewReader(data), acl); err != nil {
		return fmt.Errorf("keeping the retired keys in %s: %w", e.kept, err)
	}
	return nil
}

func (e *encryptionSource) Kept(ctx context.Context) ([]byte, error) {
	return read(ctx, e.kept)
}

func (e *encryptionSource) Drop(ctx context.Context) error {
	if err := e.kept.Remove(ctx); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the retired keys %s: %w", e.kept, err)
	}
	return nil
}

// EncryptionRollout is how a written encryptionconfig reaches every
// kube-apiserver: kops update cluster --yes (the secret's hash is in the
// control plane's nodeup configuration, so its instances need an update),
// then a rolling update of the control plane, whose new instances get the
// file from nodeup. run runs them (nil: they are only described).
func (s *Store) EncryptionRollout(run Runner, o CLIOptions) func(after string) []encryption.RolloutStep {
	target := []string{"--name", s.Cluster, "--state", s.StateStore}
	roles := o
	roles.InstanceGroupRoles = []string{"control-plane"}
	return func(after string) []encryption.RolloutStep {
		var steps []encryption.RolloutStep
		for _, cmd := range []struct{ name, step string }{{"update-after-" + after, StepUpdate1}, {"roll-after-" + after, StepRoll1}} {
			args := append(roles.Args(cmd.step), target...)
			steps = append(steps, encryption.RolloutStep{Name: cmd.name, What: "kops " + strings.Join(args, " "),
				Do: func(ctx context.Context) error {
					if run == nil {
						return fmt.Errorf("no kops runner")
					}
					return run(ctx, args)
				}})
		}
		return steps
	}
}
