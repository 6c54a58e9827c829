package kopsrotate

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kops/util/pkg/vfs"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

type fatal struct {
	msg  string
	code int
}

// run executes kops-rotate with args; a fatal error comes back as (msg, code).
func runCmd(t *testing.T, args ...string) (out string, f *fatal) {
	t.Helper()
	streams, _, stdout, _ := genericiooptions.NewTestIOStreams()
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(&fatal{msg, code}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if r := recover(); r != nil {
			ff, ok := r.(*fatal)
			if !ok {
				panic(r)
			}
			out, f = stdout.String(), ff
		}
	}()
	cmd := NewCmdKopsRotate("kops-rotate", streams)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		return stdout.String(), &fatal{err.Error(), 1}
	}
	return stdout.String(), nil
}

func TestProcedureThroughTheCommands(t *testing.T) {
	dir := t.TempDir()
	state := "file://" + dir
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account", "etcd-manager-ca-main", "kubelet")
	target := []string{"--name", kopstest.ClusterName, "--state", state}
	step := func(args ...string) string {
		t.Helper()
		out, f := runCmd(t, append(args, target...)...)
		if f != nil {
			t.Fatalf("kops-rotate %s: %s", strings.Join(args, " "), f.msg)
		}
		return out
	}
	stageOf := func() (kops.Stage, []string) {
		t.Helper()
		var rep struct {
			Stage kops.Stage
			Next  []string
		}
		if err := json.Unmarshal([]byte(step("status", "-o", "json")), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Stage, rep.Next
	}

	out := step("status")
	for _, want := range []string{"kubernetes-ca", "service-account", "etcd-manager-ca-main", "Procedure stage: idle", "kops-rotate stage all --name " + kopstest.ClusterName} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "kubelet") {
		t.Error("status lists a keyset kOps does not rotate")
	}
	if out := step("stage", "all"); strings.Count(out, "Staged ") != 3 || !strings.Contains(out, "kops update cluster --yes") {
		t.Errorf("stage output:\n%s", out)
	}
	if out := step("stage", "all"); !strings.Contains(out, "Nothing to change") {
		t.Errorf("second stage:\n%s", out)
	}
	if st, next := stageOf(); st != kops.StageStaged || len(next) != 4 || !strings.HasPrefix(next[3], "kops-rotate promote all") {
		t.Errorf("after stage: %s %v", st, next)
	}
	step("promote", "all")
	if _, f := runCmd(t, append([]string{"distrust", "all"}, target...)...); f == nil || !strings.Contains(f.msg, "not been exported since the promote") {
		t.Errorf("distrust before export: %+v", f)
	}
	step("distrust", "all", "--exported")
	if st, _ := stageOf(); st != kops.StageDistrusted {
		t.Errorf("after distrust: %s", st)
	}
	if out := step("rollback"); strings.Count(out, "Trusted again ") != 3 {
		t.Errorf("rollback of distrust:\n%s", out)
	}
	if st, _ := stageOf(); st != kops.StagePromoted {
		t.Errorf("after rolling back distrust: %s", st)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "kubelet"}, `keyset "kubelet" is not rotated`},
		{[]string{"status", "nope-ca"}, `keyset "nope-ca" not found`},
		{[]string{"status", "-o", "wide"}, `--output "wide" is not supported`},
	} {
		_, f := runCmd(t, append(tt.args, target...)...)
		if f == nil || !strings.Contains(f.msg, tt.want) || f.code == 0 {
			t.Errorf("%v: %+v, want error %q", tt.args, f, tt.want)
		}
	}
	if _, f := runCmd(t, "status", "--name", kopstest.ClusterName, "--state", ""); f == nil || !strings.Contains(f.msg, "no state store") {
		t.Errorf("no state store: %+v", f)
	}
}

// TestPluginNameInSuggestedCommands: run as kubectl's plugin
// (kubectl-kops_rotate), the commands the core suggests name it the way
// the user types it.
func TestPluginNameInSuggestedCommands(t *testing.T) {
	state := "file://" + t.TempDir()
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account")
	for _, tt := range []struct{ argv0, want string }{
		{"kops-rotate", "\n  kops-rotate stage all --name "},
		{"/root/.krew/bin/kubectl-kops_rotate", "\n  kubectl kops-rotate stage all --name "},
	} {
		streams, _, stdout, _ := genericiooptions.NewTestIOStreams()
		cmd := NewCmdKopsRotate(tt.argv0, streams)
		cmd.SetArgs([]string{"status", "--name", kopstest.ClusterName, "--state", state})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), tt.want) {
			t.Errorf("%s: status lacks %q:\n%s", tt.argv0, tt.want, stdout)
		}
	}
}
