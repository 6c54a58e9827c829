package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/delivery"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// world is secret/app (key a) read by deployment/web1 and deployment/web2,
// with a fake API that counts restarts and fails what fail says.
type world struct {
	t        *testing.T
	c        Clients
	kc       *fake.Clientset
	dyn      *dynamicfake.FakeDynamicClient
	restarts map[string]int
	fail     func(a k8stesting.Action) error
}

func reader(name string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "A",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "a"}}}}}}}}}}
}

// rollout is the Deployment as the waits see it (the dynamic client).
func rollout(t *testing.T, name string, healthy bool) *unstructured.Unstructured {
	observed := int64(2)
	if !healthy {
		observed = 1
	}
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func newWorld(t *testing.T, app *corev1.Secret, web2Healthy bool) *world {
	t.Helper()
	w := &world{t: t, restarts: map[string]int{}}
	w.kc = fake.NewClientset(app, reader("web1"), reader("web2"))
	w.dyn = dynamicfake.NewSimpleDynamicClient(scheme.Scheme, rollout(t, "web1", true), rollout(t, "web2", web2Healthy))
	w.c = Clients{Kube: w.kc, Dynamic: w.dyn}
	// The fake lists every Deployment whatever the field selector; the
	// waits list one by name.
	w.dyn.PrependReactor("list", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name, ok := a.(k8stesting.ListAction).GetListRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return false, nil, nil
		}
		obj, err := w.dyn.Tracker().Get(deployments, a.GetNamespace(), name)
		if err != nil {
			return true, nil, err
		}
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": map[string]any{}}}
		list.Items = append(list.Items, *obj.(*unstructured.Unstructured))
		return true, list, nil
	})
	w.dyn.PrependWatchReactor("deployments", func(a k8stesting.Action) (bool, watch.Interface, error) {
		name, ok := a.(k8stesting.WatchAction).GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return false, nil, nil
		}
		all, err := w.dyn.Tracker().Watch(deployments, a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		return true, watch.Filter(all, func(e watch.Event) (watch.Event, bool) {
			o, ok := e.Object.(metav1.Object)
			return e, ok && o.GetName() == name
		}), nil
	})
	w.kc.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if w.fail != nil {
			if err := w.fail(a); err != nil {
				return true, nil, err
			}
		}
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "deployments" {
			w.restarts[p.GetName()]++
		}
		return false, nil, nil
	})
	return w
}

