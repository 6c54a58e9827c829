package kopsrotate

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	if st, next := stageOf(); st != kops.StageStaged || len(next) != 6 || !strings.HasPrefix(next[5], "kops-rotate promote all") ||
		!strings.HasPrefix(next[2], "kops validate cluster --wait") || !strings.Contains(next[4], "--done distribute-ca-after-stage") {
		t.Errorf("after stage: %s %v", st, next)
	}
	// The promote validates the cluster first (no run validated it): a
	// cluster that does not validate refuses it, and nothing changes.
	valid := fakeKops(t)
	if _, f := runCmd(t, append([]string{"promote", "all"}, target...)...); f == nil || !strings.Contains(f.msg, "promote refused, nothing changed: cluster "+kopstest.ClusterName+" does not validate") ||
		!strings.Contains(f.msg, "node nodes-a is not ready") {
		t.Errorf("promote of a cluster that does not validate: %+v", f)
	}
	if st, _ := stageOf(); st != kops.StageStaged {
		t.Errorf("a refused promote changed the keysets: %s", st)
	}
	valid()
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

// fakeKops puts on PATH a kops whose version is the cluster's and whose
// validate cluster fails until the returned func is called (the one fake
// here: a unit test has no cluster to validate; e2e/kops runs the real
// kops CLI).
func fakeKops(t *testing.T) (valid func()) {
	t.Helper()
	dir := t.TempDir()
	ok := filepath.Join(dir, "valid")
	script := "#!/bin/sh\ncase \"$1\" in\n" +
		"  version) echo 1.36.2 ;;\n" +
		"  validate) [ -f " + ok + " ] && exit 0; echo 'Validation Failed' >&2; echo 'node nodes-a is not ready' >&2; exit 2 ;;\n" +
		"  *) exit 1 ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "kops"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() {
		if err := os.WriteFile(ok, nil, 0o600); err != nil {
			t.Fatal(err)
		}
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
