package plan

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

func TestJournalStepsAndPreconditions(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset()
	st := &Store{Client: kc, Namespace: "ns", Plan: "db"}
	j, err := st.Load(ctx)
	if err != nil || j != nil {
		t.Fatalf("a plan that never ran: %v %v", j, err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	j = &Journal{Plan: "db", RotationID: NewRotationID(now), Started: now}
	steps := []struct{ done, next string }{{"", "create"}, {"create", "set"}, {"set", "test"}, {"test", "finish"}, {"finish", ""}}
	for _, s := range steps {
		if s.done != "" {
			j.Mark("a", s.done, now)
		}
		if got := j.Next("a"); got != s.next {
			t.Errorf("after %q: next %q, want %q", s.done, got, s.next)
		}
		if err := st.Save(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	j.Fail("b", StepSet, errors.New("hook set of item b exited 1"))
	if err := st.Save(ctx, j); err != nil {
		t.Fatal(err)
	}

	// A second run reads what the first wrote.
	other := &Store{Client: kc, Namespace: "ns", Plan: "db"}
	back, err := other.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if back.RotationID != j.RotationID || back.Next("a") != "" || back.Items["b"].Failed != StepSet || back.Next("b") != StepCreated {
		t.Fatalf("journal read back: %+v", back)
	}
	// (The resourceVersion precondition against a concurrent run is
	// checked on a real API server: client-go's fake does not enforce it.)
	if err := other.Save(ctx, back); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if j, err := other.Load(ctx); err != nil || j != nil {
		t.Fatalf("after delete: %v %v", j, err)
	}
}
