package secret

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// StepPush has the operator write the new values to the secret store.
const StepPush = "push"

// PushForLabel marks the PushSecret a force-sync owns, and the Secret it
// pushes from, with the name of the Secret rotated.
const PushForLabel = v1alpha1.Prefix + "push-for"

// PushSuffix names the PushSecret (and its source Secret) of a Secret.
const PushSuffix = "-kube-rotate-push"

// push makes new values and has the External Secrets operator write them
// to the store as a new version, through a PushSecret this run owns
// (external-secrets v0.20.4 apis/externalsecrets/v1alpha1
// pushsecret_types.go): kube-rotate never holds the store's credentials.
// The values live only in the PushSecret's source Secret, next to the
// Secret rotated, for as long as the push takes; the PushSecret names
// keys, never values. deletionPolicy None keeps the pushed version when
// the PushSecret is removed after the sync, and refreshInterval 0 pushes
// once (pushsecret_controller.go shouldRefresh).
type push struct {
	name, namespace string
	store           externalsecrets.RemoteRef
	refs            map[string]externalsecrets.RemoteRef
	values          map[string][]byte
	keys            []string
	target          *corev1.Secret
	// pushed: the operator reported the values written to the store.
	pushed bool
}

// planPush checks every key can be pushed (one spec.data entry of the
// ExternalSecret, one store that takes writes, no object of the
// PushSecret's name that is not this tool's) and makes the new values.
func planPush(ctx context.Context, c Clients, t *syncTarget, chs []Change, clientDryRun bool) (*push, error) {
	ns := t.s.Namespace
	p := &push{name: t.s.Name + PushSuffix, namespace: ns, refs: map[string]externalsecrets.RemoteRef{}, values: map[string][]byte{}, target: t.s}
	for _, ch := range chs {
		ref, err := externalsecrets.RemoteRefOf(t.src.ExternalSecret, ch.Key)
		if err != nil {
			return nil, err
		}
		if len(p.refs) == 0 {
			p.store = ref
		} else if ref.StoreName != p.store.StoreName || ref.StoreKind != p.store.StoreKind {
			return nil, fmt.Errorf("keys %s and %s of %s come from different stores (%s/%s, %s/%s): push one store's keys per run", p.keys[0], ch.Key, t.src.Ref(), p.store.StoreKind, p.store.StoreName, ref.StoreKind, ref.StoreName)
		}
		p.refs[ch.Key] = ref
		old, exists := t.s.Data[ch.Key]
		v, err := ch.Make(old, exists)
		if err != nil {
			return nil, fmt.Errorf("secret/%s key %s: %w", t.s.Name, ch.Key, err)
		}
		p.values[ch.Key] = v
		p.keys = append(p.keys, ch.Key)
		fp := values.Fingerprint(v)
		if clientDryRun && ch.Generated {
			fp = "(generated at run time)"
		}
		found := false
		for i := range t.p.result.Keys {
			if k := &t.p.result.Keys[i]; k.Key == ch.Key {
				k.Source, k.New, found = "pushed to the store ("+ch.Source+")", fp, true
			}
		}
		if !found {
			return nil, fmt.Errorf("key %s of secret/%s is not written by %s: --push changes keys the ExternalSecret writes", ch.Key, t.s.Name, t.src.Ref())
		}
	}
	sort.Strings(p.keys)
	if err := externalsecrets.CanPush(ctx, c.Dynamic, ns, p.store); err != nil {
		return nil, err
	}
	if s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, p.name, metav1.GetOptions{}); err == nil && s.Labels[PushForLabel] != t.s.Name {
		return nil, fmt.Errorf("secret/%s exists and is not kube-rotate's source of the push of secret/%s: rename it", p.name, t.s.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		return nil, describeAPIError(err, "get", "secret/"+p.name, ns)
	}
	ps, err := c.Dynamic.Resource(externalsecrets.PushSecrets).Namespace(ns).Get(ctx, p.name, metav1.GetOptions{})
	if err == nil && ps.GetLabels()[PushForLabel] != t.s.Name {
		return nil, fmt.Errorf("pushsecret/%s exists and is not kube-rotate's push of secret/%s: rename it", p.name, t.s.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		return nil, describeAPIError(err, "get", "pushsecret/"+p.name, ns)
	}
	return p, nil
}

func (p *push) step(fs *forceSync) procedure.Step {
	return &procedure.Func{StepName: StepPush,
		What: fmt.Sprintf("push new values of %s to %s/%s through pushsecret/%s, and wait until the operator has written them", strings.Join(p.keys, ", "), strings.ToLower(p.store.StoreKind), p.store.StoreName, p.name),
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			err := p.run(ctx, fs)
			if err != nil && !p.pushed && fs.o.DryRun == DryRunNone {
				p.remove(context.WithoutCancel(ctx), fs)
				return fmt.Errorf("%w (%s)", err, fs.putBack(context.WithoutCancel(ctx), fs.targets[0]))
			}
			return err
		}}
}

func (p *push) labels() map[string]string {
	return map[string]string{PushForLabel: p.target.Name, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy}
}

