// Package externalsecrets knows the External Secrets Operator's object
// model as the operator itself reads it (external-secrets v0.20.4): which
// ExternalSecret writes a Secret and which of its keys, whether the
// operator would sync it again, which ExternalSecrets a
// ClusterExternalSecret fans out to, and where a key's remote value lives
// for a PushSecret. It reads; the rotation code writes.
package externalsecrets

import (
	"context"
	"crypto/sha3"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Group is the External Secrets Operator's API group.
const Group = "external-secrets.io"

// Resources the operator serves.
var (
	ExternalSecrets        = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "externalsecrets"}
	ClusterExternalSecrets = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "clusterexternalsecrets"}
	SecretStores           = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "secretstores"}
	ClusterSecretStores    = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "clustersecretstores"}
	PushSecrets            = schema.GroupVersionResource{Group: Group, Version: "v1alpha1", Resource: "pushsecrets"}
)

// Labels and annotations the operator sets (apis/externalsecrets/v1
// externalsecret_types.go).
const (
	// LabelManaged is "true" on every Secret an ExternalSecret writes.
	LabelManaged = "reconcile.external-secrets.io/managed"
	// ForceSyncAnnotation makes the operator sync an ExternalSecret now
	// (any change of the ExternalSecret's labels or annotations does:
	// shouldRefreshPeriodic compares a hash of them).
	ForceSyncAnnotation = "force-sync"
	// ClusterForceSyncAnnotation is the one annotation a
	// ClusterExternalSecret copies to the ExternalSecrets it makes
	// (AnnotationForceSync; clusterexternalsecret_controller.go
	// createOrUpdateExternalSecret): set on it, it syncs them all.
	ClusterForceSyncAnnotation = "external-secrets.io/force-sync"
)

// Creation policies (spec.target.creationPolicy; Owner is the default).
const (
	Owner  = "Owner"
	Orphan = "Orphan"
	Merge  = "Merge"
	None   = "None"
)

// fieldManagerPrefix is the field manager the operator writes a Secret
// with, followed by the ExternalSecret's name; names that would make it
// longer than 63 characters use "sha3/" and the hex SHA3-224 of the name
// instead (pkg/controllers/externalsecret util.go fqdnFor).
const fieldManagerPrefix = "externalsecrets.external-secrets.io/"

// FieldManager returns the field manager the operator uses for the
// ExternalSecret named name.
func FieldManager(name string) string {
	m := fieldManagerPrefix + name
	if len(m) > 63 {
		m = fmt.Sprintf("%ssha3/%x", fieldManagerPrefix, sha3.Sum224([]byte(name)))
	}
	return m
}

// Source is the ExternalSecret that writes a Secret.
type Source struct {
	// ExternalSecret as read; nil when the Secret's owner reference
	// names one that is gone.
	ExternalSecret *unstructured.Unstructured
	// Name and Namespace of the ExternalSecret.
	Name, Namespace string
	// CreationPolicy is Owner, Orphan, Merge or None.
	CreationPolicy string
	// ClusterExternalSecret is the name of the ClusterExternalSecret that
	// made the ExternalSecret, if one did: its force-sync is the one that
	// lasts (the ExternalSecret's annotations are its copy).
	ClusterExternalSecret string
	// Keys are the Secret's keys the operator writes. With Owner and
	// Orphan it replaces all of the data on each sync, so every key is
	// its; with Merge only those its field manager holds
	// (externalsecret_controller.go getManagedDataKeys, ApplyTemplate).
	Keys []string
}

// Ref names the ExternalSecret for messages.
func (s *Source) Ref() string { return "externalsecret/" + s.Name }

// Owns reports whether the operator writes key.
func (s *Source) Owns(key string) bool {
	for _, k := range s.Keys {
		if k == key {
			return true
		}
	}
	return false
}

