package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// planned is one Secret's rotation, worked out before any write.
type planned struct {
	secret  *corev1.Secret
	newData map[string][]byte // changed keys only
	oldData map[string][]byte // previous values of changed keys that existed
	created []string          // keys that did not exist
	resumed bool
	keys    []string // changed (or, when resumed, recorded) keys
	result  SecretResult
}

// Rotate rotates the Secrets of o.
func Rotate(ctx context.Context, c Clients, o Options) (*Result, error) {
	o.defaults()
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if o.DryRun != DryRunNone {
		res.DryRun = string(o.DryRun)
	}
	if len(o.Secrets) == 0 {
		return nil, errors.New("no Secret named: give one or more names, or -l SELECTOR")
	}
	if len(o.Changes) == 0 {
		return nil, errors.New("nothing to change: give --key with --generate, --from-file, --from-stdin, --url-password or --json-field")
	}

	// 1. Read and plan everything; any bad input stops here, before a write.
	var plans []*planned
	for _, name := range o.Secrets {
		p, err := o.plan(ctx, c, name)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
		res.Secrets = append(res.Secrets, p.result)
	}
	if err := checkTargets(ctx, c, o.Namespace, o.ExtraTargets); err != nil {
		return nil, err
	}
	ix, err := consumers.NewIndex(ctx, c.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	targets := collectTargets(ix, plans, o.ExtraTargets, res)
	if o.DryRun == DryRunClient {
		return res, nil
	}

	// 2. Write: previous values first, then the new ones, every write
	// guarded by the resourceVersion read in step 1.
	writes := false
	for _, p := range plans {
		writes = writes || !p.resumed
	}
	if writes && o.DryRun == DryRunNone && o.BeforeWrite != nil {
		if err := o.BeforeWrite(ctx); err != nil {
			return nil, err
		}
	}
	for i, p := range plans {
		if p.resumed {
			fmt.Fprintf(o.Progress, "secret/%s: resuming generation %d: new values were already written by an interrupted run\n", p.secret.Name, p.result.Generation)
			continue
		}
		if err := o.write(ctx, c, p); err != nil {
			if i == 0 && o.DryRun == DryRunNone && o.AfterFailedWrite != nil {
				o.AfterFailedWrite(ctx)
			}
			return res, err
		}
		res.Secrets[i] = p.result
	}
	for _, p := range plans {
		res.Undo = append(res.Undo, UndoCommand(o.Namespace, p.secret.Name))
	}
	if o.DryRun == DryRunServer {
		return res, nil
	}

	// 3. Restart each workload once, then 4. wait for all of them.
	if !o.Restart {
		for _, p := range plans {
			if err := setPhase(ctx, c, p.secret, v1alpha1.PhaseComplete); err != nil {
				return res, err
			}
		}
		res.Phase = PhaseComplete
		return res, nil
	}
	waitErr := restartAndWait(ctx, c, &o, targets, res)
	if waitErr == nil {
		for _, p := range plans {
			if err := setPhase(ctx, c, p.secret, v1alpha1.PhaseComplete); err != nil {
				return res, err
			}
		}
		res.Phase = PhaseComplete
		return res, nil
	}
	var we *consumers.WaitError
	if !errors.As(waitErr, &we) {
		return res, waitErr
	}
	res.Unhealthy = we.Unhealthy
	res.Phase = PhaseFailed
	for _, p := range plans {
		_ = setPhase(ctx, c, p.secret, v1alpha1.PhaseFailed)
	}
	if !o.UndoOnFailure {
		return res, fmt.Errorf("%w; the new values stay in place: put the previous ones back with %s", waitErr, strings.Join(res.Undo, " && "))
	}
	fmt.Fprintf(o.Progress, "rollout failed; restoring the previous values (--undo-on-failure)\n")
	var stillBad []string
	for _, p := range plans {
		ur, err := Undo(ctx, c, UndoOptions{Namespace: o.Namespace, Name: p.secret.Name, Restart: true, Timeout: o.Timeout,
			By: o.By, Now: o.Now, Progress: o.Progress})
		if err != nil && (ur == nil || ur.Phase != PhaseFailed) {
			return res, fmt.Errorf("%w; undo after the failed rollout also failed: %v", waitErr, err)
		}
		if ur != nil {
			for _, u := range ur.Unhealthy {
				stillBad = append(stillBad, u.Workload.Ref())
			}
		}
	}
	res.Phase = PhaseUndone
	if len(stillBad) > 0 {
		return res, fmt.Errorf("%w; the previous values were restored, but %s still did not become healthy: the failure is not caused by the new values", waitErr, strings.Join(stillBad, ", "))
	}
	return res, fmt.Errorf("%w; the previous values were restored", waitErr)
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.PreviousTTL == 0 {
		o.PreviousTTL = DefaultPrevious
	}
	if o.Timeout == 0 {
		o.Timeout = consumers.DefaultTimeout
	}
	if o.DryRun == "" {
		o.DryRun = DryRunNone
	}
}

// plan reads one Secret, checks it can be rotated and computes its new values.
func (o *Options) plan(ctx context.Context, c Clients, name string) (*planned, error) {
	s, err := c.Kube.CoreV1().Secrets(o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+name, o.Namespace)
	}
	if owner := externalSecretOwner(s); owner != "" {
		return nil, fmt.Errorf("secret/%s is written by ExternalSecret %s (external-secrets.io): a change here would be overwritten; change the value in the secret store and run `kubectl rotate secret %s -n %s --force-sync`", name, owner, name, o.Namespace)
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", name, err)
	}
	p := &planned{secret: s, newData: map[string][]byte{}, oldData: map[string][]byte{}}
	p.result = SecretResult{Namespace: s.Namespace, Name: s.Name}
	if w := helmWarning(s); w != "" {
		p.result.Warnings = append(p.result.Warnings, w)
		fmt.Fprintf(o.Progress, "Warning: %s\n", w)
	}

	// An interrupted run wrote the values but did not see consumers healthy:
	// resume it instead of generating again.
	if ph := s.Annotations[v1alpha1.Phase]; ph == v1alpha1.PhaseWritten || ph == v1alpha1.PhaseFailed {
		p.resumed = true
		p.keys = splitKeys(s.Annotations[v1alpha1.Keys])
		p.result.Resumed = true
		p.result.Generation = gen
		p.result.Previous = s.Annotations[v1alpha1.Previous]
		fps := map[string]string{}
		_ = jsonUnmarshal(s.Annotations[v1alpha1.Fingerprints], &fps)
		for _, k := range p.keys {
			p.result.Keys = append(p.result.Keys, KeyChange{Key: k, New: fps[k]})
		}
		return p, nil
	}

	if ptr.Deref(s.Immutable, false) {
		return nil, fmt.Errorf("secret/%s is immutable: its data cannot change; create a new Secret and point the workloads at it", name)
	}
	for _, ch := range o.Changes {
		old, exists := s.Data[ch.Key]
		if !exists && s.StringData != nil {
			_, exists = s.StringData[ch.Key]
		}
		if !exists && !o.CreateKeys {
			return nil, fmt.Errorf("secret/%s has no key %q (keys: %s): check the name, or pass --create-key to add it", name, ch.Key, strings.Join(sortedKeys(s.Data), ", "))
		}
		v, err := ch.Make(old, exists)
		if err != nil {
			return nil, fmt.Errorf("secret/%s key %s: %w", name, ch.Key, err)
		}
		p.newData[ch.Key] = v
		p.keys = append(p.keys, ch.Key)
		kc := KeyChange{Key: ch.Key, Source: ch.Source, New: values.Fingerprint(v), Created: !exists}
		if ch.Generated && o.DryRun == DryRunClient {
			kc.New = "(generated)"
		}
		if exists {
			p.oldData[ch.Key] = old
			kc.Old = values.Fingerprint(old)
		} else {
			p.created = append(p.created, ch.Key)
		}
		p.result.Keys = append(p.result.Keys, kc)
	}
	p.result.Generation = gen + 1
	if o.KeepPrevious {
		p.result.Previous = CompanionName(name)
		exp := metav1.NewTime(o.Now().Add(o.PreviousTTL).UTC().Truncate(time.Second))
		p.result.ExpiresAt = &exp
	}
	return p, nil
}