func (w *world) healthy(name string) {
	w.t.Helper()
	if _, err := w.dyn.Resource(deployments).Namespace("ns").Update(context.Background(), rollout(w.t, name, true), metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) secret(name string) *corev1.Secret {
	w.t.Helper()
	return get(w.t, w.c, name)
}

func (w *world) writes() []string {
	var out []string
	for _, a := range w.kc.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func appSecret(mutate ...func(*corev1.Secret)) *corev1.Secret {
	return secret("app", map[string]string{"a": "old-a"}, mutate...)
}

func rotateOpts(value string, progress *bytes.Buffer) Options {
	o := opts(setTo("a", value))
	o.Restart, o.Timeout = true, 300*time.Millisecond
	if progress != nil {
		o.Progress = progress
	}
	return o
}

// failing returns a fail func for one kind of request, matched by verb,
// resource, name and (for patches) a part of the body.
func failing(verb, resource, name, body string) func(a k8stesting.Action) error {
	return func(a k8stesting.Action) error {
		if a.GetVerb() != verb || a.GetResource().Resource != resource {
			return nil
		}
		got := ""
		switch a := a.(type) {
		case k8stesting.CreateAction:
			got = a.GetObject().(metav1.Object).GetName()
		case k8stesting.UpdateAction:
			got = a.GetObject().(metav1.Object).GetName()
		case k8stesting.PatchAction:
			got = a.GetName()
			if !strings.Contains(string(a.GetPatch()), body) {
				return nil
			}
		}
		if got != name {
			return nil
		}
		return errBoom
	}
}

// A run that fails at any step leaves what a re-run of the same command
// resumes: the values written once, the previous ones kept, each workload
// restarted once where the journal says it was restarted.
func TestRotateResumesAtEveryStep(t *testing.T) {
	tests := []struct {
		name string
		fail func(a k8stesting.Action) error
		// web2 never becomes healthy in the first run.
		unhealthy bool
		step      string
		// written: the first run's value stays (the re-run resumes).
		written bool
		// restarts over both runs.
		restarts map[string]int
		// undo: the failure names the undo command.
		undo, afterFailedWrite bool
	}{
		{name: "keep-previous fails", fail: failing("create", "secrets", "app-previous", ""), step: StepKeepPrevious,
			restarts: map[string]int{"web1": 1, "web2": 1}, afterFailedWrite: true},
		{name: "write fails", fail: failing("update", "secrets", "app", ""), step: StepWrite,
			restarts: map[string]int{"web1": 1, "web2": 1}, afterFailedWrite: true},
		{name: "restart of the second workload fails", fail: failing("patch", "deployments", "web2", ""), step: StepRestart, written: true,
			restarts: map[string]int{"web1": 1, "web2": 1}, undo: true},
		{name: "journal write after the restarts fails", fail: failing("patch", "secrets", "app", `"`+JournalAnnotation+`":"`), step: StepRestart, written: true,
			// the journal does not say they were restarted, their pod
			// templates do (v1alpha1.RestartedFor): not restarted again
			restarts: map[string]int{"web1": 1, "web2": 1}, undo: true},
		{name: "wait fails", unhealthy: true, step: StepWait, written: true,
			restarts: map[string]int{"web1": 1, "web2": 1}, undo: true},
		{name: "complete fails", fail: failing("patch", "secrets", "app", `"`+v1alpha1.Phase+`":"complete"`), step: StepComplete, written: true,
			restarts: map[string]int{"web1": 1, "web2": 1}, undo: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, appSecret(), !tt.unhealthy)
			w.fail = tt.fail
			var progress bytes.Buffer
			o := rotateOpts("first", &progress)
			// A token handed over before the first write is taken back when
			// nothing could be written.
			o.Handover = &Handover{Target: delivery.Target{Namespace: "ns", Secret: "app-token", Key: "token"}, Token: []byte("tok")}
			_, err := Rotate(context.Background(), w.c, o)
			_, terr := w.kc.CoreV1().Secrets("ns").Get(context.Background(), "app-token", metav1.GetOptions{})
			tookBack := apierrors.IsNotFound(terr)
			var serr *procedure.StepError
			if !errors.As(err, &serr) || serr.Step != tt.step || !strings.Contains(err.Error(), "re-run the same command to resume") {
				t.Fatalf("first run: %v, want step %s to fail", err, tt.step)
			}
			if got := strings.Contains(err.Error(), "or undo with kubectl rotate undo secret/app -n ns"); got != tt.undo {
				t.Errorf("first run: %v: names the undo command: %v, want %v", err, got, tt.undo)
			}
			if tookBack != tt.afterFailedWrite {
				t.Errorf("token taken back: %v (%v), want %v", tookBack, terr, tt.afterFailedWrite)
			}
			if tt.step == StepWait {
				want := "step 4 of 5 (wait) failed: 1 workload(s) did not become healthy: deployment/web2 (not rolled out within 300ms"
				if !strings.HasPrefix(err.Error(), want) {
					t.Errorf("wait failure:\n%s\nwant it to start with\n%s", err, want)
				}
				if ph := w.secret("app").Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseFailed {
					t.Errorf("phase after the failed wait %q, want failed", ph)
				}
			}

			w.fail = nil
			w.healthy("web2")
			progress.Reset()
			res, err := Rotate(context.Background(), w.c, rotateOpts("second", &progress))
			if err != nil {
				t.Fatalf("re-run: %v\n%s", err, progress.String())
			}
			s := w.secret("app")
			want := "second"
			if tt.written {
				want = "first"
				if !strings.Contains(progress.String(), "resuming generation 1") {
					t.Errorf("re-run does not say it resumes:\n%s", progress.String())
				}
			}
			if got := string(s.Data["a"]); got != want {
				t.Errorf("value after the re-run %q, want %q", got, want)
			}
			if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" {
				t.Errorf("after the re-run: phase %q generation %q, want complete and 1", s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
			}
			if _, ok := s.Annotations[JournalAnnotation]; ok {
				t.Error("the journal is left on the Secret")
			}
			if got := string(w.secret("app-previous").Data["a"]); got != "old-a" {
				t.Errorf("companion holds %q, want the old value", got)
			}
			if len(w.restarts) != len(tt.restarts) || w.restarts["web1"] != tt.restarts["web1"] || w.restarts["web2"] != tt.restarts["web2"] {
				t.Errorf("restarts %v, want %v", w.restarts, tt.restarts)
			}
			if res.Phase != PhaseComplete || strings.Join(res.Restarted, ",") != "deployment/web1,deployment/web2" {
				t.Errorf("result: phase %s, restarted %v", res.Phase, res.Restarted)
			}
		})
	}
}

