package secret

import (
	"context"
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
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
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
	// On names the cluster (Options.On).
	On string
}

// Undo puts back the values kept in the Secret's companion, removes keys
// the rotation created, restarts the consumers of those keys and waits for
// them: a procedure on the engine with the steps restore (read from the
// objects: the Secret holds the previous values), restart (journaled in
// JournalAnnotation on the Secret, for the restore it was made for), wait
// and complete. Re-running it after an interruption resumes at the first
// step not done; once the previous values are in place and consumers
// healthy it changes nothing.
func Undo(ctx context.Context, c Clients, o UndoOptions) (*Result, error) {
	ro := Options{Namespace: o.Namespace, Timeout: o.Timeout, DryRun: o.DryRun, By: o.By, Now: o.Now, Progress: o.Progress, Restart: o.Restart, On: o.On}
	ro.defaults()
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if ro.DryRun != DryRunNone {
		res.DryRun = string(ro.DryRun)
	}
	s, comp, err := loadCompanion(ctx, c, o.Namespace, o.Name)
	if err != nil {
		return nil, err
	}
	compName := comp.Name
	src, err := externalsecrets.Find(ctx, c.Dynamic, s)
	if err != nil {
		return nil, err
	}
	if src != nil {
		for _, k := range sortedKeys(comp.Data) {
			if src.Owns(k) {
				return nil, fmt.Errorf("key %s of secret/%s is written by %s (creationPolicy %s): a restored value would be overwritten; put the previous value (kept in secret/%s) back in the secret store and run `%s secret %s -n %s --force-sync`", k, o.Name, src.Ref(), src.CreationPolicy, compName, display.KubectlRotate(ctx), o.Name, o.Namespace)
			}
		}
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
	targets := collectTargets(ix, []*planned{p}, nil, ro.Restart, res)
	if ro.DryRun == DryRunClient {
		return res, nil
	}
	acting(&ro, "restoring")
	u := &undoing{o: &ro, c: c, s: s, restored: restored, keys: keys, fps: fps, sr: sr, res: res, targets: targets}
	if alreadyRestored && ro.DryRun == DryRunNone {
		fmt.Fprintf(ro.Progress, "secret/%s: previous values already restored by an interrupted undo; resuming\n", o.Name)
	}
	rec, err := u.procedure().Run(ctx)
	res.Restarted = append(res.Restarted, restartedIn(rec)...)
	return res, err
}

// undoing is one run of Undo.
type undoing struct {
	o        *Options
	c        Clients
	s        *corev1.Secret // as read at planning
	restored map[string][]byte
	keys     []string
	fps      map[string]string
	sr       SecretResult
	res      *Result
	targets  []consumers.Workload
}

func (u *undoing) name() string {
	return fmt.Sprintf("undo secret/%s -n %s", u.s.Name, u.o.Namespace)
}

// procedure is the undo on the engine; a server dry run is its restore
// step with dryRun=All and no journal.
func (u *undoing) procedure() *procedure.Procedure {
	o := u.o
	j := newSecretJournal(u.c.Kube, o.Namespace, u.s.Name, u.name(), StepRestart)
	rs := &restarts{c: u.c, secrets: inNamespace(o.Namespace, u.s.Name), enabled: o.Restart,
		targets: func() []consumers.Workload { return u.targets }, timeout: o.Timeout, progress: o.Progress,
		res: u.res, journal: j, proc: u.name(), now: o.Now}
	p := &procedure.Procedure{Name: u.name(), Journal: j, Progress: o.Progress, Now: o.Now,
		Steps: []procedure.Step{u.restoreStep(), rs.restartStep(), rs.waitStep(),
			rs.completeStep("record phase complete on secret/" + u.s.Name)}}
	if o.DryRun == DryRunServer {
		p.Steps, p.Journal = p.Steps[:1], nil
	}
	return p
}

func (u *undoing) restoreStep() procedure.Step {
	o := u.o
	return &procedure.Func{StepName: StepRestore, What: "write the values kept in secret/" + CompanionName(u.s.Name) + " back to secret/" + u.s.Name + " (phase written), guarded by the resourceVersion read",
		DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
			if o.DryRun == DryRunServer {
				return false, nil
			}
			cur, err := u.c.Kube.CoreV1().Secrets(o.Namespace).Get(ctx, u.s.Name, metav1.GetOptions{})
			if err != nil {
				return false, describeAPIError(err, "get", "secret/"+u.s.Name, o.Namespace)
			}
			return equalData(u.restored, cur.Data), nil
		},
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			if u.sr.Resumed {
				return nil // a server dry run of a restore done already
			}
			w := u.s.DeepCopy()
			w.Data = u.restored
			if w.Annotations == nil {
				w.Annotations = map[string]string{}
			}
			entry := v1alpha1.Entry{Time: metav1.NewTime(o.Now().UTC().Truncate(time.Second)), Action: v1alpha1.ActionUndo, Generation: u.sr.Generation, Keys: u.fps, By: o.By}
			if err := v1alpha1.Apply(w.Annotations, entry, v1alpha1.PhaseWritten); err != nil {
				return fmt.Errorf("secret/%s: %w", u.s.Name, err)
			}
			_, err := u.c.Kube.CoreV1().Secrets(o.Namespace).Update(ctx, w, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: o.dryRunOpt()})
			if err != nil {
				if apierrors.IsConflict(err) {
					return fmt.Errorf("secret/%s changed while it was being restored: nothing was written", u.s.Name)
				}
				return describeAPIError(err, "update", "secret/"+u.s.Name, o.Namespace)
			}
			if o.DryRun == DryRunNone {
				fmt.Fprintf(o.Progress, "secret/%s: previous values of %s restored (generation %d)\n", u.s.Name, strings.Join(u.keys, ", "), u.sr.Generation)
			}
			return nil
		},
	}
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
	if users == nil {
		res.Consumers = []consumers.Workload{}
	}
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
		return nil, nil, fmt.Errorf("no previous values for secret/%s: secret/%s not found (removed by `%s finish`, or rotated with --no-keep-previous)", name, compName, display.KubectlRotate(ctx))
	}
	if err != nil {
		return nil, nil, describeAPIError(err, "get", "secret/"+compName, namespace)
	}
	if comp.Labels[v1alpha1.CompanionOf] != name {
		return nil, nil, fmt.Errorf("secret/%s is not kube-rotate's copy of secret/%s's previous values: refusing to use it", compName, name)
	}
	return s, comp, nil
}
