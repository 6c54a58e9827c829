//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

var externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// installExternalSecretCRD installs a minimal ExternalSecret CRD (the
// operator itself is played by the test).
func installExternalSecretCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "externalsecrets.external-secrets.io"},
		"spec": map[string]any{
			"group": "external-secrets.io", "scope": "Namespaced",
			"names": map[string]any{"plural": "externalsecrets", "singular": "externalsecret", "kind": "ExternalSecret", "shortNames": []any{"es"}},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(context.Background(), crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("installing the ExternalSecret CRD: %v", err)
	}
	waitFor(t, "the ExternalSecret CRD to be served", time.Minute, func() bool {
		_, err := dyn.Resource(externalSecrets).Namespace("default").List(context.Background(), metav1.ListOptions{})
		return err == nil
	})
}

// TestForceSyncExternalSecret follows seed 001 (Deepdesk): the new value is
// in the secret store; the tool keeps the old one as the back-compat copy,
// triggers the sync, waits for the data to change and restarts consumers.
func TestForceSyncExternalSecret(t *testing.T) {
	dyn := dynamic.NewForConfigOrDie(restConfig)
	installExternalSecretCRD(t, dyn)
	ns := newNamespace(t)
	ctx := context.Background()
	es, err := dyn.Resource(externalSecrets).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": "admin-secrets"},
		"spec":     map[string]any{"refreshInterval": "10m", "target": map[string]any{"name": "admin-secrets"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "admin-secrets", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "admin-secrets", UID: es.GetUID(), Controller: ptr.To(true)}}},
		StringData: map[string]string{"SECRET_KEY": "the-old-account-secret", "OTHER": "unchanged"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deployWith(t, ns, "admin", envKeyFrom("admin-secrets", "SECRET_KEY"))
	deployWith(t, ns, "reads-other", envKeyFrom("admin-secrets", "OTHER"))

	// Without --force-sync the tool refuses to write a Secret the operator owns.
	r := run(t, nil, "secret", "admin-secrets", "-n", ns, "--key", "SECRET_KEY", "--generate", "random:32")
	if r.code == 0 || !strings.Contains(r.stderr, "ExternalSecret admin-secrets") || !strings.Contains(r.stderr, "--force-sync") {
		t.Fatalf("writing an ExternalSecret's Secret: exit %d %s", r.code, r.stderr)
	}

	// The operator: on force-sync, copy the store's new value into the Secret.
	operatorDone := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			cur, err := dyn.Resource(externalSecrets).Namespace(ns).Get(ctx, "admin-secrets", metav1.GetOptions{})
			if err == nil && cur.GetAnnotations()["force-sync"] != "" {
				s, err := client.CoreV1().Secrets(ns).Get(ctx, "admin-secrets", metav1.GetOptions{})
				if err == nil {
					s.Data["SECRET_KEY"] = []byte("the-new-account-secret-from-the-store")
					_, err = client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
				}
				operatorDone <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		operatorDone <- context.DeadlineExceeded
	}()
	otherBefore := getDeployment(t, ns, "reads-other").Generation
	r = mustRun(t, "secret", "admin-secrets", "-n", ns, "--force-sync", "--timeout", "90s")
	if err := <-operatorDone; err != nil {
		t.Fatalf("playing the operator: %v", err)
	}
	s := getSecret(t, ns, "admin-secrets")
	if string(s.Data["SECRET_KEY"]) != "the-new-account-secret-from-the-store" {
		t.Error("the Secret does not hold the store's value")
	}
	if string(getSecret(t, ns, "admin-secrets-previous").Data["SECRET_KEY"]) != "the-old-account-secret" {
		t.Error("the back-compat copy does not hold the old account secret")
	}
	if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Keys] != "SECRET_KEY" {
		t.Errorf("records: %v", s.Annotations)
	}
	if restartedAt(t, ns, "admin") == "" {
		t.Error("deployment/admin was not restarted after the sync")
	}
	if getDeployment(t, ns, "reads-other").Generation != otherBefore {
		t.Error("deployment/reads-other was restarted although OTHER did not change")
	}
	if !strings.Contains(r.stdout, "SECRET_KEY changed by externalsecret/admin-secrets") {
		t.Errorf("output does not say what the sync changed:\n%s", r.stdout)
	}
	assertNoValues(t, "output", r.allOutput(), map[string][]byte{"old": []byte("the-old-account-secret"), "new": []byte("the-new-account-secret-from-the-store")})
}
