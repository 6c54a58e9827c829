package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// everyKind is a plan with a Secret item (set and test hooks) and a
// key-set item (set and test hooks), whose consumers restart once (coalesced):
// secret/db key K is read by deployment/web.
const everyKind = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: every}
spec:
  namespace: ns
  items:
  - name: pw
    secret: {name: db, generate: [{key: K, spec: "hex:16"}]}
    hooks:
      set: {exec: {command: ["./hook.sh"]}}
      test: {exec: {command: ["./hook.sh"]}}
  - name: signing-key
    after: [pw]
    jwks: {secret: diracx-jwks}
    hooks:
      set: {exec: {command: ["./hook.sh"]}}
      test: {exec: {command: ["./hook.sh"]}}
`

// The steps of everyKind, in the engine's order.
var everySteps = []string{"start", "pw/create", "pw/set", "pw/test", "pw/finish",
	"signing-key/create", "signing-key/set", "signing-key/test", "signing-key/finish", "restart"}

const oldK = "old-value-0123456789"

// cluster is a fake cluster for a plan: the Secrets, the key set, a
// Deployment reading secret/db (rolled out, for the dynamic client), and
// the plan's directory with hook.sh, which logs "ITEM STEP" per call.
type cluster struct {
	kc   *fake.Clientset
	o    Options
	dir  string
	keys int // keys in the set before the run
}

func newCluster(t *testing.T, doc string) *cluster {
	t.Helper()
	set, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hook := "#!/bin/sh\necho \"$KUBE_ROTATE_ITEM $KUBE_ROTATE_STEP\" >> ./calls.log\n"
	if err := os.WriteFile(filepath.Join(dir, "hook.sh"), []byte(hook), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := planspec.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Env: []corev1.EnvVar{{Name: "K",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "K"}}}}}}}}}}
	kc := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u-db"}, Data: map[string][]byte{"K": []byte(oldK)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-jwks", Namespace: "ns", UID: "u-jwks"}, Data: map[string][]byte{"jwks.json": set}},
		web)
	enforceResourceVersion(kc)
	rolledOut := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(rolledOut)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme, &unstructured.Unstructured{Object: m})
	c := &cluster{kc: kc, dir: dir, o: Options{Plan: p, Clients: secret.Clients{Kube: kc, Dynamic: dyn}, PlanFile: path}}
	c.keys = len(c.ring(t).Set.Keys)
	return c
}

func (c *cluster) ring(t *testing.T) *jwks.Ring {
	t.Helper()
	st := &keystore.SecretStore{Client: c.kc, Namespace: "ns", Name: "diracx-jwks", Key: "jwks.json"}
	s, rec, err := st.Load(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return jwks.NewRing(s, "", rec)
}

func (c *cluster) secret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s, err := c.kc.CoreV1().Secrets("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return s
}

// calls counts the hook calls by "ITEM STEP".
func (c *cluster) calls(t *testing.T) map[string]int {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(c.dir, "calls.log"))
	out := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out[l]++
		}
	}
	return out
}

// restarts counts the restarts of deployment/web (one patch each).
func (c *cluster) restarts() int {
	n := 0
	for _, a := range c.kc.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "deployments" {
			n++
		}
	}
	return n
}

// record reads the plan's journal.
func (c *cluster) record(t *testing.T) *procedure.Record {
	t.Helper()
	pr, err := newRun(context.Background(), c.o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pr.journal.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// writeRecord overwrites the plan's journal (a stale or tampered one).
func (c *cluster) writeRecord(t *testing.T, r *procedure.Record) {
	t.Helper()
	ctx := context.Background()
	cm, err := c.kc.CoreV1().ConfigMaps("ns").Get(ctx, JournalName(c.o.Plan.Metadata.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	cm.Data[procedure.RecordKey] = string(b)
	if _, err := c.kc.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// finished checks that the plan's run is complete: every item finished,
// secret/db holds the value of pw's last create, the key set gained one
// key and it signs, the journal is kept with every step marked.
func (c *cluster) finished(t *testing.T, j *Journal) {
	t.Helper()
	for _, it := range []string{"pw", "signing-key"} {
		if NextStep(j, it) != "" {
			t.Errorf("item %s: next step %q, want none", it, NextStep(j, it))
		}
	}
	if !j.Restarted {
		t.Error("the coalesced restart is not journaled")
	}
	db := c.secret(t, "db")
	if db == nil || string(db.Data["K"]) == oldK || len(db.Data["K"]) != 32 {
		t.Error("secret/db does not hold a new value")
	} else if fp := j.Items["pw"].Fingerprints["K"]; fp == "" || fp != fingerprint(db.Data["K"]) {
		t.Error("secret/db does not hold the values create journaled")
	}
	if prev := c.secret(t, "db-previous"); prev == nil || string(prev.Data["K"]) != oldK {
		t.Error("the old value is not in secret/db-previous")
	}
	if c.secret(t, "db-pending") != nil {
		t.Error("secret/db-pending is left")
	}
	r := c.ring(t)
	if kid := j.Items["signing-key"].KID; len(r.Set.Keys) != c.keys+1 || kid == "" || r.Set.Keys[r.ActiveIndex()].KID != kid {
		t.Errorf("key set: %d keys (want %d), signing %s, journal kid %s", len(r.Set.Keys), c.keys+1, r.Set.Keys[r.ActiveIndex()].KID, kid)
	}
	rec := c.record(t)
	if rec == nil {
		t.Fatal("the journal of a finished plan is gone")
	}
	for _, s := range everySteps {
		if !rec.Marked(s) {
			t.Errorf("step %s is not marked in the finished journal", s)
		}
	}
}

func fingerprint(v []byte) string {
	return (&Pending{Values: map[string][]byte{"k": v}}).Fingerprints()["k"]
}

// killable is the journal of a process that can be killed: once killed,
// nothing it writes reaches the cluster.
type killable struct {
	procedure.Journal
	killed bool
}

var errKilled = errors.New("killed (kill -9)")

func (k *killable) Save(ctx context.Context, r *procedure.Record) error {
	if k.killed {
		return errKilled
	}
	return k.Journal.Save(ctx, r)
}

func (k *killable) Delete(ctx context.Context) error {
	if k.killed {
		return errKilled
	}
	return k.Journal.Delete(ctx)
}

// stopAt is a step whose run stops: before its effect (the step fails),
// or after it, before the journal records it (the process is killed).
type stopAt struct {
	procedure.Step
	after bool
	j     *killable
}

func (s *stopAt) Do(ctx context.Context, r *procedure.Record) error {
	if !s.after {
		return errors.New("the API server went away")
	}
	if err := s.Step.Do(ctx, r); err != nil {
		return err
	}
	s.j.killed = true
	return errKilled
}

// applyStoppingAt runs the plan with step k (1-based) stopping.
func (c *cluster) applyStoppingAt(t *testing.T, k int, after bool) error {
	t.Helper()
	pr, err := newRun(context.Background(), c.o)
	if err != nil {
		t.Fatal(err)
	}
	j := &killable{Journal: pr.journal}
	pr.journal = j
	proc := pr.procedure()
	if got := proc.Steps[k-1].Name(); got != everySteps[k-1] {
		t.Fatalf("step %d is %s, want %s", k, got, everySteps[k-1])
	}
	proc.Steps[k-1] = &stopAt{Step: proc.Steps[k-1], after: after, j: j}
	_, err = pr.apply(context.Background(), proc)
	return err
}

// A run stopped at any step, before or after its effect, is finished by
// the same command; each hook runs once per values it is given (twice
// only when the run was killed after the hook succeeded and before the
// journal said so) and the consumers restart once (twice only when killed
// after the restart).
func TestApplyResumesAtEveryStep(t *testing.T) {
	for k, name := range everySteps {
		for _, after := range []bool{false, true} {
			how := "fails"
			if after {
				how = "killed after its effect"
			}
			t.Run(fmt.Sprintf("step %d %s %s", k+1, name, how), func(t *testing.T) {
				c := newCluster(t, everyKind)
				err := c.applyStoppingAt(t, k+1, after)
				want := fmt.Sprintf("step %d of %d (%s) failed: ", k+1, len(everySteps), name)
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "undo with kubectl rotate undo -f "+c.o.PlanFile) {
					t.Fatalf("stopped run: %v, want %q", err, want)
				}
				if db := c.secret(t, "db"); k+1 < 5 && string(db.Data["K"]) != oldK {
					t.Error("secret/db changed before finish")
				}
				var progress bytes.Buffer
				c.o.Progress = &progress
				j, err := Apply(context.Background(), c.o)
				if err != nil {
					t.Fatalf("re-run: %v", err)
				}
				if k > 0 && !strings.Contains(progress.String(), "resuming rotation") {
					t.Errorf("the re-run did not resume:\n%s", progress.String())
				}
				c.finished(t, j)
				wantCalls := map[string]int{"pw set": 1, "pw test": 1, "signing-key set": 1, "signing-key test": 1}
				if after {
					switch name {
					case "pw/set":
						wantCalls["pw set"]++
					case "pw/test":
						wantCalls["pw test"]++
					case "signing-key/set":
						wantCalls["signing-key set"]++
					case "signing-key/test":
						wantCalls["signing-key test"]++
					}
				}
				if got := c.calls(t); fmt.Sprint(got) != fmt.Sprint(wantCalls) {
					t.Errorf("hook calls %v, want %v", got, wantCalls)
				}
				wantRestarts := 1
				if after && name == "restart" {
					wantRestarts = 2
				}
				if got := c.restarts(); got != wantRestarts {
					t.Errorf("deployment/web restarted %d times, want %d", got, wantRestarts)
				}

				// A further run changes nothing.
				c.kc.ClearActions()
				if _, err := Apply(context.Background(), c.o); err != nil {
					t.Fatal(err)
				}
				for _, a := range c.kc.Actions() {
					if v := a.GetVerb(); v != "get" && v != "list" {
						t.Errorf("applying the finished plan wrote: %s %s", v, a.GetResource().Resource)
					}
				}
			})
		}
	}
}

// The objects win over the journal: a step the journal marks done whose
// effect is not on the objects runs again, and the hooks run again for
// values they did not see.
func TestDerivedStateWinsOverAStaleJournal(t *testing.T) {
	tests := []struct {
		name string
		// stale makes the journal claim more than the objects show, after
		// a run that stopped before step stop (0: a finished run).
		stop  int
		stale func(t *testing.T, c *cluster, r *procedure.Record)
		// the hook calls after the re-run
		calls map[string]int
	}{
		{"every step marked, nothing on the objects", 2, func(t *testing.T, c *cluster, r *procedure.Record) {
			for _, s := range everySteps {
				r.Mark(s, r.Started)
			}
			_ = r.Put(itemFact("signing-key", factKID), "a-kid-never-published")
			_ = r.Put(itemFact("pw", factRanFor+StepSet), "sha256:000000000000")
		}, map[string]int{"pw set": 1, "pw test": 1, "signing-key set": 1, "signing-key test": 1}},
		{"pw's pending values deleted after its hooks ran", 5, func(t *testing.T, c *cluster, r *procedure.Record) {
			if err := c.kc.CoreV1().Secrets("ns").Delete(context.Background(), "db-pending", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{"pw set": 2, "pw test": 2, "signing-key set": 1, "signing-key test": 1}},
		{"the published key withdrawn after its hook ran", 9, func(t *testing.T, c *cluster, r *procedure.Record) {
			st := &keystore.SecretStore{Client: c.kc, Namespace: "ns", Name: "diracx-jwks", Key: "jwks.json"}
			set, rec, err := st.Load(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			ring := jwks.NewRing(set, "", rec)
			if err := ring.Delete(r.String(itemFact("signing-key", factKID)), 0, true); err != nil {
				t.Fatal(err)
			}
			if err := keystore.Save(context.Background(), st, ring, "test", "test"); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{"pw set": 1, "pw test": 1, "signing-key set": 2, "signing-key test": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, everyKind)
			if err := c.applyStoppingAt(t, tt.stop, false); err == nil {
				t.Fatal("the run did not stop")
			}
			r := c.record(t)
			tt.stale(t, c, r)
			c.writeRecord(t, r)
			j, err := Apply(context.Background(), c.o)
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			c.finished(t, j)
			if got := c.calls(t); fmt.Sprint(got) != fmt.Sprint(tt.calls) {
				t.Errorf("hook calls %v, want %v", got, tt.calls)
			}
		})
	}
}

// undoPlan is three Secret items, c after b after a, restarting web
// (which reads all three) once; c's set hook fails while ./broken exists.
const undoPlan = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: three}
spec:
  namespace: ns
  items:
  - name: a
    secret: {name: db, generate: [{key: K, spec: "hex:16"}]}
  - name: b
    after: [a]
    secret: {name: sb, generate: [{key: K, spec: "hex:16"}]}
  - name: c
    after: [b]
    secret: {name: sc, generate: [{key: K, spec: "hex:16"}]}
    hooks:
      set: {exec: {command: ["sh", "-c", "[ ! -e ./broken ]"]}}
`

