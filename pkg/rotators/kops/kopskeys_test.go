package kops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/kops/pkg/pki"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

const clusterName = kopstest.ClusterName

// newStore seeds a state store and opens it.
func newStore(t *testing.T, base string, vctx *vfs.VFSContext, keysets ...string) *Store {
	t.Helper()
	kopstest.Seed(t, base, vctx, keysets...)
	s, err := Open(context.Background(), base, clusterName, vctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Validate = func(context.Context) error { return nil } // a cluster that validates
	return s
}

// runYes runs the procedure as an operator does: at each stop for a
// person it does the person's part and re-runs with --done for that step.
func runYes(s *Store, ctx context.Context, o RunOptions) error {
	for range len(Procedure) {
		err := s.Run(ctx, o)
		var werr *procedure.WaitError
		if !errors.As(err, &werr) {
			return err
		}
		o.Done = werr.Step
	}
	return errors.New("the run kept stopping for a person")
}

func stages(t *testing.T, s *Store) map[string]Stage {
	t.Helper()
	sts, err := s.Status(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Stage{}
	for _, st := range sts {
		out[st.Name] = st.Stage
	}
	return out
}

func allAt(t *testing.T, s *Store, want Stage) {
	t.Helper()
	for name, got := range stages(t, s) {
		if got != want {
			t.Errorf("keyset %s is %s, want %s", name, got, want)
		}
	}
}

var seeded = []string{"kubernetes-ca", "service-account", "etcd-manager-ca-main", "kubelet"}

func TestFullProcedureAndRollbacks(t *testing.T) {
	for _, tt := range []struct {
		name string
		base func(t *testing.T) (string, *vfs.VFSContext)
	}{
		{"memfs", func(t *testing.T) (string, *vfs.VFSContext) {
			return "memfs://state-" + t.Name(), vfs.NewTestingVFSContext()
		}},
		{"file", func(t *testing.T) (string, *vfs.VFSContext) { return "file://" + t.TempDir(), vfs.NewVFSContext() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			base, vctx := tt.base(t)
			s := newStore(t, base, vctx, seeded...)
			got := stages(t, s)
			if len(got) != 3 || got["kubelet"] != "" {
				t.Fatalf("rotatable keysets = %v, want kubernetes-ca, service-account, etcd-manager-ca-main", got)
			}
			allAt(t, s, StageIdle)

			changes, err := s.Stage(ctx, []string{"all"})
			if err != nil || len(changes) != 3 {
				t.Fatalf("stage: %v %v", changes, err)
			}
			again, err := s.Stage(ctx, nil)
			if err != nil || len(again) != 0 {
				t.Errorf("second stage changed %v (%v): must be idempotent", again, err)
			}
			allAt(t, s, StageStaged)
			if _, err := s.Distrust(ctx, nil, false); err == nil || !strings.Contains(err.Error(), "not promoted yet") {
				t.Errorf("distrust before promote: %v", err)
			}

			promoted, err := s.Promote(ctx, nil)
			if err != nil || len(promoted) != 3 {
				t.Fatal(promoted, err)
			}
			for i, c := range promoted {
				if c.ID != changes[i].ID {
					t.Errorf("%s: promoted %s, staged %s", c.Keyset, c.ID, changes[i].ID)
				}
			}
			allAt(t, s, StagePromoted)
			if err := s.MarkDone(ctx, StepPromote); err != nil {
				t.Fatal(err)
			}
			if _, err := s.KeysetStep(ctx, StepDistrust, nil, false); err == nil || !strings.Contains(err.Error(), "not been exported since the promote") {
				t.Errorf("distrust before the kubeconfig export: %v", err)
			}
			if err := s.MarkDone(ctx, StepExportAfterProm); err != nil {
				t.Fatal(err)
			}
			distrusted, err := s.KeysetStep(ctx, StepDistrust, nil, false)
			if err != nil || len(distrusted) != 3 {
				t.Fatal(distrusted, err)
			}
			allAt(t, s, StageDistrusted)

			// Roll every stage back, one at a time.
			if _, err := s.Rollback(ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
			allAt(t, s, StagePromoted)
			back, err := s.Rollback(ctx, nil, nil)
			if err != nil || back[0].Action != "promoted back" {
				t.Fatal(back, err)
			}
			allAt(t, s, StageStaged)
			if _, err := s.Rollback(ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
			allAt(t, s, StageIdle)
			if _, err := s.Rollback(ctx, nil, nil); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
				t.Errorf("rollback when idle: %v", err)
			}
			if _, err := s.Promote(ctx, nil); err == nil || !strings.Contains(err.Error(), "nothing staged to promote") {
				t.Errorf("promote with nothing staged: %v", err)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	vctx := vfs.NewTestingVFSContext()
	s := newStore(t, "memfs://bad", vctx, "kubernetes-ca", "kubelet")
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"nope-ca"}, `keyset "nope-ca" not found in cluster ` + clusterName},
		{[]string{"kubelet"}, `keyset "kubelet" is not rotated by kOps' procedure`},
	}
	for _, tt := range tests {
		if _, err := s.Stage(ctx, tt.names); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Stage(%v) = %v, want %q", tt.names, err, tt.want)
		}
	}
	if _, err := Open(ctx, "", clusterName, vctx); err == nil || !strings.Contains(err.Error(), "no state store") {
		t.Errorf("no state store: %v", err)
	}
	if _, err := Open(ctx, "memfs://bad", "other.example.com", vctx); err == nil || !strings.Contains(err.Error(), `cluster "other.example.com" not found`) {
		t.Errorf("unknown cluster: %v", err)
	}

	dir := t.TempDir()
	fs := newStore(t, "file://"+dir, vfs.NewVFSContext(), "kubernetes-ca")
	ksFile := filepath.Join(dir, clusterName, "pki", "private", "kubernetes-ca", "keyset.yaml")
	if _, err := os.Stat(ksFile); err != nil {
		t.Fatalf("keyset file not where kOps keeps it: %v", err)
	}
	if err := os.WriteFile(ksFile, []byte("this: [is not a keyset"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stage(ctx, []string{"kubernetes-ca"}); err == nil || !strings.Contains(err.Error(), "kubernetes-ca") {
		t.Errorf("corrupt keyset.yaml: %v", err)
	}
}

func TestItemCreatedFromID(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	id := pki.BuildPKISerial(at.UnixNano()).String()
	if got := itemCreated(id); !got.Equal(at) {
		t.Errorf("itemCreated = %v, want %v", got, at)
	}
	if !itemCreated("not-a-number").IsZero() {
		t.Error("bad id has a time")
	}
}

func TestNextStepsFollowTheRecord(t *testing.T) {
	sc := Scope{Keysets: map[string]bool{"kubernetes-ca": true}}
	rec := &Record{Done: map[string]time.Time{StepStage: time.Now(), StepUpdate1: time.Now()}, Skip: func(st string) bool { return !sc.Applies(st) }}
	got := NextSteps(StageStaged, rec)
	if strings.Join(got, ",") != strings.Join([]string{StepRoll1, StepValidate1, StepExport1, StepDistributeCA, StepPromote}, ",") {
		t.Errorf("NextSteps(staged) = %v", got)
	}
	// A service-account-only rotation hands out no CA data, and with
	// --target terraform a person applies the Terraform after each update.
	sc = Scope{Keysets: map[string]bool{"service-account": true}, CLI: CLIOptions{Target: "terraform", Out: "tf"}}
	if got := NextSteps(StagePromoted, &Record{Skip: func(st string) bool { return !sc.Applies(st) }}); strings.Join(got, ",") !=
		strings.Join([]string{StepUpdate2, StepApply2, StepRoll2, StepValidate2, StepExportAfterProm, StepServiceAcctTokens, StepDistrust}, ",") {
		t.Errorf("NextSteps(promoted), service-account with terraform = %v", got)
	}
	ctx := context.Background()
	if c := Command(ctx, StepExportAfterProm, "c.example.com", "s3://b"); c != "kops export kubecfg --admin --name c.example.com --state s3://b" {
		t.Errorf("Command = %q", c)
	}
	if r := RollbackCommands(ctx, StageDistrusted, "c", "s"); len(r) != 3 || !strings.Contains(r[2], "rolling-update cluster --force --yes") || r[0] != "kops-rotate rollback --name c --state s" {
		t.Errorf("RollbackCommands(distrusted) = %v", r)
	}
	// As a kubectl plugin, the commands say so.
	plugin := display.WithKopsRotate(ctx, "kubectl kops-rotate")
	if c := Command(plugin, StepStage, "c", "s"); c != "kubectl kops-rotate stage all --name c --state s" {
		t.Errorf("Command as a plugin = %q", c)
	}
	if r := RollbackCommands(plugin, StageStaged, "c", "s"); r[0] != "kubectl kops-rotate rollback --name c --state s" {
		t.Errorf("RollbackCommands as a plugin = %v", r)
	}
	if NextSteps(StageIdle, rec)[0] != StepStage {
		t.Error("idle does not start with stage")
	}
}

// TestRunResumesAtTheFailedStep: a kops step fails (as if the run was
// killed there); the re-run starts at that step, not before, and finishes.
func TestRunResumesAtTheFailedStep(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "memfs://run-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca", "service-account")
	var calls []string
	failAt := "rolling-update cluster --yes"
	failures := 1
	runner := func(_ context.Context, args []string) error {
		c := strings.Join(args[:len(args)-4], " ")
		calls = append(calls, c)
		if strings.HasPrefix(c, failAt) && failures > 0 && len(calls) > 3 {
			failures--
			return errString("interrupted")
		}
		return nil
	}
	var out strings.Builder
	if err := s.Run(ctx, RunOptions{Runner: runner, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 || !strings.Contains(out.String(), "kops-rotate stage all") {
		t.Fatalf("run without --yes ran %v:\n%s", calls, out.String())
	}
	allAt(t, s, StageIdle)

	// First run: fails at the second rolling update (after promote).
	err := runYes(s, ctx, RunOptions{Yes: true, Runner: runner, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "("+StepRoll2+") failed") {
		t.Fatalf("first run: %v", err)
	}
	allAt(t, s, StagePromoted)
	before := len(calls)
	if err := runYes(s, ctx, RunOptions{Yes: true, Runner: runner, Out: &out}); err != nil {
		t.Fatal(err)
	}
	resumed := calls[before:]
	want := []string{"rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg --admin", "update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg"}
	if strings.Join(resumed, "|") != strings.Join(want, "|") {
		t.Errorf("resumed run called\n  %v\nwant\n  %v", resumed, want)
	}
	sts, _ := s.Status(ctx, nil)
	for _, st := range sts {
		if st.Stage != StageIdle || len(st.Distrusted) != 1 {
			t.Errorf("%s after the run: %s with %d distrusted", st.Name, st.Stage, len(st.Distrusted))
		}
	}
	out.Reset()
	if err := runYes(s, ctx, RunOptions{Yes: true, Runner: runner, Out: &out}); err != nil || !strings.Contains(out.String(), "Rotation complete") {
		t.Errorf("run after completion: %v %s", err, out.String())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// allKeysets are the keysets `kops update cluster` creates on a fresh cluster.
var allKeysets = []string{"apiserver-aggregator-ca", "etcd-clients-ca", "etcd-manager-ca-main", "etcd-manager-ca-events",
	"etcd-peers-ca-main", "etcd-peers-ca-events", "kubernetes-ca", "service-account", "discovery-ca"}

// BenchmarkStatus opens a file:// store holding every keyset of a fresh
// cluster and works out the stage, as `kops-rotate status` does.
func BenchmarkStatus(b *testing.B) {
	ctx := context.Background()
	state := "file://" + b.TempDir()
	vctx := vfs.NewVFSContext()
	kopstest.Seed(b, state, vctx, allKeysets...)
	for b.Loop() {
		s, err := Open(ctx, state, clusterName, vctx)
		if err != nil {
			b.Fatal(err)
		}
		sts, err := s.Status(ctx, nil)
		if err != nil || len(sts) != len(allKeysets) {
			b.Fatal(len(sts), err)
		}
	}
}
