package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// ForceSyncAnnotation is what the External Secrets operator watches to
// refresh an ExternalSecret at once.
const ForceSyncAnnotation = "force-sync"

// ForceSyncOptions of ForceSync.
type ForceSyncOptions struct {
	Options
	// Name of the Secret written by an ExternalSecret.
	Name string
	// SyncTimeout bounds the wait for the operator to change the data.
	SyncTimeout time.Duration
}

// ForceSync rotates a Secret that an ExternalSecret writes (the Deepdesk
// runbook, seed 001): the new value is set in the external store first; this
// keeps the current values in NAME-previous (the back-compat copy), sets the
// force-sync annotation on the ExternalSecret, waits until the operator has
// changed the Secret's data, and restarts the consumers of the keys that
// changed. The Secret's data is never written here.
func ForceSync(ctx context.Context, c Clients, o ForceSyncOptions) (*Result, error) {
	o.defaults()
	if o.SyncTimeout == 0 {
		o.SyncTimeout = o.Timeout
	}
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if o.DryRun != DryRunNone {
		res.DryRun = string(o.DryRun)
	}
	secrets := c.Kube.CoreV1().Secrets(o.Namespace)
	s, err := secrets.Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+o.Name, o.Namespace)
	}
	var owner *metav1.OwnerReference
	for i, ref := range s.OwnerReferences {
		if ref.Kind == "ExternalSecret" && strings.HasPrefix(ref.APIVersion, externalSecretGr+"/") {
			owner = &s.OwnerReferences[i]
		}
	}
	if owner == nil {
		return nil, fmt.Errorf("secret/%s is not written by an ExternalSecret: --force-sync is for those; rotate it with --key/--generate and the other value flags", o.Name)
	}
	gv, err := schema.ParseGroupVersion(owner.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: owner apiVersion %q: %w", o.Name, owner.APIVersion, err)
	}
	es := c.Dynamic.Resource(gv.WithResource("externalsecrets")).Namespace(o.Namespace)
	if _, err := es.Get(ctx, owner.Name, metav1.GetOptions{}); err != nil {
		return nil, describeAPIError(err, "get", "externalsecret/"+owner.Name, o.Namespace)
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", o.Name, err)
	}
	keys := sortedKeys(s.Data)
	p := &planned{secret: s, keys: keys, oldData: s.Data, newData: map[string][]byte{}}
	p.result = SecretResult{Namespace: o.Namespace, Name: o.Name, Generation: gen + 1}
	for _, k := range keys {
		p.result.Keys = append(p.result.Keys, KeyChange{Key: k, Source: "externalsecret/" + owner.Name, Old: values.Fingerprint(s.Data[k]), New: "(from the secret store)"})
	}
	if o.KeepPrevious {
		p.result.Previous = CompanionName(o.Name)
		exp := metav1.NewTime(o.Now().Add(o.PreviousTTL).UTC().Truncate(time.Second))
		p.result.ExpiresAt = &exp
	}
	res.Secrets = []SecretResult{p.result}
	ix, err := consumers.NewIndex(ctx, c.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	collectTargets(ix, []*planned{p}, o.ExtraTargets, res)
	if o.DryRun == DryRunClient {
		return res, nil
	}
	var dryRun []string
	if o.DryRun == DryRunServer {
		dryRun = []string{metav1.DryRunAll}
	}
	now := o.Now().UTC().Truncate(time.Second)
	if o.KeepPrevious {
		if err := o.writeCompanion(ctx, c, p, now, dryRun); err != nil {
			return res, err
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ForceSyncAnnotation, strconv.FormatInt(now.UnixNano(), 10))
	if _, err := es.Patch(ctx, owner.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager, DryRun: dryRun}); err != nil {
		return res, describeAPIError(err, "patch", "externalsecret/"+owner.Name, o.Namespace)
	}
	if o.DryRun == DryRunServer {
		return res, nil
	}
	fmt.Fprintf(o.Progress, "externalsecret/%s: force-sync requested; waiting for it to update secret/%s\n", owner.Name, o.Name)
	synced, err := waitForDataChange(ctx, c, s, o.SyncTimeout)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out") {
			return res, fmt.Errorf("externalsecret/%s did not change secret/%s within %s: is the new value in the secret store? check `kubectl describe externalsecret %s -n %s`", owner.Name, o.Name, o.SyncTimeout, owner.Name, o.Namespace)
		}
		return res, err
	}
	var changed []string
	fps := map[string]string{}
	for _, k := range sortedKeys(synced.Data) {
		if string(synced.Data[k]) != string(s.Data[k]) {
			changed = append(changed, k)
			fps[k] = values.Fingerprint(synced.Data[k])
		}
	}
	for _, k := range keys {
		if _, ok := synced.Data[k]; !ok {
			changed = append(changed, k)
			fps[k] = "(removed)"
		}
	}
	fmt.Fprintf(o.Progress, "secret/%s: %s changed by externalsecret/%s\n", o.Name, strings.Join(changed, ", "), owner.Name)
	// Record on the Secret's metadata only: its data belongs to the operator.
	ann := map[string]string{}
	for k, v := range synced.Annotations {
		ann[k] = v
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(now), Action: v1alpha1.ActionForceSync, Generation: gen + 1, Keys: fps, By: o.By}
	if err := v1alpha1.Apply(ann, entry, v1alpha1.PhaseWritten); err != nil {
		return res, err
	}
	if o.KeepPrevious {
		ann[v1alpha1.Previous] = CompanionName(o.Name)
	}
	if err := patchAnnotations(ctx, c, synced, ann); err != nil {
		return res, err
	}
	// Only consumers of keys that really changed are restarted.
	res.Consumers = nil
	p.keys = changed
	p.result.Keys = nil
	for _, k := range changed {
		p.result.Keys = append(p.result.Keys, KeyChange{Key: k, Source: "externalsecret/" + owner.Name, Old: values.Fingerprint(s.Data[k]), New: fps[k]})
	}
	res.Secrets = []SecretResult{p.result}
	targets := collectTargets(ix, []*planned{p}, o.ExtraTargets, res)
	res.Undo = nil
	if !o.Restart {
		res.Phase = PhaseComplete
		return res, setPhase(ctx, c, synced, v1alpha1.PhaseComplete)
	}
	if err := restartAndWait(ctx, c, &o.Options, targets, res); err != nil {
		var we *consumers.WaitError
		if errors.As(err, &we) {
			res.Unhealthy = we.Unhealthy
			res.Phase = PhaseFailed
			_ = setPhase(ctx, c, synced, v1alpha1.PhaseFailed)
		}
		return res, err
	}
	res.Phase = PhaseComplete
	return res, setPhase(ctx, c, synced, v1alpha1.PhaseComplete)
}

