package kops

import (
	"context"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"k8s.io/kops/pkg/pki"
	"k8s.io/kops/util/pkg/vfs"
)

// addKeypair adds a keypair to keyset name as `kops create keypair` does:
// with its private key (staged), or, without one, a certificate for trust
// only (`--cert extra.crt`; fi.Keyset.AddItem gives it an id below the
// primary's). serial nil is a kOps-built serial. It returns the item's id
// and its certificate's NotBefore.
func addKeypair(t *testing.T, s *Store, name string, serial *big.Int, withKey bool) (string, time.Time) {
	t.Helper()
	ctx := context.Background()
	ks, err := s.keystore()
	if err != nil {
		t.Fatal(err)
	}
	set, err := ks.FindKeyset(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if serial == nil {
		serial = pki.BuildPKISerial(time.Now().UnixNano())
	}
	cert, _, _, err := pki.IssueCert(ctx, &pki.IssueCertRequest{Type: "ca", Subject: pkix.Name{CommonName: name, SerialNumber: serial.String()},
		Serial: serial, PrivateKey: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var itemKey *pki.PrivateKey
	if withKey {
		itemKey = key
	}
	it, err := set.AddItem(cert, itemKey, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.StoreKeyset(ctx, name, set); err != nil {
		t.Fatal(err)
	}
	return it.Id, cert.Certificate.NotBefore.UTC()
}

// A certificate added for trust only (no private key) is not a previous
// primary: the keyset stays idle, the procedure never distrusts it, and its
// creation time comes from the certificate, not from its id.
func TestTrustOnlyCertificate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "memfs://trust-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca")
	// Its id (its serial, 4242) would say 1970.
	id, notBefore := addKeypair(t, s, "kubernetes-ca", big.NewInt(4242), false)

	tests := []struct {
		name  string
		step  func() error
		stage Stage
	}{
		{"idle with the extra certificate", func() error { return nil }, StageIdle},
		{"stage", func() error { _, err := s.Stage(ctx, nil); return err }, StageStaged},
		{"promote", func() error { _, err := s.Promote(ctx, nil); return err }, StagePromoted},
		{"distrust", func() error { _, err := s.Distrust(ctx, nil, false); return err }, StageDistrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.step(); err != nil {
				t.Fatal(err)
			}
			sts, err := s.Statuses(ctx, []string{"kubernetes-ca"})
			if err != nil {
				t.Fatal(err)
			}
			st := sts[0]
			if st.Stage != tt.stage {
				t.Errorf("stage %s, want %s (previous %v, trust-only %v)", st.Stage, tt.stage, st.Previous, st.TrustOnly)
			}
			if len(st.TrustOnly) != 1 || st.TrustOnly[0].ID != id || !st.TrustOnly[0].Created.Equal(notBefore) || st.TrustOnly[0].Distrusted != nil {
				t.Errorf("trust-only items %+v, want %s created %s, trusted", st.TrustOnly, id, notBefore)
			}
			for _, p := range append(st.Previous, st.Distrusted...) {
				if p.ID == id {
					t.Errorf("the trust-only certificate is listed as %+v", p)
				}
			}
			if st.Primary.NotAfter == nil || !st.Primary.NotAfter.After(time.Now()) {
				t.Errorf("primary's expiry %v, want the certificate's NotAfter", st.Primary.NotAfter)
			}
		})
	}
}
