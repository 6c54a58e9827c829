package kops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/kops/pkg/apis/kops/registry"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// runUntilWait runs until the run stops for a person, and returns the step.
func runUntilWait(t *testing.T, s *Store, o RunOptions) *procedure.WaitError {
	t.Helper()
	err := s.Run(context.Background(), o)
	var werr *procedure.WaitError
	if !errors.As(err, &werr) {
		t.Fatalf("run: %v, want a stop for a person", err)
	}
	return werr
}

// TestRunStopsForAPerson: the run stops at each person's step of a
// kubernetes-ca + service-account rotation, in order, says what to hand
// out, does not pass it on a plain re-run, and refuses a --done for a
// step it is not waiting at, changing nothing.
func TestRunStopsForAPerson(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	var calls []string
	runner := func(_ context.Context, args []string) error { calls = append(calls, args[0]); return nil }
	o := RunOptions{Yes: true, Runner: runner, Out: io.Discard}

	w := runUntilWait(t, s, o)
	if w.Step != StepDistributeCA || !strings.Contains(w.Message, "certificate-authority-data") || !strings.Contains(w.Message, "--done "+StepDistributeCA) {
		t.Fatalf("first stop: %s\n%s", w.Step, w.Message)
	}
	sts, _ := s.Statuses(ctx, []string{"kubernetes-ca"})
	if newID := sts[0].Staged[0]; !strings.Contains(w.Message, newID.ID+"  sha256:"+newID.Fingerprint) || len(newID.Fingerprint) != 64 {
		t.Errorf("the stop does not name the new CA %s by fingerprint:\n%s", newID.ID, w.Message)
	}
	before := len(calls)
	if w := runUntilWait(t, s, o); w.Step != StepDistributeCA || len(calls) != before {
		t.Errorf("a re-run without --done went on: %s, %v", w.Step, calls[before:])
	}
	wrong := o
	wrong.Done = StepDistributeCreds
	if err := s.Run(ctx, wrong); err == nil || !strings.Contains(err.Error(), "the run is waiting at "+StepDistributeCA) {
		t.Errorf("--done for another step: %v", err)
	}
	notPerson := o
	notPerson.Done = StepRoll1
	if err := s.Run(ctx, notPerson); err == nil || !strings.Contains(err.Error(), "not a step a person does") {
		t.Errorf("--done for a kops step: %v", err)
	}
	allAt(t, s, StageStaged)

	o.Done = StepDistributeCA
	if w := runUntilWait(t, s, o); w.Step != StepDistributeCreds || !strings.Contains(w.Message, "admin credentials") {
		t.Errorf("second stop: %s\n%s", w.Step, w.Message)
	}
	allAt(t, s, StagePromoted)
	o.Done = StepDistributeCreds
	if w := runUntilWait(t, s, o); w.Step != StepServiceAcctTokens || !strings.Contains(w.Message, "stop working at the distrust") {
		t.Errorf("third stop: %s\n%s", w.Step, w.Message)
	}
	o.Done = StepServiceAcctTokens
	if err := s.Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	allAt(t, s, StageIdle)
	// The same command again after the end (with its --done) is harmless.
	if err := s.Run(ctx, o); err != nil {
		t.Errorf("re-run of the last command: %v", err)
	}
}

// TestNoPersonForOtherKeysets: a rotation of neither kubernetes-ca nor
// service-account hands nothing out and runs through.
func TestNoPersonForOtherKeysets(t *testing.T) {
	s := newStore(t, "memfs://etcd-"+t.Name(), vfs.NewTestingVFSContext(), "etcd-manager-ca-main")
	if err := s.Run(context.Background(), RunOptions{Yes: true, Runner: okRunner, Out: io.Discard}); err != nil {
		t.Fatalf("etcd-manager-ca-main rotation: %v", err)
	}
}

// tokenCluster is a cluster with legacy token Secrets whose tokens
// controller issues a token again once it is removed (as the real one
// does: e2e/satokens_test.go).
func tokenCluster(names ...string) *fake.Clientset {
	var objs []runtime.Object
	for _, n := range names {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: n, ResourceVersion: "1",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
			Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{corev1.ServiceAccountTokenKey: []byte("not-printed-" + n)}})
	}
	kc := fake.NewClientset(objs...)
	kc.PrependReactor("patch", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: p.GetNamespace(), Name: p.GetName(), ResourceVersion: "2",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
			Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{corev1.ServiceAccountTokenKey: []byte("reissued")}}
		return true, sec, kc.Tracker().Update(corev1.SchemeGroupVersion.WithResource("secrets"), sec, p.GetNamespace())
	})
	return kc
}

