package secret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// UndoOptions of Undo.
type UndoOptions struct {
	Namespace, Name string
	Restart         bool
	Timeout         time.Duration
	DryRun          DryRun
	By              string
	Now             func() time.Time
	Progress        io.Writer
}

// Undo puts back the values kept in the Secret's companion, removes keys
// the rotation created, restarts the consumers of those keys and waits for
// them. Re-running it after an interruption resumes; once the previous
// values are in place and consumers healthy it changes nothing.
func Undo(ctx context.Context, c Clients, o UndoOptions) (*Result, error) {
	ro := Options{Namespace: o.Namespace, Timeout: o.Timeout, DryRun: o.DryRun, By: o.By, Now: o.Now, Progress: o.Progress, Restart: o.Restart}
	ro.defaults()
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if ro.DryRun != DryRunNone {
		res.DryRun = string(ro.DryRun)
	}
	secrets := c.Kube.CoreV1().Secrets(o.Namespace)
	s, comp, err := loadCompanion(ctx, c, o.Namespace, o.Name)
	if err != nil {
		return nil, err
	}
	compName := comp.Name
	if owner := externalSecretOwner(s); owner != "" {
		return nil, fmt.Errorf("secret/%s is written by ExternalSecret %s: a restored value would be overwritten; put the previous value (kept in secret/%s) back in the secret store and run `kubectl rotate secret %s -n %s --force-sync`", o.Name, owner, compName, o.Name, o.Namespace)
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", o.Name, err)
	}

	restored := map[string][]byte{}
	for k, v := range s.Data {
		restored[k] = v
	}
	var keys []string
	fps := map[string]string{}
	changes := []KeyChange{}
	for _, k := range sortedKeys(comp.Data) {
		keys = append(keys, k)
		fps[k] = values.Fingerprint(comp.Data[k])
		kc := KeyChange{Key: k, Source: "previous", New: fps[k]}
		if cur, ok := s.Data[k]; ok {
			kc.Old = values.Fingerprint(cur)
		}
		changes = append(changes, kc)
		restored[k] = comp.Data[k]
	}
	for _, k := range splitKeys(comp.Annotations[CreatedKeys]) {
		if _, ok := restored[k]; ok {
			keys = append(keys, k)
			changes = append(changes, KeyChange{Key: k, Source: "removed (created by the rotation)", Old: values.Fingerprint(restored[k]), New: "(removed)"})
			delete(restored, k)
		}
	}
	sr := SecretResult{Namespace: o.Namespace, Name: o.Name, Keys: changes, Previous: compName, Generation: gen}
	alreadyRestored := equalData(restored, s.Data)
	if alreadyRestored && s.Annotations[v1alpha1.Phase] == v1alpha1.PhaseComplete {
		sr.Warnings = append(sr.Warnings, "already holds the previous values; nothing to undo")
		res.Secrets = []SecretResult{sr}
		res.Phase = PhaseComplete
		fmt.Fprintf(ro.Progress, "secret/%s already holds the previous values; nothing to undo\n", o.Name)
		return res, nil
	}
	if !alreadyRestored {
		sr.Generation = gen + 1
	} else {
		sr.Resumed = true
	}
	res.Secrets = []SecretResult{sr}

	ix, err := consumers.NewIndex(ctx, c.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	p := &planned{secret: s, keys: keys, resumed: alreadyRestored, result: sr}
	targets := collectTargets(ix, []*planned{p}, nil, res)
	if ro.DryRun == DryRunClient {
		return res, nil
	}
	if !alreadyRestored {
		var dryRun []string
		if ro.DryRun == DryRunServer {
			dryRun = []string{metav1.DryRunAll}
		}
		u := s.DeepCopy()
		u.Data = restored
		if u.Annotations == nil {
			u.Annotations = map[string]string{}
		}
		entry := v1alpha1.Entry{Time: metav1.NewTime(ro.Now().UTC().Truncate(time.Second)), Action: v1alpha1.ActionUndo, Generation: sr.Generation, Keys: fps, By: ro.By}
		if err := v1alpha1.Apply(u.Annotations, entry, v1alpha1.PhaseWritten); err != nil {
			return nil, fmt.Errorf("secret/%s: %w", o.Name, err)
		}
		updated, err := secrets.Update(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: dryRun})
		if err != nil {
			if apierrors.IsConflict(err) {
				return res, fmt.Errorf("secret/%s changed while it was being restored: nothing was written; re-run the command", o.Name)
			}
			return res, describeAPIError(err, "update", "secret/"+o.Name, o.Namespace)
		}
		if ro.DryRun == DryRunServer {
			return res, nil
		}
		s = updated
		fmt.Fprintf(ro.Progress, "secret/%s: previous values of %s restored (generation %d)\n", o.Name, strings.Join(keys, ", "), sr.Generation)
	} else {
		fmt.Fprintf(ro.Progress, "secret/%s: previous values already restored by an interrupted undo; resuming\n", o.Name)
	}
	if ro.Restart {
		if err := restartAndWait(ctx, c, &ro, targets, res); err != nil {
			var we *consumers.WaitError
			if errors.As(err, &we) {
				res.Unhealthy = we.Unhealthy
				res.Phase = PhaseFailed
				_ = setPhase(ctx, c, s, v1alpha1.PhaseFailed)
			}
			return res, err
		}
	}
	if err := setPhase(ctx, c, s, v1alpha1.PhaseComplete); err != nil {
		return res, err
	}
	res.Phase = PhaseComplete
	return res, nil
}