// journal puts a Record on secret/app the way secretJournal writes it.
func journal(proc string, facts map[string]any, steps ...string) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		r := &procedure.Record{Procedure: proc, Started: fixedNow, Updated: fixedNow, Steps: map[string]time.Time{}}
		for _, st := range steps {
			r.Steps[st] = fixedNow
		}
		for k, v := range facts {
			if err := r.Put(k, v); err != nil {
				panic(err)
			}
		}
		b, _ := json.Marshal(r)
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[JournalAnnotation] = string(b)
	}
}

// written marks secret/app as written by an interrupted rotation.
func written(gen string) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		s.Data["a"] = []byte("written")
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[v1alpha1.Phase] = v1alpha1.PhaseWritten
		s.Annotations[v1alpha1.Generation] = gen
		s.Annotations[v1alpha1.Keys] = "a"
		s.Annotations[v1alpha1.RotatedAt] = "2026-11-23T11:00:00Z"
		s.Annotations[v1alpha1.Previous] = "app-previous"
	}
}

func idOf(gen string) map[string]string {
	return map[string]string{"app": "uid uid-name generation " + gen + " rotated-at 2026-11-23T11:00:00Z fingerprints "}
}

const rotateApp = "rotate secret/app -n ns"

// The objects win over the journal: restarts it records for another write,
// another procedure or a finished rotation are done again; the journal is
// honoured only for the write in place.
func TestRotateDerivedStateWinsOverAStaleJournal(t *testing.T) {
	restartedBoth := []string{"deployment/web1", "deployment/web2"}
	tests := []struct {
		name     string
		app      *corev1.Secret
		value    string // after the run
		gen      string
		restarts int // of each workload
	}{
		{"journal for an earlier write", appSecret(written("3"), journal(rotateApp, map[string]any{FactWritten: idOf("2"), FactRestarted: restartedBoth}, StepRestart)),
			"written", "3", 1},
		{"journal for the write in place", appSecret(written("3"), journal(rotateApp, map[string]any{FactWritten: idOf("3"), FactRestarted: restartedBoth}, StepRestart)),
			"written", "3", 0},
		{"restarts journaled but the step not marked", appSecret(written("3"), journal(rotateApp, map[string]any{FactWritten: idOf("3"), FactRestarted: []string{"deployment/web1"}})),
			"written", "3", -1},
		{"journal of an undo", appSecret(written("3"), journal("undo secret/app -n ns", map[string]any{FactWritten: idOf("3"), FactRestarted: restartedBoth}, StepRestart)),
			"written", "3", 1},
		{"unreadable journal", appSecret(written("3"), func(s *corev1.Secret) { s.Annotations[JournalAnnotation] = "{not json" }),
			"written", "3", 1},
		{"every step marked, nothing written", appSecret(journal(rotateApp, map[string]any{FactWritten: map[string]string{"app": "uid uid-name generation 1 rotated-at 2026-11-23T12:00:00Z fingerprints {}"}, FactRestarted: restartedBoth},
			StepKeepPrevious, StepWrite, StepRestart, StepWait, StepComplete)),
			"new", "1", 1},
		{"journal left by a finished rotation", appSecret(written("3"), func(s *corev1.Secret) { s.Annotations[v1alpha1.Phase] = v1alpha1.PhaseComplete },
			journal(rotateApp, map[string]any{FactWritten: idOf("3"), FactRestarted: restartedBoth}, StepRestart)),
			"new", "4", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.app, true)
			var progress bytes.Buffer
			res, err := Rotate(context.Background(), w.c, rotateOpts("new", &progress))
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			s := w.secret("app")
			if got := string(s.Data["a"]); got != tt.value || s.Annotations[v1alpha1.Generation] != tt.gen || s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete {
				t.Errorf("value %q generation %s phase %s, want %q %s complete", got, s.Annotations[v1alpha1.Generation], s.Annotations[v1alpha1.Phase], tt.value, tt.gen)
			}
			if _, ok := s.Annotations[JournalAnnotation]; ok {
				t.Error("the journal is left on the Secret")
			}
			want := map[string]int{"web1": tt.restarts, "web2": tt.restarts}
			if tt.restarts == -1 { // web1 journaled, web2 not
				want = map[string]int{"web1": 0, "web2": 1}
				if !strings.Contains(progress.String(), "deployment/web1: restarted already by an interrupted run") {
					t.Errorf("progress does not say web1 is not restarted again:\n%s", progress.String())
				}
			}
			if w.restarts["web1"] != want["web1"] || w.restarts["web2"] != want["web2"] {
				t.Errorf("restarts %v, want %v", w.restarts, want)
			}
			if strings.Join(res.Restarted, ",") != strings.Join(restartedBoth, ",") {
				t.Errorf("result restarted %v, want %v", res.Restarted, restartedBoth)
			}
		})
	}
}

