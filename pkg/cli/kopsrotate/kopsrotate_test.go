package kopsrotate

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestDisplayName(t *testing.T) {
	tests := []struct{ argv0, want string }{
		{"kops-rotate", "kops-rotate"},
		{"/usr/local/bin/kops-rotate", "kops-rotate"},
		{"/root/.krew/bin/kubectl-kops_rotate", "kubectl kops-rotate"},
		{`C:\krew\bin\kubectl-kops_rotate.exe`, "kubectl kops-rotate"},
		{"./bin/kubectl-kops_rotate", "kubectl kops-rotate"},
	}
	for _, tt := range tests {
		if got := DisplayName(tt.argv0); got != tt.want {
			t.Errorf("DisplayName(%q) = %q, want %q", tt.argv0, got, tt.want)
		}
	}
}

func TestHelpUsesCallingName(t *testing.T) {
	for _, tt := range []struct{ argv0, want string }{
		{"kops-rotate", `Use "kops-rotate [command] --help"`},
		{"kubectl-kops_rotate", `Use "kubectl kops-rotate [command] --help"`},
	} {
		streams, _, out, _ := genericiooptions.NewTestIOStreams()
		cmd := NewCmdKopsRotate(tt.argv0, streams)
		cmd.SetOut(out)
		cmd.SetArgs([]string{"--help"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("help for %s does not mention %q:\n%s", tt.argv0, tt.want, out)
		}
		if !strings.Contains(out.String(), "kOps 1.36") {
			t.Errorf("help does not name the kOps library version:\n%s", out)
		}
	}
}