// Find returns the ExternalSecret that writes s, or nil when none does.
// The operator leaves three marks, each looked at in turn: a controller
// reference (creationPolicy Owner), its field manager in the Secret's
// managedFields (every policy), and the managed label; an ExternalSecret
// is then looked up by name or, for a hashed manager or a bare label,
// among those of the namespace whose target is s. A Secret with none of
// these marks costs no API call.
func Find(ctx context.Context, dyn dynamic.Interface, s *corev1.Secret) (*Source, error) {
	name, owned := "", false
	for _, ref := range s.OwnerReferences {
		if ref.Kind == "ExternalSecret" && strings.HasPrefix(ref.APIVersion, Group+"/") {
			name, owned = ref.Name, true
		}
	}
	hashed := ""
	if name == "" {
		for _, mf := range s.ManagedFields {
			if rest, ok := strings.CutPrefix(mf.Manager, fieldManagerPrefix); ok {
				if strings.HasPrefix(rest, "sha3/") {
					hashed = mf.Manager
				} else {
					name = rest
				}
				break
			}
		}
	}
	if name == "" && hashed == "" && s.Labels[LabelManaged] != "true" {
		return nil, nil
	}
	if dyn == nil {
		return nil, fmt.Errorf("secret/%s is marked as written by the External Secrets operator, and no client for ExternalSecrets was given", s.Name)
	}
	es := dyn.Resource(ExternalSecrets).Namespace(s.Namespace)
	var obj *unstructured.Unstructured
	if name != "" {
		o, err := es.Get(ctx, name, metav1.GetOptions{})
		if owned && apierrors.IsNotFound(err) {
			// Its owner is gone (the garbage collector will remove the
			// Secret): still the operator's, every key.
			return &Source{Name: name, Namespace: s.Namespace, CreationPolicy: Owner, Keys: sortedKeys(s)}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("secret/%s is written by externalsecret/%s, which cannot be read: %w", s.Name, name, err)
		}
		obj = o
	} else {
		list, err := es.List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || (err == nil && len(list.Items) == 0) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("secret/%s carries the External Secrets operator's marks; listing ExternalSecrets in namespace %s: %w", s.Name, s.Namespace, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			if (hashed != "" && FieldManager(it.GetName()) == hashed) || (hashed == "" && Target(it) == s.Name) {
				obj = it
				break
			}
		}
		if obj == nil {
			return nil, nil
		}
	}
	src := &Source{ExternalSecret: obj, Name: obj.GetName(), Namespace: obj.GetNamespace(), CreationPolicy: CreationPolicy(obj)}
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == "ClusterExternalSecret" && strings.HasPrefix(ref.APIVersion, Group+"/") {
			src.ClusterExternalSecret = ref.Name
		}
	}
	if src.CreationPolicy == Merge {
		src.Keys = managedKeys(s, FieldManager(src.Name))
	} else {
		src.Keys = sortedKeys(s)
	}
	return src, nil
}