// Plan is the dry-run list: every step, whether it is done, nothing
// written.
func TestRotatePlanListsTheSteps(t *testing.T) {
	tests := []struct {
		name string
		app  *corev1.Secret
		done string
	}{
		{"fresh", appSecret(), "-----"},
		{"written, restarts journaled", appSecret(written("3"), journal(rotateApp, map[string]any{FactWritten: idOf("3"), FactRestarted: []string{"deployment/web1", "deployment/web2"}}, StepRestart)), "xxx--"},
		{"written, restarts journaled for another write", appSecret(written("3"), journal(rotateApp, map[string]any{FactWritten: idOf("2")}, StepRestart)), "xx---"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.app, true)
			res, steps, err := Plan(context.Background(), w.c, rotateOpts("new", nil))
			if err != nil {
				t.Fatal(err)
			}
			var names, done []string
			for _, s := range steps {
				names = append(names, s.Name)
				if s.Done {
					done = append(done, "x")
				} else {
					done = append(done, "-")
				}
			}
			if got := strings.Join(names, ","); got != "keep-previous,write,restart,wait,complete" {
				t.Errorf("steps %s", got)
			}
			if got := strings.Join(done, ""); got != tt.done {
				t.Errorf("done %s, want %s", got, tt.done)
			}
			if res.DryRun != string(DryRunClient) || res.Phase != PhasePlanned {
				t.Errorf("result %+v", res)
			}
			if wr := w.writes(); len(wr) > 0 {
				t.Errorf("Plan wrote: %v", wr)
			}
		})
	}
}

