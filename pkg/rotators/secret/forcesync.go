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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// ForceSyncAnnotation is what the External Secrets operator watches to
// refresh an ExternalSecret at once.
const ForceSyncAnnotation = externalsecrets.ForceSyncAnnotation

// ForceSyncOptions of ForceSync.
type ForceSyncOptions struct {
	// Options: Secrets names the Secrets (in Namespace) written by
	// ExternalSecrets; Changes, if any, are pushed (see Push).
	Options
	// Name is one more Secret to sync (kept for callers that name one).
	Name string
	// ClusterExternalSecret, instead of Secrets, syncs every Secret the
	// ExternalSecrets of that ClusterExternalSecret write, in each
	// namespace it provisioned, by setting force-sync on it.
	ClusterExternalSecret string
	// SyncTimeout bounds the wait for the operator to change the data.
	SyncTimeout time.Duration
}

// ForceSync rotates Secrets that ExternalSecrets write (the Deepdesk
// runbook, seed 001): the new value is set in the external store first
// (by the operator itself through a PushSecret this run owns, when
// Options.Changes are given: see push); this keeps the current values of
// each Secret in NAME-previous (the back-compat copy), sets the
// force-sync annotation on each ExternalSecret (or once on the
// ClusterExternalSecret), waits until the operator has changed each
// Secret's data, and restarts the consumers of the keys that changed,
// each once. The Secrets' data is never written here.
//
// Everything is read and checked before the first write: each Secret
// must be written by an ExternalSecret the operator would sync again
// (externalsecrets.Syncable), and its NAME-previous must hold nothing an
// unfinished rotation still needs.
//
// It runs on the engine with the steps keep-previous, push,
// request-sync, wait-sync (which records the change, phase written),
// restart, wait and complete, and no journal: a force-sync is not resumed
// by a re-run (a re-run requests another sync, and keeps the
// NAME-previous an interrupted run of the same rotation wrote). Its errors
// are each step's own, unwrapped.
func ForceSync(ctx context.Context, c Clients, o ForceSyncOptions) (*Result, error) {
	o.defaults()
	if o.SyncTimeout == 0 {
		o.SyncTimeout = o.Timeout
	}
	if o.Name != "" {
		o.Secrets = append([]string{o.Name}, o.Secrets...)
	}
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if o.DryRun != DryRunNone {
		res.DryRun = string(o.DryRun)
	}
	fs := &forceSync{o: &o, c: c, res: res, now: o.Now().UTC().Truncate(time.Second)}
	if err := fs.plan(ctx); err != nil {
		return nil, err
	}
	if o.DryRun == DryRunClient {
		return res, nil
	}
	acting(&o.Options, "syncing")
	rec, err := fs.procedure().Run(ctx)
	res.Restarted = append(res.Restarted, restartedIn(rec)...)
	var serr *procedure.StepError
	if errors.As(err, &serr) {
		err = serr.Err
	}
	return res, err
}

// forceSync is one run of ForceSync.
type forceSync struct {
	o       *ForceSyncOptions
	c       Clients
	res     *Result
	targets []*syncTarget
	// requests are the objects force-sync is set on, each once.
	requests []syncRequest
	push     *push
	ix       map[string]*consumers.Index
	restart  []consumers.Workload
	now      time.Time
}

// syncTarget is one Secret a force-sync waits for.
type syncTarget struct {
	s   *corev1.Secret // as read at planning
	src *externalsecrets.Source
	gen int64
	// prevComp is NAME-previous as it was before this run (nil: none): a
	// sync that changes nothing puts it back.
	prevComp *corev1.Secret
	// keepComp: NAME-previous is this rotation's own, written by an
	// interrupted run: it holds the values from before, kept as they are.
	keepComp bool
	p        *planned
	synced   *corev1.Secret // as the operator wrote it; nil until then
}

func (t *syncTarget) ref() string { return "secret/" + t.s.Name }

// syncRequest is an ExternalSecret or ClusterExternalSecret to annotate.
type syncRequest struct {
	res       dynamic.ResourceInterface
	ref, name string
	namespace string
	// cluster: a ClusterExternalSecret, which copies only its
	// ClusterForceSyncAnnotation to its ExternalSecrets.
	cluster bool
}