// write stores the previous values in the companion, then the new values
// in the Secret, with the Secret's read resourceVersion as precondition.
func (o *Options) write(ctx context.Context, c Clients, p *planned) error {
	s := p.secret.DeepCopy()
	now := o.Now().UTC().Truncate(time.Second)
	var dryRun []string
	if o.DryRun == DryRunServer {
		dryRun = []string{metav1.DryRunAll}
	}
	if o.KeepPrevious {
		if err := o.writeCompanion(ctx, c, p, now, dryRun); err != nil {
			return err
		}
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range p.newData {
		s.Data[k] = v
		delete(s.StringData, k)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	fps := map[string]string{}
	for _, kc := range p.result.Keys {
		fps[kc.Key] = kc.New
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(now), Action: v1alpha1.ActionRotate, Generation: p.result.Generation, Keys: fps, By: o.By}
	if err := v1alpha1.Apply(s.Annotations, entry, v1alpha1.PhaseWritten); err != nil {
		return fmt.Errorf("secret/%s: %w", s.Name, err)
	}
	if o.Method != "" {
		s.Annotations[v1alpha1.Method] = o.Method
	}
	if o.KeepPrevious {
		s.Annotations[v1alpha1.Previous] = CompanionName(s.Name)
	} else {
		delete(s.Annotations, v1alpha1.Previous)
	}
	updated, err := c.Kube.CoreV1().Secrets(o.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: dryRun})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("secret/%s changed while it was being rotated (resourceVersion %s is stale): nothing was written to it; re-run the command", s.Name, s.ResourceVersion)
		}
		return describeAPIError(err, "update", "secret/"+s.Name, o.Namespace)
	}
	if o.DryRun == DryRunNone {
		p.secret = updated
		fmt.Fprintf(o.Progress, "secret/%s: %s changed (generation %d)%s\n", s.Name, strings.Join(p.keys, ", "), p.result.Generation, previousNote(p.result))
	}
	return nil
}