// Undo is a procedure too: a failed wait is resumed by running the undo
// again, without restarting twice.
func TestUndoResumesWithoutRestartingTwice(t *testing.T) {
	w := newWorld(t, appSecret(), true)
	if _, err := Rotate(context.Background(), w.c, rotateOpts("new", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.dyn.Resource(deployments).Namespace("ns").Update(context.Background(), rollout(t, "web2", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	uo := UndoOptions{Namespace: "ns", Name: "app", Restart: true, Timeout: 300 * time.Millisecond, Now: func() time.Time { return fixedNow }}
	ur, err := Undo(context.Background(), w.c, uo)
	var serr *procedure.StepError
	if !errors.As(err, &serr) || serr.Step != StepWait || ur.Phase != PhaseFailed || strings.Contains(err.Error(), "undo with") {
		t.Fatalf("undo with an unhealthy consumer: %v (phase %s)", err, ur.Phase)
	}
	if !strings.HasPrefix(err.Error(), "step 3 of 4 (wait) failed: 1 workload(s) did not become healthy: deployment/web2") {
		t.Errorf("undo failure: %v", err)
	}
	if _, ok := journaled(w.secret("app")); !ok {
		t.Error("the failed undo journaled no restarts")
	}
	w.healthy("web2")
	var progress bytes.Buffer
	uo.Progress = &progress
	if _, err := Undo(context.Background(), w.c, uo); err != nil {
		t.Fatal(err)
	}
	s := w.secret("app")
	if string(s.Data["a"]) != "old-a" || s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "2" {
		t.Errorf("after the undo: %q phase %s generation %s", s.Data["a"], s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
	}
	if _, ok := s.Annotations[JournalAnnotation]; ok {
		t.Error("the journal is left on the Secret")
	}
	if w.restarts["web1"] != 2 || w.restarts["web2"] != 2 {
		t.Errorf("restarts %v, want 2 each (the rotation's and the undo's)", w.restarts)
	}
	if !strings.Contains(progress.String(), "already restored by an interrupted undo; resuming") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// --undo-on-failure: the wait's failure, then the previous values back.
func TestUndoOnFailure(t *testing.T) {
	w := newWorld(t, appSecret(), false)
	o := rotateOpts("new", nil)
	o.UndoOnFailure = true
	res, err := Rotate(context.Background(), w.c, o)
	want := "1 workload(s) did not become healthy: deployment/web2 (not rolled out within 300ms; last status: Waiting for deployment spec update to be observed); the previous values were restored, but deployment/web2 still did not become healthy: the failure is not caused by the new values"
	if err == nil || err.Error() != want {
		t.Fatalf("err:\n%v\nwant:\n%s", err, want)
	}
	if res.Phase != PhaseUndone || string(w.secret("app").Data["a"]) != "old-a" {
		t.Errorf("phase %s, value %q", res.Phase, w.secret("app").Data["a"])
	}
}

// Every journal write carries the resourceVersion read, and a journal
// another run changed is a conflict, not overwritten.
func TestJournalPreconditions(t *testing.T) {
	w := newWorld(t, appSecret(func(s *corev1.Secret) { s.ResourceVersion = "7" }), true)
	ctx := context.Background()
	j := newSecretJournal(w.kc, "ns", "app", rotateApp, StepRestart)
	r, err := j.Load(ctx)
	if err != nil || r != nil {
		t.Fatalf("load: %v %v", r, err)
	}
	r = &procedure.Record{Procedure: rotateApp}
	r.Mark(StepKeepPrevious, fixedNow)
	if err := j.Save(ctx, r); err != nil || len(w.writes()) != 0 {
		t.Fatalf("a Record with nothing the objects cannot show was written: %v %v", err, w.writes())
	}
	_ = r.Put(FactRestarted, []string{"deployment/web1"})
	if err := j.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	var body map[string]map[string]any
	acts := w.kc.Actions()
	if err := json.Unmarshal(acts[len(acts)-1].(k8stesting.PatchAction).GetPatch(), &body); err != nil || body["metadata"]["resourceVersion"] != "7" {
		t.Errorf("journal write %v without the resourceVersion precondition (%v)", body, err)
	}
	if got, ok := journaled(w.secret("app")); !ok || got.Marked(StepKeepPrevious) {
		t.Errorf("journal %+v: marks of derived steps are not written", got)
	}
	n := len(w.writes())
	r.Updated = fixedNow.Add(time.Hour)
	if err := j.Save(ctx, r); err != nil || len(w.writes()) != n {
		t.Errorf("a Save that changes only the time wrote (%v)", err)
	}

	// Another run writes the journal: this one's next Save is a conflict.
	other := newSecretJournal(w.kc, "ns", "app", rotateApp, StepRestart)
	r2, err := other.Load(ctx)
	if err != nil || r2 == nil {
		t.Fatalf("other load: %v", err)
	}
	_ = r2.Put(FactRestarted, []string{"deployment/web1", "deployment/web2"})
	if err := other.Save(ctx, r2); err != nil {
		t.Fatal(err)
	}
	_ = r.Put(FactRestarted, []string{"deployment/web2"})
	if err := j.Save(ctx, r); !errors.Is(err, procedure.ErrConflict) {
		t.Errorf("save over another run's journal: %v, want a conflict", err)
	}
	if err := j.Delete(ctx); !errors.Is(err, procedure.ErrConflict) {
		t.Errorf("delete of another run's journal: %v, want a conflict", err)
	}
	if err := other.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.secret("app").Annotations[JournalAnnotation]; ok {
		t.Error("delete left the journal")
	}
}

func journaled(s *corev1.Secret) (*procedure.Record, bool) {
	raw := s.Annotations[JournalAnnotation]
	if raw == "" {
		return nil, false
	}
	r := &procedure.Record{}
	if err := json.Unmarshal([]byte(raw), r); err != nil {
		return nil, false
	}
	return r, true
}