// run replaces what an interrupted run left, writes the source Secret and
// the PushSecret, and waits until the operator reports them pushed.
func (p *push) run(ctx context.Context, fs *forceSync) error {
	o := fs.o
	dry := o.dryRunOpt()
	if o.DryRun == DryRunNone {
		p.remove(ctx, fs)
	}
	src := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, Labels: p.labels(),
			// Removed with the Secret rotated, should this run not get to it.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: p.target.Name, UID: p.target.UID}}},
		Type: corev1.SecretTypeOpaque,
		Data: p.values,
	}
	if _, err := fs.c.Kube.CoreV1().Secrets(p.namespace).Create(ctx, src, metav1.CreateOptions{FieldManager: FieldManager, DryRun: dry}); err != nil {
		return describeAPIError(err, "create", "secret/"+p.name, p.namespace)
	}
	var data []any
	for _, k := range p.keys {
		ref := map[string]any{"remoteKey": p.refs[k].Key}
		if p.refs[k].Property != "" {
			ref["property"] = p.refs[k].Property
		}
		data = append(data, map[string]any{"match": map[string]any{"secretKey": k, "remoteRef": ref}})
	}
	labels := map[string]any{}
	for k, v := range p.labels() {
		labels[k] = v
	}
	ps := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": externalsecrets.PushSecrets.GroupVersion().String(), "kind": "PushSecret",
		"metadata": map[string]any{"name": p.name, "namespace": p.namespace, "labels": labels},
		"spec": map[string]any{
			"refreshInterval": "0s", "deletionPolicy": "None", "updatePolicy": "Replace",
			"secretStoreRefs": []any{map[string]any{"name": p.store.StoreName, "kind": p.store.StoreKind}},
			"selector":        map[string]any{"secret": map[string]any{"name": p.name}},
			"data":            data,
		},
	}}
	pushes := fs.c.Dynamic.Resource(externalsecrets.PushSecrets).Namespace(p.namespace)
	if _, err := pushes.Create(ctx, ps, metav1.CreateOptions{FieldManager: FieldManager, DryRun: dry}); err != nil {
		return describeAPIError(err, "create", "pushsecret/"+p.name, p.namespace)
	}
	if o.DryRun != DryRunNone {
		return nil
	}
	fmt.Fprintf(o.Progress, "pushsecret/%s: pushing %s to %s/%s\n", p.name, strings.Join(p.keys, ", "), strings.ToLower(p.store.StoreKind), p.store.StoreName)
	var failed string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, o.SyncTimeout, true, func(ctx context.Context) (bool, error) {
		cur, err := pushes.Get(ctx, p.name, metav1.GetOptions{})
		if err != nil {
			return false, describeAPIError(err, "get", "pushsecret/"+p.name, p.namespace)
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] != "Ready" {
				continue
			}
			switch m["status"] {
			case "True":
				return true, nil
			case "False":
				// The operator's message names the store and the
				// provider's error; it carries no value.
				failed, _ = m["message"].(string)
			}
		}
		return false, nil
	})
	if err != nil {
		if failed != "" {
			return fmt.Errorf("pushsecret/%s: the operator could not push to %s/%s: %s: check `kubectl describe pushsecret %s -n %s`", p.name, strings.ToLower(p.store.StoreKind), p.store.StoreName, failed, p.name, p.namespace)
		}
		if wait.Interrupted(err) {
			return fmt.Errorf("pushsecret/%s was not pushed within %s: check `kubectl describe pushsecret %s -n %s`", p.name, o.SyncTimeout, p.name, p.namespace)
		}
		return err
	}
	p.pushed = true
	fmt.Fprintf(o.Progress, "pushsecret/%s: pushed\n", p.name)
	return nil
}

// check confirms the Secret now holds the values pushed (an ExternalSecret
// that reads another store or version would not).
func (p *push) check(t *syncTarget) error {
	for _, k := range p.keys {
		if string(t.synced.Data[k]) != string(p.values[k]) {
			return fmt.Errorf("%s: key %s changed, but not to the value pushed through pushsecret/%s: does %s read %s from %s/%s? check `kubectl describe externalsecret %s -n %s`",
				t.ref(), k, p.name, t.src.Ref(), p.refs[k].Key, strings.ToLower(p.store.StoreKind), p.store.StoreName, t.src.Name, t.s.Namespace)
		}
	}
	return nil
}

// remove deletes the PushSecret (deletionPolicy None: the pushed version
// stays in the store) and its source Secret, if this tool's; what it
// cannot remove it says.
func (p *push) remove(ctx context.Context, fs *forceSync) {
	pushes := fs.c.Dynamic.Resource(externalsecrets.PushSecrets).Namespace(p.namespace)
	if ps, err := pushes.Get(ctx, p.name, metav1.GetOptions{}); err == nil && ps.GetLabels()[PushForLabel] == p.target.Name {
		rv := ps.GetResourceVersion()
		if err := pushes.Delete(ctx, p.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(fs.o.Progress, "Warning: pushsecret/%s could not be removed: %v\n", p.name, describeAPIError(err, "delete", "pushsecret/"+p.name, p.namespace))
		}
	}
	secrets := fs.c.Kube.CoreV1().Secrets(p.namespace)
	if s, err := secrets.Get(ctx, p.name, metav1.GetOptions{}); err == nil && s.Labels[PushForLabel] == p.target.Name {
		rv := s.ResourceVersion
		if err := secrets.Delete(ctx, p.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(fs.o.Progress, "Warning: secret/%s (the pushed values) could not be removed: %v: delete it\n", p.name, describeAPIError(err, "delete", "secret/"+p.name, p.namespace))
		}
	}
}
