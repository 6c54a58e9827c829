package secret

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