// TestServiceAccountTokensStep: with the cluster readable, no legacy
// token passes by itself; tokens stop the run with their names (never
// their values), and --reissue-tokens issues them again and goes on; a
// cluster that cannot be read is a person's to check.
func TestServiceAccountTokensStep(t *testing.T) {
	for _, tt := range []struct {
		name     string
		kc       func() (kubernetes.Interface, error)
		reissue  bool
		wantStop string // "" when the run completes
		wantText []string
	}{
		{"none", func() (kubernetes.Interface, error) { return tokenCluster(), nil }, false, "", nil},
		{"listed", func() (kubernetes.Interface, error) { return tokenCluster("ci-token", "old-token"), nil }, false, StepServiceAcctTokens,
			[]string{"2 legacy service-account token Secret(s)", "secret/ci-token -n apps (serviceaccount builder)", "--reissue-tokens"}},
		{"reissued", func() (kubernetes.Interface, error) { return tokenCluster("ci-token"), nil }, true, "", nil},
		{"unreadable", func() (kubernetes.Interface, error) { return nil, fmt.Errorf("connection refused") }, true, StepServiceAcctTokens,
			[]string{"Cannot list the legacy service-account token Secrets (context x): connection refused", "--kubeconfig"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, "memfs://sa-"+strings.ReplaceAll(t.Name(), "/", "-"), vfs.NewTestingVFSContext(), "service-account")
			s.Selected = []string{"service-account"}
			var out strings.Builder
			var kc kubernetes.Interface
			o := RunOptions{Yes: true, Runner: okRunner, Out: &out, ReissueTokens: tt.reissue,
				KubeClient: func(context.Context, string, string) (kubernetes.Interface, string, error) {
					c, err := tt.kc()
					kc = c
					return c, "context x", err
				}}
			err := s.Run(context.Background(), o)
			var werr *procedure.WaitError
			switch {
			case tt.wantStop == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantStop != "" && (!errors.As(err, &werr) || werr.Step != tt.wantStop):
				t.Fatalf("run: %v, want a stop at %s", err, tt.wantStop)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(werr.Message, w) {
					t.Errorf("stop message lacks %q:\n%s", w, werr.Message)
				}
			}
			if strings.Contains(out.String()+fmt.Sprint(err), "not-printed") {
				t.Error("a token value was printed")
			}
			if tt.reissue && kc != nil {
				sec, _ := kc.CoreV1().Secrets("apps").Get(context.Background(), "ci-token", metav1.GetOptions{})
				if string(sec.Data[corev1.ServiceAccountTokenKey]) != "reissued" || !strings.Contains(out.String(), "secret/ci-token -n apps: token issued again") {
					t.Errorf("token not reissued:\n%s", out.String())
				}
			}
		})
	}
}

// TestKopsVersionMustMatchTheCluster: the kops that runs the steps must be
// the one that last updated the cluster; nothing runs otherwise.
func TestKopsVersionMustMatchTheCluster(t *testing.T) {
	for _, tt := range []struct {
		name, marker, have, want string
	}{
		{"never updated", "", "1.36.2", ""},
		{"same", "1.36.2\n", "1.36.2", ""},
		{"older kops", "1.37.0", "1.36.2", "older than 1.37.0, which last updated cluster " + clusterName + " (kops-version.txt): kops refuses to downgrade"},
		{"newer kops", "1.30.1", "1.36.2", "the kops on PATH is 1.36.2, but cluster " + clusterName + " was last updated by kops 1.30.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, "memfs://ver-"+strings.ReplaceAll(t.Name(), "/", "-"), vfs.NewTestingVFSContext(), "etcd-manager-ca-main")
			if tt.marker != "" {
				base, err := registry.ConfigBase(s.vfsContext, s.cluster)
				if err != nil {
					t.Fatal(err)
				}
				if err := base.Join(registry.PathKopsVersionUpdated).WriteFile(ctx, strings.NewReader(tt.marker), nil); err != nil {
					t.Fatal(err)
				}
			}
			ran := 0
			runner := func(context.Context, []string) error { ran++; return nil }
			err := s.Run(ctx, RunOptions{Yes: true, Runner: runner, Out: io.Discard,
				KopsVersion: func(context.Context) (string, error) { return tt.have, nil }})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v, want %q", err, tt.want)
			}
			if ran != 0 {
				t.Errorf("kops ran %d times", ran)
			}
			allAt(t, s, StageIdle) // nothing staged
		})
	}
}

