package plan

import (
	"context"
	"errors"
	"testing"
	"time"

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
		pr, err := newRun(Options{Plan: p, Clients: secret.Clients{Kube: kc}})
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
			if got := view(p, r).Next("a"); got != s.next {
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
	if v.RotationID != r.String(factRotationID) || v.Next("a") != "" || v.Items["b"].Failed != StepSet || v.Items["b"].Error == "" || v.Next("b") != StepCreated {
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