func previousNote(r SecretResult) string {
	if r.Previous == "" {
		return "; previous values not kept"
	}
	return "; previous values in secret/" + r.Previous
}

// writeCompanion creates or replaces NAME-previous with the values the
// Secret holds now. It refuses to touch a Secret of that name that is not
// this Secret's companion.
func (o *Options) writeCompanion(ctx context.Context, c Clients, p *planned, now time.Time, dryRun []string) error {
	src := p.secret
	name := CompanionName(src.Name)
	comp := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: src.Namespace,
			Labels:    map[string]string{v1alpha1.CompanionOf: src.Name, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy},
			Annotations: map[string]string{
				v1alpha1.Source:     src.Name,
				v1alpha1.RotatedAt:  now.Format(time.RFC3339),
				v1alpha1.ExpiresAt:  p.result.ExpiresAt.Format(time.RFC3339),
				v1alpha1.Generation: fmt.Sprint(p.result.Generation),
				v1alpha1.Keys:       strings.Join(sortedKeys(p.oldData), ","),
				CreatedKeys:         strings.Join(p.created, ","),
			},
			// Deleted with its source Secret.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: src.Name, UID: src.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: p.oldData,
	}
	secrets := c.Kube.CoreV1().Secrets(src.Namespace)
	existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, comp, metav1.CreateOptions{FieldManager: FieldManager, DryRun: dryRun})
		if err != nil {
			return describeAPIError(err, "create", "secret/"+name, src.Namespace)
		}
		return nil
	case err != nil:
		return describeAPIError(err, "get", "secret/"+name, src.Namespace)
	}
	if existing.Labels[v1alpha1.CompanionOf] != src.Name {
		return fmt.Errorf("secret/%s exists but is not kube-rotate's copy of secret/%s's previous values: rename it, or rotate with --no-keep-previous", name, src.Name)
	}
	comp.ResourceVersion = existing.ResourceVersion
	if _, err := secrets.Update(ctx, comp, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: dryRun}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("secret/%s changed while it was being written: nothing was rotated; re-run the command", name)
		}
		return describeAPIError(err, "update", "secret/"+name, src.Namespace)
	}
	return nil
}

