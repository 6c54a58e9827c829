package display

import (
	"context"
	"testing"
)

func TestKopsRotate(t *testing.T) {
	if got := KopsRotate(context.Background()); got != "kops-rotate" {
		t.Errorf("default %q", got)
	}
	if got := KopsRotate(WithKopsRotate(context.Background(), "kubectl kops-rotate")); got != "kubectl kops-rotate" {
		t.Errorf("from the context %q", got)
	}
}
