//go:build e2e

// Package e2e holds the end-to-end suite. It runs against whatever cluster
// KUBECONFIG points at: the project's local control plane (make e2e) or a
// kind cluster (the e2e-kind GitHub workflow).
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	restConfig *rest.Config
	client     kubernetes.Interface
)

func TestMain(m *testing.M) {
	// The test binary doubles as the hooks of rotation plans (see
	// plan_postgres_test.go): E2E_HOOK names the hook to play.
	if hook := os.Getenv("E2E_HOOK"); hook != "" {
		os.Exit(runE2EHook(hook))
	}
	if os.Getenv("KUBECONFIG") == "" {
		fmt.Fprintln(os.Stderr, "e2e: KUBECONFIG is not set: run `make e2e`, or point KUBECONFIG at a test cluster (`make cluster-up` prints one)")
		os.Exit(2)
	}
	if err := loadTimeoutScale(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(2)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: loading KUBECONFIG: %v\n", err)
		os.Exit(2)
	}
	cfg.QPS, cfg.Burst = 100, 200
	restConfig = cfg
	client = kubernetes.NewForConfigOrDie(cfg)
	code := m.Run()
	stopExternalSecretsOperator()
	os.Exit(code)
}

// clusterName is the identity kube-rotate gives the test cluster: the
// kubeconfig cluster of KUBECONFIG's current context.
func clusterName(t *testing.T) string {
	t.Helper()
	raw, err := clientcmd.NewDefaultClientConfigLoadingRules().Load()
	if err != nil {
		t.Fatalf("loading KUBECONFIG: %v", err)
	}
	c := raw.Contexts[raw.CurrentContext]
	if c == nil || c.Cluster == "" {
		t.Fatalf("KUBECONFIG's current context %q names no cluster", raw.CurrentContext)
	}
	return c.Cluster
}

// newNamespace creates a namespace for one test, waits until pods can be
// created in it (its default ServiceAccount exists) and deletes it when the
// test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-", Labels: map[string]string{"kube-rotate.io/e2e": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: default ServiceAccount never appeared (is kube-controller-manager running?): %v", ns.Name, err)
	}
	return ns.Name
}