func (fs *forceSync) plan(ctx context.Context) error {
	o := fs.o
	var refs []types.NamespacedName
	if o.ClusterExternalSecret != "" {
		if len(o.Secrets) > 0 {
			return errors.New("name Secrets or a ClusterExternalSecret to force-sync, not both")
		}
		ces, members, err := externalsecrets.FanOut(ctx, fs.c.Dynamic, o.ClusterExternalSecret)
		if err != nil {
			return err
		}
		for _, m := range members {
			refs = append(refs, types.NamespacedName{Namespace: m.Namespace, Name: m.Secret})
		}
		fs.requests = append(fs.requests, syncRequest{res: fs.c.Dynamic.Resource(externalsecrets.ClusterExternalSecrets), ref: "clusterexternalsecret/" + ces.GetName(), name: ces.GetName(), cluster: true})
	} else {
		refs = inNamespace(o.Namespace, o.Secrets...)
	}
	if len(refs) == 0 {
		return errors.New("name the Secrets to force-sync")
	}
	if len(o.Changes) > 0 && len(refs) != 1 {
		return errors.New("--push makes the new value of one Secret: force-sync one Secret at a time with it")
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref.String()] {
			continue
		}
		seen[ref.String()] = true
		t, err := fs.planTarget(ctx, ref)
		if err != nil {
			return err
		}
		fs.targets = append(fs.targets, t)
		if o.ClusterExternalSecret == "" {
			fs.requests = append(fs.requests, syncRequest{res: fs.c.Dynamic.Resource(externalsecrets.ExternalSecrets).Namespace(ref.Namespace),
				ref: t.src.Ref(), name: t.src.Name, namespace: ref.Namespace})
		}
	}
	if len(o.Changes) > 0 {
		p, err := planPush(ctx, fs.c, fs.targets[0], o.Changes, o.DryRun == DryRunClient)
		if err != nil {
			return err
		}
		fs.push = p
	}
	fs.ix = map[string]*consumers.Index{}
	for _, t := range fs.targets {
		ns := t.s.Namespace
		if fs.ix[ns] == nil {
			ix, err := consumers.NewIndex(ctx, fs.c.Kube, ns)
			if err != nil {
				return err
			}
			fs.ix[ns] = ix
		}
		fs.res.Secrets = append(fs.res.Secrets, t.p.result)
	}
	if err := checkTargets(ctx, fs.c, o.Namespace, o.ExtraTargets); err != nil {
		return err
	}
	fs.collect()
	return nil
}

// planTarget reads one Secret and its ExternalSecret and checks a
// force-sync can rotate it without losing anything.
func (fs *forceSync) planTarget(ctx context.Context, ref types.NamespacedName) (*syncTarget, error) {
	o := fs.o
	s, err := fs.c.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+ref.Name, ref.Namespace)
	}
	src, err := externalsecrets.Find(ctx, fs.c.Dynamic, s)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("secret/%s in namespace %s is not written by an ExternalSecret: --force-sync is for those; rotate it with --key/--generate and the other value flags", s.Name, s.Namespace)
	}
	if src.ExternalSecret == nil {
		return nil, fmt.Errorf("secret/%s in namespace %s is owned by %s, which does not exist: the garbage collector removes such Secrets; recreate the ExternalSecret", s.Name, s.Namespace, src.Ref())
	}
	if err := externalsecrets.Syncable(src.ExternalSecret); err != nil {
		return nil, err
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", s.Name, err)
	}
	t := &syncTarget{s: s, src: src, gen: gen}
	if o.KeepPrevious {
		if t.prevComp, err = CheckCompanion(ctx, fs.c.Kube, s, gen+1, o.ReplacePrevious, o.Now(), "pass --replace-previous"); err != nil {
			return nil, err
		}
		t.keepComp = t.prevComp != nil && t.prevComp.Annotations[v1alpha1.Generation] == fmt.Sprint(gen+1)
	}
	// The operator's keys only: with creationPolicy Merge the others are
	// not its, and a sync does not change them.
	old := map[string][]byte{}
	for _, k := range src.Keys {
		if v, ok := s.Data[k]; ok {
			old[k] = v
		}
	}
	keys := sortedKeys(old)
	p := &planned{secret: s, companion: t.prevComp, keys: keys, oldData: old, newData: map[string][]byte{}}
	p.result = SecretResult{Namespace: s.Namespace, Name: s.Name, Generation: gen + 1}
	for _, k := range keys {
		p.result.Keys = append(p.result.Keys, KeyChange{Key: k, Source: src.Ref(), Old: values.Fingerprint(s.Data[k]), New: "(from the secret store)"})
	}
	if o.KeepPrevious {
		p.result.Previous = CompanionName(s.Name)
		exp := metav1.NewTime(o.Now().Add(o.PreviousTTL).UTC().Truncate(time.Second))
		p.result.ExpiresAt = &exp
	}
	t.p = p
	return t, nil
}

// collect finds the consumers of the keys planned (or, after the sync,
// changed) in every Secret, each workload once.
func (fs *forceSync) collect() {
	o := fs.o
	fs.res.Consumers = nil
	fs.restart = nil
	byNS := map[string][]*planned{}
	var order []string
	for _, t := range fs.targets {
		ns := t.s.Namespace
		if byNS[ns] == nil {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], t.p)
	}
	for i, ns := range order {
		var extra []consumers.Workload
		if i == 0 {
			extra = o.ExtraTargets
		}
		fs.restart = append(fs.restart, collectTargets(fs.ix[ns], byNS[ns], extra, o.Restart, fs.res)...)
	}
}

