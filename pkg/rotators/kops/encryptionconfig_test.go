package kops

import (
	"context"
	"strings"
	"testing"

	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"
)

const encConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc:
      keys:
      - name: k1
        secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYnk=
`

// The encryptionconfig secret is read and written through kOps' secret
// store, as `kops create secret encryptionconfig` keeps it; a write is
// refused when the secret changed since it was read, and a cluster
// without one is told how to create it.
func TestEncryptionConfigSecret(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "memfs://enc-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca")
	if _, _, err := s.EncryptionConfig(ctx); err == nil || !strings.Contains(err.Error(), "kops create secret encryptionconfig -f FILE") {
		t.Fatalf("no secret: %v", err)
	}
	ss, err := s.clientset.SecretStore(s.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.GetOrCreateSecret(ctx, EncryptionConfigSecret, &fi.Secret{Data: []byte(encConfig)}); err != nil {
		t.Fatal(err)
	}
	data, cfg, err := s.EncryptionConfig(ctx)
	if err != nil || string(data) != encConfig || cfg.Providers[0].Keys[0].Name != "k1" {
		t.Fatalf("read: %v", err)
	}
	p := cfg.Providers[0]
	staged, err := cfg.Stage(p, "key-20261202T030000Z", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceEncryptionConfig(ctx, data, staged); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.EncryptionConfig(ctx); string(got) != string(staged) {
		t.Errorf("after the write the secret holds:\n%s", got)
	}
	// Someone else wrote it since `data` was read: refused, unchanged.
	if err := s.ReplaceEncryptionConfig(ctx, data, []byte(encConfig)); err == nil || !strings.Contains(err.Error(), "changed since it was read: nothing was written") {
		t.Errorf("stale write: %v", err)
	}
	if got, _, _ := s.EncryptionConfig(ctx); string(got) != string(staged) {
		t.Error("a refused write changed the secret")
	}
	// A secret that is no EncryptionConfiguration is named.
	if _, err := ss.ReplaceSecret(EncryptionConfigSecret, &fi.Secret{Data: []byte("kind: Secret\n")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EncryptionConfig(ctx); err == nil || !strings.Contains(err.Error(), "secret encryptionconfig of cluster "+clusterName+": kind is \"Secret\"") {
		t.Errorf("bad secret: %v", err)
	}
}