// CreatedKeys on a companion lists keys the rotation added, so undo removes them.
const CreatedKeys = v1alpha1.Prefix + "created-keys"

// collectTargets finds the consumers of every changed key and returns the
// restartable ones, each once, plus the extra targets.
func collectTargets(ix *consumers.Index, plans []*planned, extra []consumers.Workload, res *Result) []consumers.Workload {
	seen := map[string]bool{}
	var targets []consumers.Workload
	for _, p := range plans {
		for _, w := range ix.UsersOf(p.secret.Name, p.keys) {
			id := w.Kind + "/" + w.Namespace + "/" + w.Name
			if seen[id] {
				continue
			}
			seen[id] = true
			res.Consumers = append(res.Consumers, w)
			if w.Restart {
				targets = append(targets, w)
			}
		}
	}
	for _, w := range extra {
		id := w.Kind + "/" + w.Namespace + "/" + w.Name
		if seen[id] {
			continue
		}
		seen[id] = true
		w.Restart = true
		w.Note = "named with --restart-target"
		res.Consumers = append(res.Consumers, w)
		targets = append(targets, w)
	}
	return targets
}

// restartAndWait restarts every target once, then waits for all.
func restartAndWait(ctx context.Context, c Clients, o *Options, targets []consumers.Workload, res *Result) error {
	restarted, err := consumers.RestartAndWait(ctx, c.Kube, c.Dynamic, targets, o.Progress, o.Timeout)
	res.Restarted = append(res.Restarted, restarted...)
	var we *consumers.WaitError
	if err != nil && !errors.As(err, &we) && len(restarted) < len(targets) {
		w := targets[len(restarted)]
		return describeAPIError(err, "patch", w.Ref(), w.Namespace)
	}
	return err
}

// setPhase records the rotation's phase on the Secret.
func setPhase(ctx context.Context, c Clients, s *corev1.Secret, phase string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.Phase, phase)
	_, err := c.Kube.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return describeAPIError(err, "patch", "secret/"+s.Name, s.Namespace)
	}
	return nil
}

func externalSecretOwner(s *corev1.Secret) string {
	for _, o := range s.OwnerReferences {
		if o.Kind == "ExternalSecret" && strings.HasPrefix(o.APIVersion, externalSecretGr+"/") {
			return o.Name
		}
	}
	return ""
}

func helmWarning(s *corev1.Secret) string {
	release := s.Annotations["meta.helm.sh/release-name"]
	if release == "" && s.Labels[v1alpha1.ManagedByLabel] != "Helm" {
		return ""
	}
	if release == "" {
		release = "(unknown release)"
	}
	return fmt.Sprintf("secret/%s is managed by Helm release %s: a later `helm upgrade` may overwrite the rotated values; update the chart's values as well", s.Name, release)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func splitKeys(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// equalData reports whether two data maps hold the same values.
func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// checkTargets reads every --restart-target before anything is written: a
// workload that is not there is bad input, refused with nothing changed.
func checkTargets(ctx context.Context, c Clients, namespace string, ws []consumers.Workload) error {
	for _, w := range ws {
		var err error
		switch w.Kind {
		case consumers.KindDeployment:
			_, err = c.Kube.AppsV1().Deployments(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		case consumers.KindStatefulSet:
			_, err = c.Kube.AppsV1().StatefulSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		case consumers.KindDaemonSet:
			_, err = c.Kube.AppsV1().DaemonSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		}
		if err != nil {
			return describeAPIError(err, "get", w.Ref(), namespace)
		}
	}
	return nil
}
