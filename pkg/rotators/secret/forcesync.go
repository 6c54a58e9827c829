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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
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
//
// It runs on the engine with the steps keep-previous, request-sync,
// wait-sync (which records the change, phase written), restart, wait and
// complete, and no journal: a force-sync is not resumed by a re-run (a
// re-run requests another sync), so what it does and says is what it did
// before the engine. Its errors are each step's own, unwrapped.
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
	esObj, err := es.Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil {
		return nil, describeAPIError(err, "get", "externalsecret/"+owner.Name, o.Namespace)
	}
	if err := syncable(esObj); err != nil {
		return nil, err
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", o.Name, err)
	}
	var prevComp *corev1.Secret
	if o.KeepPrevious {
		if prevComp, err = o.checkCompanion(ctx, c, s, gen+1); err != nil {
			return nil, err
		}
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
	collectTargets(ix, []*planned{p}, o.ExtraTargets, o.Restart, res)
	if o.DryRun == DryRunClient {
		return res, nil
	}
	fs := &forceSync{o: &o, c: c, es: es, owner: owner.Name, s: s, gen: gen, keys: keys, p: p, ix: ix, res: res,
		prevComp: prevComp, now: o.Now().UTC().Truncate(time.Second)}
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
	o      *ForceSyncOptions
	c      Clients
	es     dynamic.ResourceInterface
	owner  string
	s      *corev1.Secret // as read at planning
	synced *corev1.Secret // as the operator wrote it
	// prevComp is NAME-previous as it was before this run (nil: none): a
	// sync that changes nothing puts it back.
	prevComp *corev1.Secret
	gen      int64
	keys     []string
	p        *planned
	ix       *consumers.Index
	res      *Result
	targets  []consumers.Workload
	now      time.Time
}

func (fs *forceSync) procedure() *procedure.Procedure {
	o := fs.o
	name := fmt.Sprintf("force-sync secret/%s -n %s", o.Name, o.Namespace)
	rs := &restarts{c: fs.c, namespace: o.Namespace, secrets: []string{o.Name}, enabled: o.Restart,
		targets: func() []consumers.Workload { return fs.targets }, timeout: o.Timeout, progress: o.Progress,
		res: fs.res, proc: name, now: o.Now}
	keep := &procedure.Func{StepName: StepKeepPrevious, What: "keep the current values in secret/" + CompanionName(o.Name),
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			return o.writeCompanion(ctx, fs.c, fs.p, fs.now, o.dryRunOpt())
		}}
	if !o.KeepPrevious {
		keep.What = "previous values not kept (--no-keep-previous)"
		keep.DoneFunc = func(context.Context, *procedure.Record) (bool, error) { return true, nil }
	}
	p := &procedure.Procedure{Name: name, Now: o.Now, Steps: []procedure.Step{
		keep,
		&procedure.Func{StepName: StepRequestSync, What: "set the force-sync annotation on externalsecret/" + fs.owner, DoFunc: fs.request},
		&procedure.Func{StepName: StepWaitSync, What: "wait until externalsecret/" + fs.owner + " changes the data of secret/" + o.Name + ", and record the change (phase written)", DoFunc: fs.waitSync},
		rs.restartStep(), rs.waitStep(),
		rs.completeStep("record phase complete on secret/" + o.Name),
	}}
	if o.DryRun == DryRunServer {
		p.Steps = p.Steps[:2]
	}
	return p
}

func (fs *forceSync) request(ctx context.Context, _ *procedure.Record) error {
	o := fs.o
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ForceSyncAnnotation, strconv.FormatInt(fs.now.UnixNano(), 10))
	if _, err := fs.es.Patch(ctx, fs.owner, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager, DryRun: o.dryRunOpt()}); err != nil {
		return describeAPIError(err, "patch", "externalsecret/"+fs.owner, o.Namespace)
	}
	if o.DryRun == DryRunNone {
		fmt.Fprintf(o.Progress, "externalsecret/%s: force-sync requested; waiting for it to update secret/%s\n", fs.owner, o.Name)
	}
	return nil
}

