//go:build e2e

package kops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	kopsversion "k8s.io/kops"
)

// TestRealUpdateOnAMetalCluster runs `kops update cluster --yes` for real
// at every stage of a rotation: kOps' bare-metal provider
// (KOPS_FEATURE_FLAGS=Metal) needs no cloud to apply, so kops itself reads
// the keysets kops-rotate staged, promoted and distrusted and writes the
// cluster's state from them (kops-version.txt included, which kops-rotate's
// version check then reads). Rolling update and validate still need
// machines, and stay played by the wrapper.
//
// Offline, kops finds the hashes of its own assets under KOPS_BASE_URL
// (pkg/assets/builder.go findHash: "<url>.sha256"), and takes its version
// from that URL's last element (kopsassets.go), so the directory is named
// after the version.
func TestRealUpdateOnAMetalCluster(t *testing.T) {
	metalAssets(t)
	e := newEnv(t)
	e.createCluster(nil, func(spec string) string {
		// Bare metal has no load balancer to name the API: kops update
		// needs its name (masterPublicName in kops.k8s.io/v1alpha2).
		return strings.Replace(spec, "\nspec:\n", "\nspec:\n  masterPublicName: api."+clusterName+"\n", 1)
	}, "--cloud", "metal", "--zones", "main", "--networking", "cni", "--dns", "none")
	if spec := e.kopsOK(nil, "get", "cluster", clusterName, "--state", e.state, "-o", "yaml"); !strings.Contains(spec, "masterPublicName: api."+clusterName) {
		t.Fatalf("the registered spec has no masterPublicName:\n%s", spec)
	}
	for _, ks := range []string{"kubernetes-ca", "service-account"} {
		e.kopsOK(nil, "create", "keypair", ks, "--primary", "--name", clusterName, "--state", e.state)
	}
	updated := filepath.Join(e.dir, "updated.log")
	kubeconfig := filepath.Join(e.dir, "kubeconfig")
	// update runs the real kops (into the test's own kubeconfig) and logs
	// each time it succeeded.
	e.installKops(`if [ "$1" = update ]; then KUBECONFIG=` + kubeconfig + ` ` + e.kops + ` "$@" || exit 1; echo ok >> ` + updated + `; fi`)
	marker := filepath.Join(e.dir, "state", clusterName, "kops-version.txt")
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("kops-version.txt exists before any update: %v", err)
	}
	before := e.primaries()

	r, stops := e.runThrough("kubernetes-ca", "service-account")
	if want := []string{"distribute-ca-after-stage", "distribute-credentials-after-promote", "service-account-tokens"}; strings.Join(stops, ",") != strings.Join(want, ",") {
		t.Errorf("stopped for a person at %v, want %v", stops, want)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Fatalf("run: exit code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	log, err := os.ReadFile(updated)
	if err != nil || strings.Count(string(log), "ok") != 3 {
		t.Errorf("the real kops update cluster succeeded %d times, want 3 (after stage, promote, distrust): %v", strings.Count(string(log), "ok"), err)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != kopsversion.Version {
		t.Errorf("kops-version.txt written by the real update: %q %v, want %s", b, err, kopsversion.Version)
	}
	after := e.primaries()
	for _, ks := range []string{"kubernetes-ca", "service-account"} {
		if after[ks] == before[ks] || after[ks] == "" {
			t.Errorf("%s: primary %s before, %s after the rotation", ks, before[ks], after[ks])
		}
		var distrusted bool
		for _, k := range e.keypairs(true)[ks] {
			if k.ID == before[ks] && k.DistrustTimestamp != "" {
				distrusted = true
			}
		}
		if !distrusted {
			t.Errorf("%s: the old primary %s is not distrusted in kops get keypairs --distrusted", ks, before[ks])
		}
	}
	// The kubeconfig the real update and export wrote trusts the new CA.
	if b, err := os.ReadFile(kubeconfig); err != nil || !strings.Contains(string(b), "certificate-authority-data") {
		t.Errorf("kubeconfig written by the real kops: %v", err)
	}
}

// metalAssets points kops at offline asset hashes for a metal cluster:
// KOPS_FEATURE_FLAGS=Metal and KOPS_BASE_URL at a directory named after
// the version holding the .sha256 files kops looks for.
func metalAssets(t *testing.T) {
	t.Helper()
	base := filepath.Join(t.TempDir(), kopsversion.Version)
	for _, arch := range []string{"amd64", "arm64"} {
		for _, f := range []string{"linux/" + arch + "/nodeup", "linux/" + arch + "/protokube",
			"images/kops-utils-cp-" + arch + ".tar.gz", "images/kops-controller-" + arch + ".tar.gz", "images/kops-channels-" + arch + ".tar.gz",
			"images/dns-controller-" + arch + ".tar.gz", "images/kube-apiserver-healthcheck-" + arch + ".tar.gz"} {
			p := filepath.Join(base, f+".sha256")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("KOPS_FEATURE_FLAGS", "Metal")
	t.Setenv("KOPS_BASE_URL", "file://"+base+"/")
}