// TestJournaledFlagsAreReused: the kops flags a run was given are
// journaled; a re-run without them runs the same command lines, and new
// flags replace them.
func TestJournaledFlagsAreReused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "memfs://flags-"+t.Name(), vfs.NewTestingVFSContext(), "etcd-manager-ca-main")
	var calls []string
	fail := true
	runner := func(_ context.Context, args []string) error {
		calls = append(calls, strings.Join(args[:len(args)-4], " "))
		if args[0] == "rolling-update" && fail {
			fail = false
			return errors.New("interrupted")
		}
		return nil
	}
	tf := CLIOptions{Target: "terraform", Out: "/tf", InstanceGroupRoles: []string{"node"}}
	err := s.Run(ctx, RunOptions{Yes: true, Runner: runner, Out: io.Discard, CLI: tf, CLISet: true})
	var werr *procedure.WaitError
	if !errors.As(err, &werr) || werr.Step != StepApply1 || !strings.Contains(werr.Message, "/tf") {
		t.Fatalf("run with --target terraform: %v", err)
	}
	// Re-run without the flags: the journaled ones are used.
	err = s.Run(ctx, RunOptions{Yes: true, Runner: runner, Out: io.Discard, Done: StepApply1})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("re-run: %v", err)
	}
	if want := []string{"update cluster --yes --target terraform --out /tf", "rolling-update cluster --yes --instance-group-roles node"}; strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", calls, want)
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil || rec.CLI.Out != "/tf" {
		t.Fatalf("record: %+v %v", rec, err)
	}
	if next := NextCommands(ctx, StageStaged, rec, clusterName, s.StateStore); len(next) == 0 || !strings.HasPrefix(next[0], "kops rolling-update cluster --yes --instance-group-roles node") {
		t.Errorf("status shows %q, not the journaled flags", next)
	}
	// New flags replace them.
	calls = nil
	if err := s.Run(ctx, RunOptions{Yes: true, Runner: runner, Out: io.Discard, CLI: CLIOptions{CloudOnly: true}, CLISet: true}); err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[0] != "rolling-update cluster --yes --cloudonly" {
		t.Errorf("calls with new flags: %q", calls)
	}
}

// TestDistrustedByHandIsNotForever: keysets rotated by hand to the end
// (no journal for their keys) show as idle, flagged, not "distrusted"
// forever; a distrust taken through kops-rotate shows distrusted until its
// final steps are journaled.
func TestDistrustedByHandIsNotForever(t *testing.T) {
	ctx := context.Background()
	for _, viaTool := range []bool{false, true} {
		s := newStore(t, fmt.Sprintf("memfs://hand-%v-%s", viaTool, t.Name()), vfs.NewTestingVFSContext(), "kubernetes-ca")
		if _, err := s.Stage(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Promote(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if viaTool {
			if err := s.MarkExported(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.KeysetStep(ctx, StepDistrust, nil, false); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.Distrust(ctx, nil, false); err != nil {
			t.Fatal(err)
		}
		sts, err := s.Status(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, wantHand := StageIdle, true
		if viaTool {
			want, wantHand = StageDistrusted, false
		}
		if sts[0].Stage != want || sts[0].DistrustedByHand != wantHand {
			t.Errorf("distrusted via kops-rotate %v: stage %s, by hand %v; want %s, %v", viaTool, sts[0].Stage, sts[0].DistrustedByHand, want, wantHand)
		}
	}
}

// TestTokenContextIsJournaled: the context the token check reads is kept
// with the rotation, so the re-run the stop suggests (--reissue-tokens,
// without --context) reads the same cluster.
func TestTokenContextIsJournaled(t *testing.T) {
	s := newStore(t, "memfs://ctx-"+t.Name(), vfs.NewTestingVFSContext(), "service-account")
	var contexts []string
	kc := tokenCluster("ci-token")
	client := func(_ context.Context, _, kctx string) (kubernetes.Interface, string, error) {
		contexts = append(contexts, kctx)
		return kc, "context " + kctx, nil
	}
	o := RunOptions{Yes: true, Runner: okRunner, Out: io.Discard, KubeClient: client, CLI: CLIOptions{Context: "prod-admin"}, CLISet: true}
	if w := runUntilWait(t, s, o); w.Step != StepServiceAcctTokens || !strings.Contains(w.Message, "(context prod-admin)") {
		t.Fatalf("stop: %s\n%s", w.Step, w.Message)
	}
	if err := s.Run(context.Background(), RunOptions{Yes: true, Runner: okRunner, Out: io.Discard, KubeClient: client, ReissueTokens: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(contexts, ",") != "prod-admin,prod-admin" {
		t.Errorf("contexts read: %v", contexts)
	}
}

// TestValidationThatCannotRun: a kops that cannot validate (another
// version, none on PATH) refuses the promote saying so, not as a cluster
// that fails validation.
func TestValidationThatCannotRun(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "memfs://cv-"+t.Name(), vfs.NewTestingVFSContext(), "kubernetes-ca")
	if _, err := s.KeysetStep(ctx, StepStage, nil, false); err != nil {
		t.Fatal(err)
	}
	s.Validate = func(context.Context) error {
		return &cannotValidate{errors.New("the kops on PATH is 1.36.2, older than 1.37.0")}
	}
	_, err := s.KeysetStep(ctx, StepPromote, nil, false)
	if err == nil || !strings.Contains(err.Error(), "promote refused, nothing changed: kops validate cluster could not run: the kops on PATH is 1.36.2") || strings.Contains(err.Error(), "does not validate") {
		t.Errorf("promote: %v", err)
	}
	s.Validate = func(context.Context) error { return errors.New("exit status 2: node nodes-a is not ready") }
	if _, err := s.KeysetStep(ctx, StepPromote, nil, false); err == nil || !strings.Contains(err.Error(), "does not validate (exit status 2: node nodes-a is not ready)") {
		t.Errorf("promote of a cluster that fails validation: %v", err)
	}
	allAt(t, s, StageStaged)
}