// Undo takes the done steps back in reverse order: the last item first,
// the restart of the restored Secrets' consumers last, then the journal.
func TestUndoInReverseOrder(t *testing.T) {
	tests := []struct {
		name   string
		broken bool // c's set hook fails: c stops at set
		want   []string
	}{
		{"c stopped at set", true, []string{
			"delete secrets sc-pending",
			"update secrets sb", "update secrets db",
			"patch deployments web",
			"delete configmaps kube-rotate-plan-three",
		}},
		{"finished", false, []string{
			"update secrets sc", "update secrets sb", "update secrets db",
			"patch deployments web",
			"delete configmaps kube-rotate-plan-three",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, undoPlan)
			for _, name := range []string{"sb", "sc"} {
				if _, err := c.kc.CoreV1().Secrets("ns").Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("u-" + name)},
					Data: map[string][]byte{"K": []byte(oldK)}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.broken {
				if err := os.WriteFile(filepath.Join(c.dir, "broken"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Apply(context.Background(), c.o); (err != nil) != tt.broken {
				t.Fatalf("apply: %v", err)
			}
			c.kc.ClearActions()
			var progress bytes.Buffer
			c.o.Progress = &progress
			if err := Undo(context.Background(), c.o); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range c.kc.Actions() {
				v, res := a.GetVerb(), a.GetResource().Resource
				var name string
				switch a := a.(type) {
				case k8stesting.DeleteAction:
					name = a.GetName()
				case k8stesting.UpdateAction:
					name = a.GetObject().(metav1.Object).GetName()
				case k8stesting.PatchAction:
					name = a.GetName()
				default:
					continue
				}
				// The journal's updates, previous companions and history
				// are not the order this checks.
				if res == "configmaps" && v != "delete" || res == "secrets" && v == "patch" || strings.HasSuffix(name, "-previous") {
					continue
				}
				got = append(got, v+" "+res+" "+name)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("undo wrote, in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, name := range []string{"db", "sb", "sc"} {
				if s := c.secret(t, name); string(s.Data["K"]) != oldK {
					t.Errorf("secret/%s does not hold its old value", name)
				}
			}
			if c.record(t) != nil {
				t.Error("the journal is left")
			}
			if tt.broken && !strings.Contains(progress.String(), "item c: pending values deleted; secret/sc was never changed") {
				t.Errorf("progress:\n%s", progress.String())
			}
		})
	}
}

// Every journal write carries the resourceVersion the run last read or
// wrote: a concurrent change to configmap/kube-rotate-plan-NAME, at any
// point of the run, stops it with procedure.ErrConflict.
func TestApplyJournalPrecondition(t *testing.T) {
	tests := []struct {
		name string
		// when the other run writes: on the first action that matches
		verb, resource, object string
	}{
		{"another run starts at the same time", "create", "configmaps", ""},
		{"another run writes while create makes the values", "create", "secrets", "db-pending"},
		{"another run writes while finish moves the values", "update", "secrets", "db"},
		{"another run writes while the key is published", "update", "secrets", "diracx-jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, everyKind)
			fired := false
			c.kc.PrependReactor(tt.verb, tt.resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
				if fired {
					return false, nil, nil
				}
				if tt.object != "" {
					var name string
					switch a := a.(type) {
					case k8stesting.CreateAction:
						name = a.GetObject().(metav1.Object).GetName()
					case k8stesting.UpdateAction:
						name = a.GetObject().(metav1.Object).GetName()
					}
					if name != tt.object {
						return false, nil, nil
					}
				}
				fired = true
				otherRunWrites(t, c.kc, "every")
				return false, nil, nil
			})
			_, err := Apply(context.Background(), c.o)
			if !fired {
				t.Fatal("the other run never wrote")
			}
			if !errors.Is(err, procedure.ErrConflict) || !strings.Contains(err.Error(), "another run of plan every is going on") {
				t.Fatalf("apply: %v, want procedure.ErrConflict", err)
			}
			if r := c.record(t); r == nil || r.Error != "another run was here" {
				t.Errorf("the run wrote over the other run's journal: %+v", r)
			}
		})
	}
}

// otherRunWrites is another run writing the plan's journal (through the
// tracker: a reactor cannot call the fake clientset).
func otherRunWrites(t *testing.T, kc *fake.Clientset, plan string) {
	gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
	r := &procedure.Record{Procedure: "plan " + plan}
	obj, err := kc.Tracker().Get(gvr, "ns", JournalName(plan))
	if err == nil {
		cm := obj.(*corev1.ConfigMap).DeepCopy()
		if err := json.Unmarshal([]byte(cm.Data[procedure.RecordKey]), r); err != nil {
			t.Error(err)
		}
		r.Error = "another run was here"
		b, _ := json.Marshal(r)
		cm.Data[procedure.RecordKey] = string(b)
		cm.ResourceVersion += "-other"
		if err := kc.Tracker().Update(gvr, cm, "ns"); err != nil {
			t.Error(err)
		}
		return
	}
	r.Error = "another run was here"
	b, _ := json.Marshal(r)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: JournalName(plan), Namespace: "ns", ResourceVersion: "other"},
		Data: map[string]string{procedure.RecordKey: string(b)}}
	if err := kc.Tracker().Create(gvr, cm, "ns"); err != nil {
		t.Error(err)
	}
}

