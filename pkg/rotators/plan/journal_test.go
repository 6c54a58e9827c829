package plan

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

const twoItems = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  namespace: ns
  items:
  - name: a
    secret: {name: sa, generate: [{key: K, spec: "hex:16"}]}
  - name: b
    secret: {name: sb, generate: [{key: K, spec: "hex:16"}]}
`

// The plan's journal is the engine's Record in configmap/kube-rotate-plan-NAME
// (labelled with the plan); the record users see (Journal) says, per item,
// the last step done, the next one and the failure.
func TestJournalStepsAndPreconditions(t *testing.T) {
	ctx := context.Background()
	p, err := planspec.Parse([]byte(twoItems))
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset()
	enforceResourceVersion(kc)
	journal := func() procedure.Journal {
		pr, err := newRun(ctx, Options{Plan: p, Clients: secret.Clients{Kube: kc}})
		if err != nil {
			t.Fatal(err)
		}
		return pr.journal
	}
	st := journal()
	r, err := st.Load(ctx)
	if err != nil || r != nil {
		t.Fatalf("a plan that never ran: %v %v", r, err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r = &procedure.Record{Procedure: "plan db", Started: now}
	if err := r.Put(factRotationID, NewRotationID(now)); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ done, next string }{{"", "create"}, {"create", "set"}, {"set", "test"}, {"test", "finish"}, {"finish", ""}}
	for _, s := range steps {
		t.Run("after "+s.done, func(t *testing.T) {
			if s.done != "" {
				r.Mark(stepName("a", s.done), now)
			}
			if got := NextStep(view(p, r), "a"); got != s.next {
				t.Errorf("next %q, want %q", got, s.next)
			}
			if err := st.Save(ctx, r); err != nil {
				t.Fatal(err)
			}
		})
	}
	r.Failed, r.Error = stepName("b", StepSet), "hook set of item b exited 1"
	if err := st.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	cm, err := kc.CoreV1().ConfigMaps("ns").Get(ctx, JournalName("db"), metav1.GetOptions{})
	if err != nil || cm.Labels[PlanLabel] != "db" || cm.Labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedBy {
		t.Fatalf("journal configmap: %v %v", err, cm.Labels)
	}

	// A second run reads what the first wrote.
	other := journal()
	back, err := other.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := view(p, back)
	if v.RotationID != r.String(factRotationID) || NextStep(v, "a") != "" || v.Items["b"].Failed != StepSet || v.Items["b"].Error == "" || NextStep(v, "b") != StepCreated {
		t.Fatalf("journal read back: %+v", v)
	}
	// The second run writes: the first one's next write is refused.
	if err := other.Save(ctx, back); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, r); !errors.Is(err, procedure.ErrConflict) {
		t.Fatalf("a write over another run's: %v, want ErrConflict", err)
	}
	if err := st.Delete(ctx); !errors.Is(err, procedure.ErrConflict) {
		t.Fatalf("a delete over another run's write: %v, want ErrConflict", err)
	}
	if err := other.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := other.Load(ctx); err != nil || r != nil {
		t.Fatalf("after delete: %v %v", r, err)
	}
}

// A run an earlier version started (its journal in journal.json, each
// item's last step) resumes with the same rotation id and pending values;
// the next write turns the journal into the engine's Record.
func TestApplyResumesALegacyJournal(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, everyKind)
	spec := c.o.Plan.Spec.Items[0].Secret
	cs, tokens, err := SecretChanges(spec)
	if err != nil {
		t.Fatal(err)
	}
	pend, err := CreatePending(ctx, c.kc, "ns", "pw", "20261123t120000-abcdef", spec, cs, tokens)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old, _ := json.Marshal(map[string]any{"plan": "every", "fingerprint": c.o.Plan.Fingerprint(), "rotationId": "20261123t120000-abcdef",
		"started": at, "updated": at, "items": map[string]any{"pw": map[string]any{"done": "set", "fingerprints": pend.Fingerprints(),
			"steps": map[string]time.Time{"create": at, "set": at}}}})
	if _, err := c.kc.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: JournalName("every"), Namespace: "ns"},
		Data: map[string]string{legacyKey: string(old)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j, err := Apply(ctx, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if j.RotationID != "20261123t120000-abcdef" || !j.Items["pw"].Steps[StepSet].Time.Equal(at) {
		t.Errorf("the resumed run: %s, set at %s", j.RotationID, j.Items["pw"].Steps[StepSet])
	}
	c.finished(t, j)
	if string(c.secret(t, "db").Data["K"]) != string(pend.Values["K"]) {
		t.Error("secret/db does not hold the values the earlier run made")
	}
	if got := c.calls(t); got["pw set"] != 0 || got["pw test"] != 1 {
		t.Errorf("hook calls %v: the set hook the earlier run ran ran again, or the test hook did not run", got)
	}
	cm, err := c.kc.CoreV1().ConfigMaps("ns").Get(ctx, JournalName("every"), metav1.GetOptions{})
	if _, legacy := cm.Data[legacyKey]; err != nil || legacy || cm.Data[procedure.RecordKey] == "" {
		t.Errorf("the journal was not rewritten as a Record: %v %v", err, cm.Data)
	}
}