func (fs *forceSync) name() string {
	o := fs.o
	if o.ClusterExternalSecret != "" {
		return "force-sync clusterexternalsecret/" + o.ClusterExternalSecret
	}
	return fmt.Sprintf("force-sync %s -n %s", refs(o.Secrets), o.Namespace)
}

func (fs *forceSync) procedure() *procedure.Procedure {
	o := fs.o
	var written []types.NamespacedName
	for _, t := range fs.targets {
		written = append(written, types.NamespacedName{Namespace: t.s.Namespace, Name: t.s.Name})
	}
	rs := &restarts{c: fs.c, secrets: written, enabled: o.Restart,
		targets: func() []consumers.Workload { return fs.restart }, timeout: o.Timeout, progress: o.Progress,
		res: fs.res, proc: fs.name(), now: o.Now}
	keep := &procedure.Func{StepName: StepKeepPrevious, What: "keep the current values in NAME-previous of each Secret",
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			for _, t := range fs.targets {
				if t.keepComp {
					fmt.Fprintf(o.Progress, "secret/%s: kept as an interrupted run of this rotation left it (it holds the values from before)\n", CompanionName(t.s.Name))
					continue
				}
				if err := o.writeCompanion(ctx, fs.c, t.p, fs.now, o.dryRunOpt()); err != nil {
					return err
				}
			}
			return nil
		}}
	if !o.KeepPrevious {
		keep.What = "previous values not kept (--no-keep-previous)"
		keep.DoneFunc = func(context.Context, *procedure.Record) (bool, error) { return true, nil }
	}
	var reqs []string
	for _, r := range fs.requests {
		reqs = append(reqs, r.ref)
	}
	steps := []procedure.Step{keep}
	if fs.push != nil {
		steps = append(steps, fs.push.step(fs))
	}
	steps = append(steps,
		&procedure.Func{StepName: StepRequestSync, What: "set the force-sync annotation on " + strings.Join(reqs, ", "), DoFunc: fs.request},
		&procedure.Func{StepName: StepWaitSync, What: "wait until the operator changes the data of each Secret, and record the change (phase written)", DoFunc: fs.waitSync},
		rs.restartStep(), rs.waitStep(),
		rs.completeStep("record phase complete on each Secret"),
	)
	if o.DryRun == DryRunServer {
		steps = steps[:len(steps)-5]
	}
	return &procedure.Procedure{Name: fs.name(), Now: o.Now, Steps: steps}
}

// request sets the force-sync annotation to a value it never had: the
// operator syncs when an ExternalSecret's annotations change, so a value
// equal to the last one (two runs in one second) would sync nothing. The
// time is not truncated, unlike the records'.
func (fs *forceSync) request(ctx context.Context, _ *procedure.Record) error {
	o := fs.o
	value := strconv.FormatInt(o.Now().UnixNano(), 10)
	for _, r := range fs.requests {
		key := ForceSyncAnnotation
		if r.cluster {
			key = externalsecrets.ClusterForceSyncAnnotation
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
		if cur, err := r.res.Get(ctx, r.name, metav1.GetOptions{}); err == nil && cur.GetAnnotations()[key] == value {
			patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value+"-1")
		}
		if _, err := r.res.Patch(ctx, r.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager, DryRun: o.dryRunOpt()}); err != nil {
			return describeAPIError(err, "patch", r.ref, r.namespace)
		}
		if o.DryRun == DryRunNone {
			fmt.Fprintf(o.Progress, "%s: force-sync requested\n", r.ref)
		}
	}
	if o.DryRun == DryRunNone {
		fmt.Fprintf(o.Progress, "waiting for the operator to update %d secret(s)\n", len(fs.targets))
	}
	return nil
}

