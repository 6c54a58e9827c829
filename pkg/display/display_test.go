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

func TestKubectlRotate(t *testing.T) {
	if got := KubectlRotate(context.Background()); got != "kubectl rotate" {
		t.Errorf("default %q", got)
	}
	if got := KubectlRotate(WithKubectlRotate(context.Background(), "kubectl-rotate")); got != "kubectl-rotate" {
		t.Errorf("from the context %q", got)
	}
}
