package externalsecrets

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
)

const longName = "a-very-long-external-secret-name-that-goes-over-the-limit-of-63"

// The operator's field manager, as fqdnFor makes it; the hash was
// computed with Python's hashlib.sha3_224, not with this package.
func TestFieldManager(t *testing.T) {
	for name, want := range map[string]string{
		"db":     "externalsecrets.external-secrets.io/db",
		longName: "externalsecrets.external-secrets.io/sha3/2efe0ed8315b89fde0ff7fdd2d319dc34b4d0420a4c1707939b6025a",
	} {
		if got := FieldManager(name); got != want {
			t.Errorf("FieldManager(%q) = %q, want %q", name, got, want)
		}
	}
}

func es(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": "ns"}, "spec": spec,
	}}
}

// managed is a managedFields entry of manager holding data keys.
func managed(manager string, keys ...string) metav1.ManagedFieldsEntry {
	f := `{"f:data":{".":{}`
	for _, k := range keys {
		f += `,"f:` + k + `":{}`
	}
	f += `}}`
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(f)}}
}

func TestFind(t *testing.T) {
	merge := map[string]any{"target": map[string]any{"name": "app", "creationPolicy": "Merge"}}
	orphan := map[string]any{"target": map[string]any{"name": "app", "creationPolicy": "Orphan"}}
	data := map[string][]byte{"password": []byte("x"), "own": []byte("y")}
	tests := []struct {
		name     string
		objs     []runtime.Object
		secret   corev1.Secret
		want     string // ExternalSecret name; "" for none
		policy   string
		keys     string
		apiCalls int
	}{
		{name: "not the operator's: no API call", secret: corev1.Secret{Data: data}},
		{name: "owner reference (Owner)", objs: []runtime.Object{es("app", nil)},
			secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "app"}}}, Data: data},
			want:   "app", policy: Owner, keys: "own,password", apiCalls: 1},
		{name: "owner gone", secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "gone"}}}, Data: data},
			want: "gone", policy: Owner, keys: "own,password", apiCalls: 1},
		{name: "field manager (Merge): only its keys", objs: []runtime.Object{es("db", merge)},
			secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{managed("kubectl-create", "own"), managed(FieldManager("db"), "password")}}, Data: data},
			want:   "db", policy: Merge, keys: "password", apiCalls: 1},
		{name: "hashed field manager (Orphan)", objs: []runtime.Object{es("other", orphan), es(longName, orphan)},
			secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{managed(FieldManager(longName), "password", "own")}}, Data: data},
			want:   longName, policy: Orphan, keys: "own,password", apiCalls: 1},
		{name: "managed label only: the ExternalSecret whose target it is", objs: []runtime.Object{es("other", map[string]any{}), es("writer", merge)},
			secret: corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelManaged: "true"}}, Data: data},
			want:   "writer", policy: Merge, apiCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{ExternalSecrets: "ExternalSecretList"}, tt.objs...)
			s := tt.secret
			s.Name, s.Namespace = "app", "ns"
			src, err := Find(context.Background(), dc, &s)
			if err != nil {
				t.Fatal(err)
			}
			if len(dc.Actions()) != tt.apiCalls {
				t.Errorf("%d API calls, want %d", len(dc.Actions()), tt.apiCalls)
			}
			if tt.want == "" {
				if src != nil {
					t.Fatalf("found %s, want none", src.Ref())
				}
				return
			}
			if src == nil || src.Name != tt.want || src.CreationPolicy != tt.policy || strings.Join(src.Keys, ",") != tt.keys {
				t.Fatalf("found %+v, want %s (%s) writing %q", src, tt.want, tt.policy, tt.keys)
			}
		})
	}
}

func TestSyncable(t *testing.T) {
	tests := []struct {
		spec    map[string]any
		wantErr string
	}{
		{map[string]any{}, ""},
		{map[string]any{"refreshInterval": "1h"}, ""},
		{map[string]any{"refreshInterval": "0", "refreshPolicy": "OnChange"}, ""},
		{map[string]any{"refreshInterval": "0"}, "externalsecret/e has refreshInterval 0"},
		{map[string]any{"refreshPolicy": "CreatedOnce"}, "externalsecret/e has refreshPolicy CreatedOnce"},
		{map[string]any{"target": map[string]any{"creationPolicy": "None"}}, "externalsecret/e has creationPolicy None: the External Secrets operator writes no Secret for it"},
	}
	for _, tt := range tests {
		err := Syncable(es("e", tt.spec))
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Syncable(%v) = %v, want %q", tt.spec, err, tt.wantErr)
		}
	}
}

func TestRemoteRefOf(t *testing.T) {
	spec := map[string]any{
		"secretStoreRef": map[string]any{"name": "gsm", "kind": "ClusterSecretStore"},
		"data": []any{
			map[string]any{"secretKey": "password", "remoteRef": map[string]any{"key": "db-pass"}},
			map[string]any{"secretKey": "api", "remoteRef": map[string]any{"key": "api", "property": "token"}, "sourceRef": map[string]any{"storeRef": map[string]any{"name": "local"}}},
			map[string]any{"secretKey": "pinned", "remoteRef": map[string]any{"key": "p", "version": "3"}},
		},
		"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "bundle"}}},
	}
	tests := []struct {
		key     string
		want    RemoteRef
		wantErr string
	}{
		{key: "password", want: RemoteRef{StoreName: "gsm", StoreKind: "ClusterSecretStore", Key: "db-pass"}},
		{key: "api", want: RemoteRef{StoreName: "local", StoreKind: "SecretStore", Key: "api", Property: "token"}},
		{key: "pinned", wantErr: "key pinned of externalsecret/e reads version 3 of p: a pushed value would not be read"},
		{key: "fromBundle", wantErr: "key fromBundle is not one remote value of externalsecret/e (spec.data): keys from dataFrom or a template have none to push to"},
	}
	for _, tt := range tests {
		got, err := RemoteRefOf(es("e", spec), tt.key)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.key, got, err, tt.want)
		}
	}
}
