// Package kopstest builds kOps state stores for tests: a cluster
// config and keysets with a primary each, as `kops update cluster` leaves
// them, written through the kOps libraries.
package kopstest

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"testing"
	"time"

	"k8s.io/kops/pkg/apis/kops"
	"k8s.io/kops/pkg/pki"
	"k8s.io/kops/upup/pkg/fi"
	"k8s.io/kops/util/pkg/vfs"
)

// ClusterName is the cluster the stores hold.
const ClusterName = "test.example.com"

// Seed writes a cluster into the state store at base and one keyset with a
// primary keypair per name.
func Seed(t testing.TB, base string, vctx *vfs.VFSContext, keysets ...string) {
	t.Helper()
	ctx := context.Background()
	cfg := []byte("apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: " + ClusterName + "\nspec: {}\n")
	p, err := vctx.BuildVfsPath(base + "/" + ClusterName + "/config")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(ctx, bytes.NewReader(cfg), nil); err != nil {
		t.Fatal(err)
	}
	pkiPath, err := vctx.BuildVfsPath(base + "/" + ClusterName + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	cluster := &kops.Cluster{}
	cluster.Name = ClusterName
	ks := fi.NewVFSCAStore(cluster, pkiPath)
	for _, name := range keysets {
		key, err := pki.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		serial := pki.BuildPKISerial(time.Now().UnixNano())
		cert, _, _, err := pki.IssueCert(ctx, &pki.IssueCertRequest{Type: "ca", Subject: pkix.Name{CommonName: name}, Serial: serial, PrivateKey: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		set, err := fi.NewKeyset(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := ks.StoreKeyset(ctx, name, set); err != nil {
			t.Fatal(err)
		}
	}
}