// waitSync waits for every Secret's data to change, within one
// SyncTimeout. Secrets that changed are recorded and their consumers
// restarted even when others did not change; those are put back as they
// were and named in the error.
func (fs *forceSync) waitSync(ctx context.Context, _ *procedure.Record) error {
	o := fs.o
	deadline := time.Now().Add(o.SyncTimeout)
	var late []*syncTarget
	for _, t := range fs.targets {
		synced, err := waitForDataChange(ctx, fs.c, t.s, time.Until(deadline))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out") {
				late = append(late, t)
				continue
			}
			return err
		}
		t.synced = synced
		if err := fs.record(ctx, t); err != nil {
			return err
		}
	}
	if fs.push != nil {
		// Pushed: the store holds the version whether or not the sync came
		// (deletionPolicy None); the PushSecret and its source have done
		// their part.
		fs.push.remove(context.WithoutCancel(ctx), fs)
		if len(late) == 0 {
			if err := fs.push.check(fs.targets[0]); err != nil {
				return err
			}
		}
	}
	var kept []*syncTarget
	for _, t := range fs.targets {
		if t.synced != nil {
			kept = append(kept, t)
		}
	}
	fs.targets = kept
	fs.res.Secrets = nil
	for _, t := range kept {
		fs.res.Secrets = append(fs.res.Secrets, t.p.result)
	}
	fs.collect()
	fs.res.Undo = nil
	if len(late) == 0 {
		return nil
	}
	var msgs []string
	for _, t := range late {
		where := ""
		if o.ClusterExternalSecret != "" {
			where = " in namespace " + t.s.Namespace
		}
		msgs = append(msgs, fmt.Sprintf("%s did not change %s%s within %s (%s)", t.src.Ref(), t.ref(), where, o.SyncTimeout, fs.putBack(context.WithoutCancel(ctx), t)))
	}
	first := late[0]
	return fmt.Errorf("%s: is the new value in the secret store? check `kubectl describe externalsecret %s -n %s`", strings.Join(msgs, "; "), first.src.Name, first.s.Namespace)
}

// record notes what the operator changed in one Secret, on its metadata
// only (its data belongs to the operator), and plans the restarts of the
// consumers of the keys that really changed.
func (fs *forceSync) record(ctx context.Context, t *syncTarget) error {
	o, s, synced := fs.o, t.s, t.synced
	var changed []string
	fps := map[string]string{}
	for _, k := range sortedKeys(synced.Data) {
		if string(synced.Data[k]) != string(s.Data[k]) {
			changed = append(changed, k)
			fps[k] = values.Fingerprint(synced.Data[k])
		}
	}
	for _, k := range t.p.keys {
		if _, ok := synced.Data[k]; !ok {
			changed = append(changed, k)
			fps[k] = "(removed)"
		}
	}
	fmt.Fprintf(o.Progress, "%s: %s changed by %s\n", t.ref(), strings.Join(changed, ", "), t.src.Ref())
	ann := map[string]string{}
	for k, v := range synced.Annotations {
		ann[k] = v
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(fs.now), Action: v1alpha1.ActionForceSync, Generation: t.gen + 1, Keys: fps, By: o.By}
	if err := v1alpha1.Apply(ann, entry, v1alpha1.PhaseWritten); err != nil {
		return err
	}
	if o.KeepPrevious {
		ann[v1alpha1.Previous] = CompanionName(s.Name)
	}
	if err := patchAnnotations(ctx, fs.c, synced, ann); err != nil {
		return err
	}
	p := t.p
	p.keys = changed
	p.result.Keys = nil
	for _, k := range changed {
		p.result.Keys = append(p.result.Keys, KeyChange{Key: k, Source: t.src.Ref(), Old: values.Fingerprint(s.Data[k]), New: fps[k]})
	}
	return nil
}

// putBack returns NAME-previous to what it was before the run (deleted if
// there was none), after a sync that changed nothing, and says how it
// left it: the values it held are kept until the new ones are proven. The
// write is conditional on the companion this run wrote. After a push, the
// store holds the new value and the operator will sync it in time: the
// companion then keeps the values from before, as written.
func (fs *forceSync) putBack(ctx context.Context, t *syncTarget) string {
	o := fs.o
	name := CompanionName(t.s.Name)
	ns := t.s.Namespace
	if !o.KeepPrevious {
		return "nothing was written"
	}
	if t.keepComp {
		return fmt.Sprintf("secret/%s is as an interrupted run of this rotation left it", name)
	}
	if fs.push != nil && fs.push.pushed {
		return fmt.Sprintf("the store holds the pushed value and the operator will sync it later: secret/%s keeps the values from before", name)
	}
	secrets := fs.c.Kube.CoreV1().Secrets(ns)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("secret/%s could not be read back: %v", name, describeAPIError(err, "get", "secret/"+name, ns))
	}
	if t.prevComp == nil {
		rv := cur.ResourceVersion
		err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil {
			return fmt.Sprintf("secret/%s, made by this run, could not be removed: %v", name, describeAPIError(err, "delete", "secret/"+name, ns))
		}
		return fmt.Sprintf("secret/%s, made by this run, was removed", name)
	}
	back := cur.DeepCopy()
	prev := t.prevComp
	back.Labels, back.Annotations, back.OwnerReferences, back.Type, back.Data = prev.Labels, prev.Annotations, prev.OwnerReferences, prev.Type, prev.Data
	if _, err := secrets.Update(ctx, back, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Sprintf("secret/%s could not be put back as it was: %v", name, describeAPIError(err, "update", "secret/"+name, ns))
	}
	return fmt.Sprintf("secret/%s is as it was", name)
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
		if !ok || cur.Name != s.Name || equalData(cur.Data, s.Data) {
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