func sortedKeys(s *corev1.Secret) []string {
	out := make([]string, 0, len(s.Data))
	for k := range s.Data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// managedKeys returns the data keys manager holds in s's managedFields.
func managedKeys(s *corev1.Secret, manager string) []string {
	seen := map[string]bool{}
	for _, mf := range s.ManagedFields {
		if mf.Manager != manager || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		data, _ := fields["f:data"].(map[string]any)
		for k := range data {
			if k != "." {
				seen[strings.TrimPrefix(k, "f:")] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Target returns the name of the Secret an ExternalSecret writes
// (spec.target.name, else the ExternalSecret's own name).
func Target(es *unstructured.Unstructured) string {
	if n, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name"); n != "" {
		return n
	}
	return es.GetName()
}

// CreationPolicy returns spec.target.creationPolicy, Owner when unset.
func CreationPolicy(es *unstructured.Unstructured) string {
	if p, _, _ := unstructured.NestedString(es.Object, "spec", "target", "creationPolicy"); p != "" {
		return p
	}
	return Owner
}

// Syncable refuses an ExternalSecret the operator would not sync again,
// so that a force-sync could only time out. The rules are the operator's
// (pkg/controllers/externalsecret/externalsecret_controller.go
// shouldRefresh and shouldRefreshPeriodic): refreshPolicy CreatedOnce
// never syncs after the first time; Periodic (the default) with a
// refreshInterval of 0 never syncs again once synced, force-sync or not;
// OnChange and a positive interval sync when the annotations change.
// creationPolicy None writes no Secret at all.
func Syncable(es *unstructured.Unstructured) error {
	if CreationPolicy(es) == None {
		return fmt.Errorf("externalsecret/%s has creationPolicy None: the External Secrets operator writes no Secret for it; set spec.target.creationPolicy to Owner, Orphan or Merge first", es.GetName())
	}
	policy, _, _ := unstructured.NestedString(es.Object, "spec", "refreshPolicy")
	interval, found, _ := unstructured.NestedString(es.Object, "spec", "refreshInterval")
	switch {
	case policy == "CreatedOnce":
		return fmt.Errorf("externalsecret/%s has refreshPolicy CreatedOnce: the External Secrets operator never syncs it again, force-sync included; set spec.refreshPolicy to OnChange or Periodic first", es.GetName())
	case policy == "OnChange" || !found:
		return nil
	}
	if d, err := time.ParseDuration(interval); err == nil && d <= 0 {
		return fmt.Errorf("externalsecret/%s has refreshInterval %s: the External Secrets operator does not sync it again, force-sync included; set spec.refreshInterval (e.g. 1h) or spec.refreshPolicy: OnChange first", es.GetName(), interval)
	}
	return nil
}

// Member is one ExternalSecret a ClusterExternalSecret made, and the
// Secret it writes.
type Member struct {
	Namespace, ExternalSecret, Secret string
}

// FanOut returns the ExternalSecrets a ClusterExternalSecret has made, as
// its status says (status.externalSecretName, else its name, in each of
// status.provisionedNamespaces: clusterexternalsecret_controller.go), with
// the Secret each writes.
func FanOut(ctx context.Context, dyn dynamic.Interface, name string) (*unstructured.Unstructured, []Member, error) {
	ces, err := dyn.Resource(ClusterExternalSecrets).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("clusterexternalsecret/%s: %w", name, err)
	}
	esName, _, _ := unstructured.NestedString(ces.Object, "status", "externalSecretName")
	if esName == "" {
		esName, _, _ = unstructured.NestedString(ces.Object, "spec", "externalSecretName")
	}
	if esName == "" {
		esName = name
	}
	namespaces, _, _ := unstructured.NestedStringSlice(ces.Object, "status", "provisionedNamespaces")
	if len(namespaces) == 0 {
		return nil, nil, fmt.Errorf("clusterexternalsecret/%s has provisioned no namespace yet (status.provisionedNamespaces is empty): check its namespace selectors and `kubectl describe clusterexternalsecret %s`", name, name)
	}
	sort.Strings(namespaces)
	var out []Member
	for _, ns := range namespaces {
		es, err := dyn.Resource(ExternalSecrets).Namespace(ns).Get(ctx, esName, metav1.GetOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("clusterexternalsecret/%s: externalsecret/%s in namespace %s: %w", name, esName, ns, err)
		}
		out = append(out, Member{Namespace: ns, ExternalSecret: esName, Secret: Target(es)})
	}
	return ces, out, nil
}

// RemoteRef is where one key of the Secret comes from in the store.
type RemoteRef struct {
	// StoreName and StoreKind (SecretStore or ClusterSecretStore).
	StoreName, StoreKind string
	// Key and Property of the remote value.
	Key, Property string
}

// RemoteRefOf returns where key comes from: the spec.data entry whose
// secretKey is key. Keys made by spec.dataFrom or by a template have no
// single remote value, and a pinned remoteRef.version would not read a
// new one: both are refused, naming the fix.
func RemoteRefOf(es *unstructured.Unstructured, key string) (RemoteRef, error) {
	data, _, _ := unstructured.NestedSlice(es.Object, "spec", "data")
	for _, d := range data {
		m, _ := d.(map[string]any)
		if sk, _, _ := unstructured.NestedString(m, "secretKey"); sk != key {
			continue
		}
		var r RemoteRef
		r.Key, _, _ = unstructured.NestedString(m, "remoteRef", "key")
		r.Property, _, _ = unstructured.NestedString(m, "remoteRef", "property")
		if v, _, _ := unstructured.NestedString(m, "remoteRef", "version"); v != "" {
			return r, fmt.Errorf("key %s of externalsecret/%s reads version %s of %s: a pushed value would not be read; drop remoteRef.version, or push to the store yourself", key, es.GetName(), v, r.Key)
		}
		r.StoreName, _, _ = unstructured.NestedString(m, "sourceRef", "storeRef", "name")
		r.StoreKind, _, _ = unstructured.NestedString(m, "sourceRef", "storeRef", "kind")
		if r.StoreName == "" {
			r.StoreName, _, _ = unstructured.NestedString(es.Object, "spec", "secretStoreRef", "name")
			r.StoreKind, _, _ = unstructured.NestedString(es.Object, "spec", "secretStoreRef", "kind")
		}
		if r.StoreKind == "" {
			r.StoreKind = "SecretStore"
		}
		if r.Key == "" || r.StoreName == "" {
			return r, fmt.Errorf("key %s of externalsecret/%s names no remote key or no store: fix its spec.data entry", key, es.GetName())
		}
		return r, nil
	}
	return RemoteRef{}, fmt.Errorf("key %s is not one remote value of externalsecret/%s (spec.data): keys from dataFrom or a template have none to push to; push to the store yourself, then run --force-sync without --push", key, es.GetName())
}

// CanPush checks that a store takes writes: its status.capabilities is
// ReadWrite or WriteOnly (the operator sets it from the provider).
func CanPush(ctx context.Context, dyn dynamic.Interface, namespace string, r RemoteRef) error {
	var obj *unstructured.Unstructured
	var err error
	ref := "secretstore/" + r.StoreName
	if r.StoreKind == "ClusterSecretStore" {
		ref = "clustersecretstore/" + r.StoreName
		obj, err = dyn.Resource(ClusterSecretStores).Get(ctx, r.StoreName, metav1.GetOptions{})
	} else {
		obj, err = dyn.Resource(SecretStores).Namespace(namespace).Get(ctx, r.StoreName, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	switch c, _, _ := unstructured.NestedString(obj.Object, "status", "capabilities"); c {
	case "ReadWrite", "WriteOnly":
		return nil
	case "":
		return fmt.Errorf("%s reports no capabilities yet (status.capabilities): wait until the operator has validated it, or push to the store yourself", ref)
	default:
		return fmt.Errorf("%s is %s: the External Secrets operator cannot push to it; push to the store yourself, then run --force-sync without --push", ref, c)
	}
}
