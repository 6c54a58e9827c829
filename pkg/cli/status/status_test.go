package status_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kops/util/pkg/vfs"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cli/rotate"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

type fatal struct {
	msg  string
	code int
}

// run executes `kubectl rotate status ARGS`; a fatal error comes back with
// its exit code.
func run(t *testing.T, args ...string) (stdout, stderr string, f *fatal) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(&fatal{msg, code}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if r := recover(); r != nil {
			ff, ok := r.(*fatal)
			if !ok {
				panic(r)
			}
			stdout, stderr, f = out.String(), errOut.String(), ff
		}
	}()
	cmd := rotate.NewCmdRotate(streams)
	cmd.SetArgs(append([]string{"status"}, args...))
	if err := cmd.Execute(); err != nil {
		return out.String(), errOut.String(), &fatal{err.Error(), 1}
	}
	return out.String(), errOut.String(), nil
}

// fixtures returns a kOps file:// state store and a Slurm key-set file
// whose signing key is 40 days old (by its records).
func fixtures(t *testing.T) (state, file string) {
	t.Helper()
	dir := t.TempDir()
	state = "file://" + filepath.Join(dir, "state")
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account")
	slurm, err := os.ReadFile("../../model/jwks/testdata/slurm.json")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "slurm.jwks")
	if err := os.WriteFile(file, slurm, 0o600); err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	side := `{"1f0e3dad-9990-4b2c-8a3e-2f1c0b6a7d15":{"state":"active","created":"` + created + `"}}`
	if err := os.WriteFile(file+".kube-rotate.json", []byte(side), 0o600); err != nil {
		t.Fatal(err)
	}
	return state, file
}

func TestStatusTableJSONAndFailOn(t *testing.T) {
	state, file := fixtures(t)
	t.Setenv("KOPS_STATE_STORE", "")
	t.Setenv("KOPS_CLUSTER_NAME", "")
	base := []string{"--secrets=false", "--kops-state", state, "--name", kopstest.ClusterName, "--jwks-file", file}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"all ok under 90d", nil, 0, []string{"CREDENTIAL", "kubernetes-ca", "primary keypair", "kops-rotate run --yes --name " + kopstest.ClusterName,
			"kid 1f0e3dad-999", "record", "kubectl rotate jwk rotate --file " + file}},
		{"signing key overdue at 30d", []string{"--max-age", "30d", "--warn-before", "7d"}, 0, []string{"overdue"}},
		{"fail-on overdue", []string{"--max-age", "30d", "--fail-on", "overdue"}, 3, nil},
		{"fail-on warn, nothing due", []string{"--max-age", "90d", "--warn-before", "7d", "--fail-on", "warn"}, 0, nil},
		{"fail-on warn, signing key due soon", []string{"--max-age", "45d", "--warn-before", "7d", "--fail-on", "warn"}, 3, nil},
		{"wide", []string{"-o", "wide"}, 0, []string{"RULE", "REASON", "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, f := run(t, append(append([]string{}, base...), tt.args...)...)
			code := 0
			if f != nil {
				code = f.code
			}
			if code != tt.code {
				t.Fatalf("exit %d (%v), want %d\n%s", code, f, tt.code, out)
			}
			for _, s := range tt.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}

	out, _, f := run(t, append(base, "-o", "json", "--max-age", "30d")...)
	if f != nil {
		t.Fatal(f)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if r.Kind != report.Kind || r.Summary.Overdue != 1 || r.Summary.Total != 4 {
		t.Errorf("report kind %s, summary %+v", r.Kind, r.Summary)
	}
	if strings.Contains(out, `"k":`) || strings.Contains(out, "PEQgWThLnKJJ") {
		t.Error("-o json prints key material")
	}
}

func TestStatusBadInput(t *testing.T) {
	_, file := fixtures(t)
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: 90x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KOPS_STATE_STORE", "")
	t.Setenv("KOPS_CLUSTER_NAME", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"policy syntax", []string{"--secrets=false", "--jwks-file", file, "--policy", bad}, bad + ": policy: line 5"},
		{"policy and flags", []string{"--secrets=false", "--jwks-file", file, "--policy", bad, "--max-age", "3d"}, "--max-age and --policy both set limits"},
		{"missing policy", []string{"--secrets=false", "--jwks-file", file, "--policy", "/nonexistent.yaml"}, "reading the policy"},
		{"kops state without name", []string{"--secrets=false", "--kops-state", "file:///tmp/x"}, "--kops-state needs the cluster"},
		{"nothing to check", []string{"--secrets=false"}, "nothing to check"},
		{"bad output", []string{"--secrets=false", "--jwks-file", file, "-o", "table"}, `--output "table" is not supported`},
		{"bad fail-on", []string{"--secrets=false", "--jwks-file", file, "--fail-on", "ok"}, `--fail-on "ok" is not supported`},
		{"warn not below max", []string{"--secrets=false", "--jwks-file", file, "--max-age", "7d", "--warn-before", "7d"}, "warnBefore (7d) must be shorter than maxAge (7d)"},
		{"missing key-set file", []string{"--secrets=false", "--jwks-file", "/nonexistent.jwks"}, "key-set file /nonexistent.jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, f := run(t, tt.args...)
			if f == nil || f.code != 1 || !strings.Contains(f.msg, tt.want) || strings.Count(strings.TrimSpace(f.msg), "\n") > 0 {
				t.Fatalf("got %+v, want one error line with %q (stdout %q)", f, tt.want, out)
			}
		})
	}
}