// kubectl rotate plan lists the engine's steps; for a run under way it
// marks those done, reading the journal and the objects, writing nothing.
func TestDescribeMarksTheDoneSteps(t *testing.T) {
	c := newCluster(t, everyKind)
	var before bytes.Buffer
	if err := Describe(context.Background(), &before, c.kc, c.o.Plan, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(before.String(), "(done)") {
		t.Errorf("a plan that never ran has done steps:\n%s", before.String())
	}
	if err := c.applyStoppingAt(t, 4, false); err == nil {
		t.Fatal("the run did not stop")
	}
	c.kc.ClearActions()
	var b bytes.Buffer
	if err := Describe(context.Background(), &b, c.kc, c.o.Plan, ""); err != nil {
		t.Fatal(err)
	}
	want := `plan every: 2 items, restart coalesced
1. pw: secret/db in ns, keys K
   create: new values in secret/db-pending (done)
   set: run ./hook.sh (values in a file or on stdin, never on the command line) (done)
   test: run ./hook.sh (values in a file or on stdin, never on the command line)
   finish: values into secret/db, old ones kept in secret/db-previous
   consumer: deployment/web
2. signing-key: secret/diracx-jwks in ns, keys jwks.json
   create: publish a new key as next in secret/diracx-jwks, restart its verifiers
   set: run ./hook.sh (values in a file or on stdin, never on the command line)
   test: run ./hook.sh (values in a file or on stdin, never on the command line)
   finish: the new key signs; the previous one keeps verifying
`
	if b.String() != want {
		t.Errorf("describe:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, a := range c.kc.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" {
			t.Errorf("describe wrote: %s %s", v, a.GetResource().Resource)
		}
	}
}
