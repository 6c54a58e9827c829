//go:build e2e

package eso_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/e2e/eso"
)

var (
	externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}
	pushSecrets     = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1alpha1", Resource: "pushsecrets"}
)

// class keeps this test's controller and the e2e package's (which may run
// at the same time on the same cluster) on their own stores.
const class = "kube-rotate-eso-harness"

func suffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRealOperator runs the real ESO controller against the cluster of
// KUBECONFIG: an ExternalSecret synced from a fake ClusterSecretStore, a
// force-sync after the store's value changed, and a PushSecret whose
// pushed value an ExternalSecret reads back.
func TestRealOperator(t *testing.T) {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG is not set: run `make e2e`, or point KUBECONFIG at a test cluster")
	}
	build, err := eso.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := t.Context()

	id := suffix(t)
	ns := "eso-e2e-" + id
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	t0 := time.Now()
	op, err := eso.Start(ctx, eso.Options{Build: build, Kubeconfig: kubeconfig, LogDir: t.TempDir(), Log: testWriter{t}, Namespace: ns, ControllerClass: class})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ESO controller healthy %s after Start (flags: %s)", time.Since(t0).Round(time.Millisecond), strings.Join(op.Args, " "))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ESO controller log (tail):\n%s", op.LogTail(40))
		}
		if err := op.Stop(); err != nil {
			t.Errorf("stopping the controller: %v", err)
		}
	})

	store := "kr-eso-e2e-" + id
	// Run before Stop (cleanups are last-in first-out): ESO's finalizers
	// on ExternalSecrets would otherwise keep the namespace Terminating.
	t.Cleanup(func() {
		t0 := time.Now()
		if err := eso.Cleanup(context.Background(), dyn, ns, 30*time.Second); err != nil {
			t.Errorf("cleaning up ESO objects: %v", err)
		}
		t.Logf("ESO objects of %s deleted in %s", ns, time.Since(t0).Round(time.Millisecond))
		_ = dyn.Resource(eso.ClusterSecretStores).Delete(context.Background(), store, metav1.DeleteOptions{})
	})
	t1 := time.Now()
	if err := eso.FakeStoreOfClass(ctx, dyn, store, class, []eso.FakeData{{Key: "db-pass", Value: "first-value"}}); err != nil {
		t.Fatalf("%v\n%s", err, op.LogTail(20))
	}
	t.Logf("ClusterSecretStore Ready %s after apply", time.Since(t1).Round(time.Millisecond))

	// ExternalSecret → Secret X (creationPolicy Owner, the default).
	t2 := time.Now()
	createES(t, dyn, ns, "db", store, "db", "Owner", "password", "db-pass")
	waitData(t, op, cs, ns, "db", "password", "first-value", time.Minute)
	t.Logf("Secret db synced %s after the ExternalSecret was created", time.Since(t2).Round(time.Millisecond))
	logES(t, dyn, ns, "db")
	logSecretMeta(t, cs, ns, "db")

	// The store's value changes; refreshInterval 1h would not pick it up
	// for an hour: the force-sync annotation does.
	if err := eso.FakeStoreOfClass(ctx, dyn, store, class, []eso.FakeData{{Key: "db-pass", Value: "second-value"}}); err != nil {
		t.Fatal(err)
	}
	// Without a trigger nothing changes: the store is not watched, the
	// refresh is an hour away.
	time.Sleep(2 * time.Second)
	if s, err := cs.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{}); err != nil || string(s.Data["password"]) != "first-value" {
		t.Fatalf("Secret db changed without a force-sync (err %v)", err)
	}
	t3 := time.Now()
	annotate(t, dyn, ns, "db", "force-sync", t3.Format(time.RFC3339Nano))
	waitData(t, op, cs, ns, "db", "password", "second-value", time.Minute)
	t.Logf("Secret db re-synced %s after the force-sync annotation", time.Since(t3).Round(time.Millisecond))
	logES(t, dyn, ns, "db")

	// creationPolicy Merge into a Secret someone else created.
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "merged"},
		StringData: map[string]string{"other": "kept"},
	}, metav1.CreateOptions{FieldManager: "someone-else"}); err != nil {
		t.Fatal(err)
	}
	createES(t, dyn, ns, "merge", store, "merged", "Merge", "password", "db-pass")
	waitData(t, op, cs, ns, "merged", "password", "second-value", time.Minute)
	if s, err := cs.CoreV1().Secrets(ns).Get(ctx, "merged", metav1.GetOptions{}); err != nil || string(s.Data["other"]) != "kept" {
		t.Errorf("Merge lost the Secret's other key (err %v)", err)
	}
	logSecretMeta(t, cs, ns, "merged")

	// PushSecret: a Secret's key pushed to a new remote key of the fake
	// store, then read back by an ExternalSecret.
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "source"},
		StringData: map[string]string{"token": "pushed-value"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t4 := time.Now()
	ps := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
		"metadata": map[string]any{"name": "push", "namespace": ns},
		"spec": map[string]any{
			"refreshInterval": "1h",
			"secretStoreRefs": []any{map[string]any{"name": store, "kind": "ClusterSecretStore"}},
			"selector":        map[string]any{"secret": map[string]any{"name": "source"}},
			"data": []any{map[string]any{"match": map[string]any{
				"secretKey": "token", "remoteRef": map[string]any{"remoteKey": "pushed-" + id}}}},
		},
	}}
	if _, err := dyn.Resource(pushSecrets).Namespace(ns).Create(ctx, ps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, op, dyn, pushSecrets, ns, "push", time.Minute)
	t.Logf("PushSecret Ready %s after creation", time.Since(t4).Round(time.Millisecond))
	logStatus(t, dyn, pushSecrets, ns, "push")
	createES(t, dyn, ns, "pulled", store, "pulled", "Owner", "token", "pushed-"+id)
	waitData(t, op, cs, ns, "pulled", "token", "pushed-value", time.Minute)
	logEvents(t, cs, ns)

	b, err := os.ReadFile(op.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first-value", "second-value", "pushed-value"} {
		if strings.Contains(string(b), v) {
			t.Errorf("the controller log holds a secret value")
		}
	}
	t.Logf("controller log: %d lines", strings.Count(string(b), "\n"))
}

