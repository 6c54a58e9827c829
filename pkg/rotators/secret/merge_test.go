package secret

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
)

// With creationPolicy Merge the operator writes only its own keys (those
// its field manager holds): the Secret's other keys are rotated here, its
// keys are refused; with Orphan it rewrites all of them.
func TestRotateLeavesTheOperatorsKeysToIt(t *testing.T) {
	tests := []struct {
		policy, key, wantErr string
	}{
		{"Merge", "own", ""},
		{"Merge", "password", "key password of secret/app is written by externalsecret/db (external-secrets.io, creationPolicy Merge): a change here would be overwritten; change the value in the secret store and run `kubectl rotate secret app -n ns --force-sync`, or rotate only the keys it does not write"},
		{"Orphan", "own", "secret/app is written by externalsecret/db (external-secrets.io, creationPolicy Orphan): a change here would be overwritten"},
	}
	for _, tt := range tests {
		t.Run(tt.policy+" "+tt.key, func(t *testing.T) {
			es := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
				"metadata": map[string]any{"name": "db", "namespace": "ns"},
				"spec":     map[string]any{"target": map[string]any{"name": "app", "creationPolicy": tt.policy}},
			}}
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{externalsecrets.ExternalSecrets: "ExternalSecretList"}, es)
			s := secret("app", map[string]string{"own": "mine", "password": "synced"}, generation(1), func(s *corev1.Secret) {
				s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: externalsecrets.FieldManager("db"), Operation: metav1.ManagedFieldsOperationUpdate,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{".":{},"f:password":{}}}`)}}}
			})
			c := Clients{Kube: fake.NewClientset(s), Dynamic: dc}
			_, err := Rotate(context.Background(), c, opts(setTo(tt.key, "new")))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := get(t, c, "app"); string(got.Data[tt.key]) != "new" || string(got.Data["password"]) != "synced" {
					t.Errorf("after the rotation: %s=%q password=%q", tt.key, got.Data[tt.key], got.Data["password"])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got := get(t, c, "app"); string(got.Data["own"]) != "mine" {
				t.Errorf("the refusal changed the Secret")
			}
		})
	}
}

// A push the operator took, followed by a sync that never comes: the
// store holds the new version, so NAME-previous keeps the values from
// before, and the PushSecret and its source Secret (which holds the
// value) are removed all the same.
func TestPushThenNoSyncLeavesNoPushObjects(t *testing.T) {
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": "app", "namespace": "ns"},
		"spec": map[string]any{"refreshInterval": "1h", "secretStoreRef": map[string]any{"name": "store", "kind": "ClusterSecretStore"},
			"data": []any{map[string]any{"secretKey": "a", "remoteRef": map[string]any{"key": "remote-a"}}}},
	}}
	store := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
		"metadata": map[string]any{"name": "store"}, "status": map[string]any{"capabilities": "ReadWrite"},
	}}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		externalsecrets.ExternalSecrets: "ExternalSecretList", externalsecrets.PushSecrets: "PushSecretList", externalsecrets.ClusterSecretStores: "ClusterSecretStoreList"}, es, store)
	owned := secret("app", map[string]string{"a": "v1"}, generation(1), func(s *corev1.Secret) {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "app"}}
	})
	c := Clients{Kube: fake.NewClientset(owned), Dynamic: dc}
	pushes := dc.Resource(externalsecrets.PushSecrets).Namespace("ns")
	// The operator's part: report the PushSecret pushed.
	go func() {
		for i := 0; i < 300; i++ {
			if ps, err := pushes.Get(context.Background(), "app"+PushSuffix, metav1.GetOptions{}); err == nil {
				_ = unstructured.SetNestedSlice(ps.Object, []any{map[string]any{"type": "Ready", "status": "True"}}, "status", "conditions")
				_, _ = pushes.Update(context.Background(), ps, metav1.UpdateOptions{})
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	o := forceSyncOpts()
	o.SyncTimeout = time.Second
	o.Changes = []Change{setTo("a", "pushed-value")}
	_, err := ForceSync(context.Background(), c, o)
	if err == nil || !strings.Contains(err.Error(), "the store holds the pushed value and the operator will sync it later: secret/app-previous keeps the values from before") {
		t.Fatalf("error %v, want the sync to time out with the copy kept", err)
	}
	if got := string(get(t, c, "app-previous").Data["a"]); got != "v1" {
		t.Errorf("app-previous holds %q, want v1", got)
	}
	if _, err := pushes.Get(context.Background(), "app"+PushSuffix, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the PushSecret was left behind (%v)", err)
	}
	if _, err := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), "app"+PushSuffix, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the push's source Secret, which holds the value, was left behind (%v)", err)
	}
}