// waitForDataChange watches the Secret until its data differs from s's.
func waitForDataChange(ctx context.Context, c Clients, s *corev1.Secret, timeout time.Duration) (*corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	secrets := c.Kube.CoreV1().Secrets(s.Namespace)
	lw := kube.SingleObjectListWatch(s.Name,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return secrets.List(ctx, o) },
		secrets.Watch, c.Kube)
	var got *corev1.Secret
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Secret{}, nil, func(e watch.Event) (bool, error) {
		if e.Type == watch.Deleted {
			return false, fmt.Errorf("secret/%s was deleted while waiting for the sync", s.Name)
		}
		cur, ok := e.Object.(*corev1.Secret)
		if !ok || equalData(cur.Data, s.Data) {
			return false, nil
		}
		got = cur
		return true, nil
	})
	return got, err
}

// patchAnnotations merges this project's annotations from ann into the
// Secret's metadata with a JSON merge patch that carries the read
// resourceVersion: the data is not part of the write.
func patchAnnotations(ctx context.Context, c Clients, s *corev1.Secret, ann map[string]string) error {
	ours := map[string]string{}
	for k, v := range ann {
		if strings.HasPrefix(k, v1alpha1.Prefix) {
			ours[k] = v
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ours, "resourceVersion": s.ResourceVersion}})
	if err != nil {
		return err
	}
	if _, err := c.Kube.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return describeAPIError(err, "patch", "secret/"+s.Name, s.Namespace)
	}
	return nil
}
