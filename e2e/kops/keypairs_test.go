//go:build e2e

package kops

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An operator re-ran `kops create keypair all` after a partial failure:
// kubernetes-ca has two staged keypairs. kops-rotate promotes the newest;
// its rollback must put back the keypair that was primary, as kOps itself
// then reports it, not the other staged one.
func TestRollbackAfterTwoStagedKeypairs(t *testing.T) {
	e := setup(t)
	original := primaryOf(e.keypairs(false)["kubernetes-ca"])
	e.kopsOK(nil, "create", "keypair", "kubernetes-ca", "--name", clusterName, "--state", e.state)
	e.kopsOK(nil, "create", "keypair", "kubernetes-ca", "--name", clusterName, "--state", e.state)
	if n := len(e.keypairs(false)["kubernetes-ca"]); n != 3 {
		t.Fatalf("kubernetes-ca has %d keypairs, want the primary and two staged", n)
	}
	if _, err := e.rotate("", "promote", "kubernetes-ca"); err != nil {
		t.Fatal(err)
	}
	if got := primaryOf(e.keypairs(false)["kubernetes-ca"]); got == original {
		t.Fatal("promote left the primary in place")
	}
	if _, err := e.rotate("", "rollback", "kubernetes-ca"); err != nil {
		t.Fatal(err)
	}
	if got := primaryOf(e.keypairs(false)["kubernetes-ca"]); got != original {
		t.Errorf("after rollback kops says the primary is %s, want the previous primary %s", got, original)
	}
}

// A certificate added for trust only (`kops create keypair --cert`, no
// private key) leaves an idle keyset idle, and a whole rotation never
// distrusts it: kOps still lists it as trusted at the end.
func TestTrustOnlyCertificateIsNeverDistrusted(t *testing.T) {
	e := setup(t)
	certFile := filepath.Join(e.dir, "extra.crt")
	writeCA(t, certFile, "extra-ca")
	e.kopsOK(nil, "create", "keypair", "kubernetes-ca", "--cert", certFile, "--name", clusterName, "--state", e.state)
	var extraID string
	for _, k := range e.keypairs(false)["kubernetes-ca"] {
		if !k.IsPrimary {
			extraID = k.ID
		}
	}
	if extraID == "" {
		t.Fatal("kops lists no extra keypair in kubernetes-ca")
	}

	out, err := e.rotate("", "status", "kubernetes-ca", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Stage   string
		Keysets []struct {
			Name      string
			Stage     string
			TrustOnly []struct {
				ID      string
				Created time.Time
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Stage != "idle" || len(st.Keysets) != 1 || len(st.Keysets[0].TrustOnly) != 1 || st.Keysets[0].TrustOnly[0].ID != extraID {
		t.Fatalf("status with a trust-only certificate: %s", out)
	}
	if c := st.Keysets[0].TrustOnly[0].Created; c.Year() < 2020 {
		t.Errorf("the trust-only certificate's creation time is %s: read from its id, not its certificate", c)
	}

	// A whole rotation of the keyset (distrust --exported: the kubeconfig
	// export is not part of this test).
	for _, args := range [][]string{{"stage", "kubernetes-ca"}, {"promote", "kubernetes-ca"}, {"distrust", "kubernetes-ca", "--exported"}} {
		if _, err := e.rotate("", args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range e.keypairs(true)["kubernetes-ca"] {
		if k.ID == extraID && k.DistrustTimestamp != "" {
			t.Errorf("the rotation distrusted the trust-only certificate %s", extraID)
		}
	}
}

// writeCA writes a self-signed CA certificate (PEM) to path.
func writeCA(t *testing.T, path, name string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