func (fs *forceSync) waitSync(ctx context.Context, _ *procedure.Record) error {
	o, s, res := fs.o, fs.s, fs.res
	synced, err := waitForDataChange(ctx, fs.c, s, o.SyncTimeout)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out") {
			return fmt.Errorf("externalsecret/%s did not change secret/%s within %s (%s): is the new value in the secret store? check `kubectl describe externalsecret %s -n %s`", fs.owner, o.Name, o.SyncTimeout, fs.putBack(context.WithoutCancel(ctx)), fs.owner, o.Namespace)
		}
		return err
	}
	fs.synced = synced
	var changed []string
	fps := map[string]string{}
	for _, k := range sortedKeys(synced.Data) {
		if string(synced.Data[k]) != string(s.Data[k]) {
			changed = append(changed, k)
			fps[k] = values.Fingerprint(synced.Data[k])
		}
	}
	for _, k := range fs.keys {
		if _, ok := synced.Data[k]; !ok {
			changed = append(changed, k)
			fps[k] = "(removed)"
		}
	}
	fmt.Fprintf(o.Progress, "secret/%s: %s changed by externalsecret/%s\n", o.Name, strings.Join(changed, ", "), fs.owner)
	// Record on the Secret's metadata only: its data belongs to the operator.
	ann := map[string]string{}
	for k, v := range synced.Annotations {
		ann[k] = v
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(fs.now), Action: v1alpha1.ActionForceSync, Generation: fs.gen + 1, Keys: fps, By: o.By}
	if err := v1alpha1.Apply(ann, entry, v1alpha1.PhaseWritten); err != nil {
		return err
	}
	if o.KeepPrevious {
		ann[v1alpha1.Previous] = CompanionName(o.Name)
	}
	if err := patchAnnotations(ctx, fs.c, synced, ann); err != nil {
		return err
	}
	// Only consumers of keys that really changed are restarted.
	p := fs.p
	res.Consumers = nil
	p.keys = changed
	p.result.Keys = nil
	for _, k := range changed {
		p.result.Keys = append(p.result.Keys, KeyChange{Key: k, Source: "externalsecret/" + fs.owner, Old: values.Fingerprint(s.Data[k]), New: fps[k]})
	}
	res.Secrets = []SecretResult{p.result}
	fs.targets = collectTargets(fs.ix, []*planned{p}, o.ExtraTargets, o.Restart, res)
	res.Undo = nil
	return nil
}

// putBack returns NAME-previous to what it was before the run (deleted if
// there was none), after a sync that changed nothing, and says how it
// left it: the values it held are kept until the new ones are proven. The
// write is conditional on the companion this run wrote.
func (fs *forceSync) putBack(ctx context.Context) string {
	o := fs.o
	name := CompanionName(o.Name)
	if !o.KeepPrevious {
		return "nothing was written"
	}
	secrets := fs.c.Kube.CoreV1().Secrets(o.Namespace)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("secret/%s could not be read back: %v", name, describeAPIError(err, "get", "secret/"+name, o.Namespace))
	}
	if fs.prevComp == nil {
		rv := cur.ResourceVersion
		err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil {
			return fmt.Sprintf("secret/%s, made by this run, could not be removed: %v", name, describeAPIError(err, "delete", "secret/"+name, o.Namespace))
		}
		return fmt.Sprintf("secret/%s, made by this run, was removed", name)
	}
	back := cur.DeepCopy()
	prev := fs.prevComp
	back.Labels, back.Annotations, back.OwnerReferences, back.Type, back.Data = prev.Labels, prev.Annotations, prev.OwnerReferences, prev.Type, prev.Data
	if _, err := secrets.Update(ctx, back, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Sprintf("secret/%s could not be put back as it was: %v", name, describeAPIError(err, "update", "secret/"+name, o.Namespace))
	}
	return fmt.Sprintf("secret/%s is as it was", name)
}

// syncable refuses an ExternalSecret that the External Secrets operator
// would not sync again, so that a force-sync could only time out. The
// rule is ESO's (external-secrets v0.20.4,
// pkg/controllers/externalsecret/externalsecret_controller.go shouldRefresh
// and shouldRefreshPeriodic): a refreshPolicy of CreatedOnce never syncs
// after the first time; Periodic (the default) with a refreshInterval of 0
// never syncs again once synced, force-sync annotation or not; OnChange
// and a positive interval sync when the annotations change.
func syncable(es *unstructured.Unstructured) error {
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
