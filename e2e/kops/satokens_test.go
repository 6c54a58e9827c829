//go:build e2e

package kops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// A service-account rotation lists the cluster's legacy service-account
// token Secrets before the distrust, which breaks them: with a legacy
// token in a namespace of this test's own on the local control plane
// ($KUBECONFIG, as make e2e sets it), run --yes stops there (exit code 3)
// naming it, without its token; --done service-account-tokens finishes
// the rotation. (Reissuing is cluster-wide, and other packages own tokens
// in this cluster: pkg/cluster/satokens' e2e checks it.)
func TestRunStopsAtLegacyServiceAccountTokens(t *testing.T) {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG is not set: run the suite with `make e2e` (its local control plane), or bin/e2e-cluster run -- go test ...")
	}
	raw, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatalf("KUBECONFIG %s: %v", kubeconfig, err)
	}
	kctx := raw.CurrentContext
	if kctx == "" {
		t.Fatalf("KUBECONFIG %s has no current context", kubeconfig)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	ns := "kops-rotate-e2e-" + hex.EncodeToString(suffix)
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kc.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	})
	if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "deployer"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var token []byte
	for deadline := time.Now().Add(time.Minute); len(token) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tokens controller did not issue deployer-token within a minute")
		}
		s, err := kc.CoreV1().Secrets(ns).Get(ctx, "deployer-token", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		token = s.Data[corev1.ServiceAccountTokenKey]
	}

	e := setup(t)
	original := e.primaries()
	noToken := func(r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, string(token)) {
			t.Fatal("kops-rotate printed the token of deployer-token")
		}
	}
	r := e.run("run", "service-account", "--yes", "--kubeconfig", kubeconfig, "--context", kctx)
	noToken(r)
	if r.code != 3 || r.waitingAt() != "service-account-tokens" {
		t.Fatalf("run service-account --yes: exit code %d, want 3 at service-account-tokens\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ref := "secret/deployer-token -n " + ns; !strings.Contains(r.stdout, ref+" (serviceaccount deployer)") {
		t.Errorf("stdout does not list %s:\n%s", ref, r.stdout)
	}
	// Only service-account was rotated: no CA or credential hand-out.
	calls := e.calls()
	want := []string{
		"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s --kubeconfig " + kubeconfig, "export kubecfg --kubeconfig " + kubeconfig,
		"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s --kubeconfig " + kubeconfig, "export kubecfg --admin --kubeconfig " + kubeconfig,
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("kops calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	e.checkStatusIsKops("promoted", original, "service-account")

	r = e.run("run", "service-account", "--yes", "--done", "service-account-tokens")
	noToken(r)
	if r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Fatalf("--done service-account-tokens: exit code %d\n%s", r.code, r.stderr)
	}
	e.checkStatusIsKops("complete", original, "service-account")
	// The token was not touched.
	s, err := kc.CoreV1().Secrets(ns).Get(ctx, "deployer-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data[corev1.ServiceAccountTokenKey]) != string(token) {
		t.Error("the run changed deployer-token without --reissue-tokens")
	}
}