// logEvents logs the Events of namespace (reasons and messages).
func logEvents(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	list, err := cs.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Logf("events: %v", err)
		return
	}
	for _, e := range list.Items {
		t.Logf("event %s %s/%s %s x%d: %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Count, e.Message)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func createES(t *testing.T, dyn dynamic.Interface, ns, name, store, target, policy, secretKey, remoteKey string) {
	t.Helper()
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"refreshInterval": "1h",
			"secretStoreRef":  map[string]any{"name": store, "kind": "ClusterSecretStore"},
			"target":          map[string]any{"name": target, "creationPolicy": policy},
			"data":            []any{map[string]any{"secretKey": secretKey, "remoteRef": map[string]any{"key": remoteKey}}},
		},
	}}
	if _, err := dyn.Resource(externalSecrets).Namespace(ns).Create(t.Context(), es, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ExternalSecret %s: %v", name, err)
	}
}

func annotate(t *testing.T, dyn dynamic.Interface, ns, name, key, value string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if _, err := dyn.Resource(externalSecrets).Namespace(ns).Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotating ExternalSecret %s: %v", name, err)
	}
}

// waitData waits until Secret name's key holds want; it never prints the
// values.
func waitData(t *testing.T, op *eso.Operator, cs kubernetes.Interface, ns, name, key, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	why := ""
	for time.Now().Before(deadline) {
		s, err := cs.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			why = "the Secret does not exist"
		case err != nil:
			why = err.Error()
		case string(s.Data[key]) == want:
			return
		default:
			why = fmt.Sprintf("key %s does not hold the expected value (%d bytes)", key, len(s.Data[key]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Secret %s/%s: %s after %s\ncontroller log:\n%s", ns, name, why, timeout, op.LogTail(20))
}

func waitReady(t *testing.T, op *eso.Operator, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		u, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	logStatus(t, dyn, gvr, ns, name)
	t.Fatalf("%s %s/%s not Ready after %s\ncontroller log:\n%s", gvr.Resource, ns, name, timeout, op.LogTail(20))
}

func logES(t *testing.T, dyn dynamic.Interface, ns, name string) {
	t.Helper()
	logStatus(t, dyn, externalSecrets, ns, name)
}

// logStatus logs an object's status (ESO statuses hold no secret values).
func logStatus(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	u, err := dyn.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Logf("%s %s: %v", gvr.Resource, name, err)
		return
	}
	st, _ := json.Marshal(u.Object["status"])
	t.Logf("%s %s generation %d annotations %v status %s", gvr.Resource, name, u.GetGeneration(), u.GetAnnotations(), st)
}

// logSecretMeta logs what ESO sets on a Secret's metadata: labels,
// annotations, owner references and managedFields managers (with the
// fields they own: key names, never values).
func logSecretMeta(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	s, err := cs.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Logf("Secret %s: %v", name, err)
		return
	}
	var owners []string
	for _, o := range s.OwnerReferences {
		owners = append(owners, fmt.Sprintf("%s/%s controller=%v blockOwnerDeletion=%v", o.Kind, o.Name, o.Controller != nil && *o.Controller, o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion))
	}
	var managers []string
	for _, m := range s.ManagedFields {
		fields := ""
		if m.FieldsV1 != nil {
			fields = string(m.FieldsV1.Raw)
		}
		managers = append(managers, fmt.Sprintf("%s %s %s %s", m.Manager, m.Operation, m.Subresource, fields))
	}
	sort.Strings(managers)
	t.Logf("Secret %s: type %s labels %v annotations %v ownerReferences %v\n  managedFields:\n  %s", name, s.Type, s.Labels, s.Annotations, owners, strings.Join(managers, "\n  "))
}
