//go:build e2e

package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// TestJournalPreconditionOnARealAPIServer: the engine's ConfigMap journal
// refuses a write from a run that read an older version, and a second
// create, as the API server enforces resourceVersion (client-go's fake
// does not).
func TestJournalPreconditionOnARealAPIServer(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	journal := func() *procedure.ConfigMapJournal {
		return &procedure.ConfigMapJournal{Client: client, Namespace: ns, Name: "kube-rotate-test-journal"}
	}
	a, b := journal(), journal()
	for _, j := range []*procedure.ConfigMapJournal{a, b} {
		if r, err := j.Load(ctx); err != nil || r != nil {
			t.Fatalf("no journal yet: %v %v", r, err)
		}
	}
	rec := &procedure.Record{Procedure: "test"}
	if err := a.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, rec); !errors.Is(err, procedure.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	// Both read the same version; the first write wins, the second is refused.
	if _, err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// (An update that changes nothing keeps the resourceVersion: the first
	// run writes a real change, as the engine does with every mark.)
	rec.Mark("first", time.Now())
	if err := a.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, &procedure.Record{Procedure: "test", Failed: "other"}); !errors.Is(err, procedure.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if err := b.Delete(ctx); !errors.Is(err, procedure.ErrConflict) {
		t.Fatalf("stale delete: %v, want ErrConflict", err)
	}
	if err := a.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := journal().Load(ctx); err != nil || r != nil {
		t.Errorf("after delete: %v %v", r, err)
	}
}
