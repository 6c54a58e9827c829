package rotate

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestRootHelpShowsKubectlNameAndFlags(t *testing.T) {
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	cmd := NewCmdRotate(streams)
	cmd.SetOut(out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Use "kubectl rotate [command] --help"`, "version", "--kubeconfig", "--context", "--namespace", "--as", "--kube-api-qps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestBadRateLimitIsOneClearError(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	cmd := NewCmdRotate(streams)
	cmd.SetArgs([]string{"version", "--kube-api-qps=0"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--kube-api-qps must be greater than 0") {
		t.Fatalf("err = %v", err)
	}
}
