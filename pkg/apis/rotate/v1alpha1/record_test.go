package v1alpha1

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApplyKeepsBoundedHistory(t *testing.T) {
	ann := map[string]string{"unrelated": "kept"}
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= MaxHistory+5; i++ {
		e := Entry{Time: metav1.NewTime(start.Add(time.Duration(i) * time.Hour)), Action: ActionRotate, Generation: int64(i),
			Keys: map[string]string{"B": "sha256:bbbbbbbbbbbb", "A": "sha256:aaaaaaaaaaaa"}, By: "alice"}
		if err := Apply(ann, e, PhaseWritten); err != nil {
			t.Fatal(err)
		}
	}
	h, err := ReadHistory(ann)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != MaxHistory || h[0].Generation != 6 || h[len(h)-1].Generation != MaxHistory+5 {
		t.Fatalf("history holds generations %d..%d (%d entries), want the newest %d", h[0].Generation, h[len(h)-1].Generation, len(h), MaxHistory)
	}
	g, err := GenerationOf(ann)
	if err != nil || g != MaxHistory+5 {
		t.Errorf("generation = %d, %v", g, err)
	}
	if ann[Keys] != "A,B" || ann[Phase] != PhaseWritten || ann["unrelated"] != "kept" {
		t.Errorf("annotations = %v", ann)
	}
	if ann[RotatedAt] != "2026-11-24T11:00:00Z" {
		t.Errorf("rotated-at = %q", ann[RotatedAt])
	}
	if !strings.Contains(ann[Fingerprints], `"A":"sha256:aaaaaaaaaaaa"`) {
		t.Errorf("fingerprints = %q", ann[Fingerprints])
	}
}

func TestBadAnnotationsAreErrors(t *testing.T) {
	if _, err := GenerationOf(map[string]string{Generation: "two"}); err == nil || !strings.Contains(err.Error(), Generation) {
		t.Errorf("GenerationOf(two) = %v", err)
	}
	if _, err := ReadHistory(map[string]string{History: "{"}); err == nil {
		t.Error("ReadHistory({) succeeded")
	}
	if g, err := GenerationOf(nil); g != 0 || err != nil {
		t.Errorf("GenerationOf(nil) = %d, %v", g, err)
	}
}
