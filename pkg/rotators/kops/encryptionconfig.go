package kops

import (
	"bytes"
	"context"
	"fmt"

	"k8s.io/kops/upup/pkg/fi"

	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
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