// FinishOptions of Finish.
type FinishOptions struct {
	Namespace, Name string
	// Force deletes the previous values even if consumers are not healthy.
	Force    bool
	DryRun   DryRun
	Progress io.Writer
}

// FinishResult is what Finish did: the SecretRotationFinish record.
type FinishResult = v1alpha1.SecretRotationFinish

// Finish deletes the companion holding a Secret's previous values once the
// rotation is complete and every consumer is healthy (or with Force).
func Finish(ctx context.Context, c Clients, o FinishOptions) (*FinishResult, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	res := &FinishResult{TypeMeta: typeMeta(KindFinish), Secret: o.Name, Namespace: o.Namespace}
	if o.DryRun != DryRunNone && o.DryRun != "" {
		res.DryRun = string(o.DryRun)
	}
	secrets := c.Kube.CoreV1().Secrets(o.Namespace)
	s, comp, err := loadCompanion(ctx, c, o.Namespace, o.Name)
	if err != nil {
		return nil, err
	}
	compName := comp.Name
	ix, err := consumers.NewIndex(ctx, c.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	users := ix.UsersOf(o.Name, splitKeys(s.Annotations[v1alpha1.Keys]))
	res.Consumers = users
	if !o.Force {
		if ph := s.Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseComplete {
			return res, fmt.Errorf("secret/%s: the last rotation is %q, not complete: its consumers were not seen healthy; re-run the rotation to resume it, undo it, or pass --force", o.Name, ph)
		}
		for _, w := range users {
			if !w.Restart {
				continue
			}
			msg, done, err := consumers.Status(ctx, c.Dynamic, w)
			if err != nil || !done {
				if err != nil {
					msg = err.Error()
				}
				res.Unhealthy = append(res.Unhealthy, consumers.Unhealthy{Workload: w, Status: msg, Reason: "not healthy now"})
			}
		}
		if len(res.Unhealthy) > 0 {
			var names []string
			for _, u := range res.Unhealthy {
				names = append(names, fmt.Sprintf("%s (%s)", u.Workload.Ref(), u.Status))
			}
			return res, fmt.Errorf("refusing to delete the previous values of secret/%s while consumers are not healthy: %s; wait for them or pass --force", o.Name, strings.Join(names, "; "))
		}
	}
	var dryRun []string
	if o.DryRun == DryRunServer {
		dryRun = []string{metav1.DryRunAll}
	}
	res.Deleted = compName
	if o.DryRun == DryRunClient {
		return res, nil
	}
	err = secrets.Delete(ctx, compName, metav1.DeleteOptions{DryRun: dryRun,
		Preconditions: &metav1.Preconditions{UID: &comp.UID, ResourceVersion: &comp.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsConflict(err) {
			return res, fmt.Errorf("secret/%s changed since it was read: nothing was deleted; re-run the command", compName)
		}
		return res, describeAPIError(err, "delete", "secret/"+compName, o.Namespace)
	}
	if o.DryRun == DryRunServer {
		return res, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, v1alpha1.Previous)
	if _, err := secrets.Patch(ctx, o.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return res, describeAPIError(err, "patch", "secret/"+o.Name, o.Namespace)
	}
	fmt.Fprintf(o.Progress, "secret/%s deleted: the previous values of secret/%s are gone\n", compName, o.Name)
	return res, nil
}

// loadCompanion reads a Secret and its previous-values companion, and
// checks the companion is ours.
func loadCompanion(ctx context.Context, c Clients, namespace, name string) (*corev1.Secret, *corev1.Secret, error) {
	secrets := c.Kube.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, describeAPIError(err, "get", "secret/"+name, namespace)
	}
	compName := CompanionName(name)
	comp, err := secrets.Get(ctx, compName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("no previous values for secret/%s: secret/%s not found (removed by `kubectl rotate finish`, or rotated with --no-keep-previous)", name, compName)
	}
	if err != nil {
		return nil, nil, describeAPIError(err, "get", "secret/"+compName, namespace)
	}
	if comp.Labels[v1alpha1.CompanionOf] != name {
		return nil, nil, fmt.Errorf("secret/%s is not kube-rotate's copy of secret/%s's previous values: refusing to use it", compName, name)
	}
	return s, comp, nil
}
