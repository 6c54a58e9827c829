package finish_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubescheme "k8s.io/client-go/kubernetes/scheme"

	appsv1 "k8s.io/api/apps/v1"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/finish"
	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Test values: compared, never printed; the checks only say whether
// they appear in the output.
const (
	oldValue = "old-token-value-0001"
	newValue = "new-token-value-0002"
)

// rotatedFixture is secret/app rotated once (token: oldValue -> newValue,
// the old value kept in app-previous), secret/plain, never rotated, and
// objs; the actions of the setup are cleared.
func rotatedFixture(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	a := newFakeAPI(t, append(objs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "u-app", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldValue)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "ns", UID: "u-plain", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldValue)}},
	)...)
	_, err := secret.Rotate(context.Background(), secret.Clients{Kube: a.KC, Dynamic: a.TF.FakeDynamicClient}, secret.Options{
		Namespace: "ns", Secrets: []string{"app"}, KeepPrevious: true, PreviousTTL: 7 * 24 * time.Hour, By: "setup",
		Changes: []secret.Change{{Key: "token", Source: "test", Make: func([]byte, bool) ([]byte, error) { return []byte(newValue), nil }}},
		Now:     func() time.Time { return time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.KC.ClearActions()
	return a
}

// fixture is rotatedFixture, with web in both clients when dyn (its
// state as the dynamic client sees it) is given.
func fixture(t *testing.T, dyn ...runtime.Object) *fakeAPI {
	t.Helper()
	if len(dyn) == 0 {
		return rotatedFixture(t)
	}
	a := rotatedFixture(t, web)
	a.TF.FakeDynamicClient = dynamicfake.NewSimpleDynamicClient(kubescheme.Scheme, dyn...)
	return a
}

func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return finish.NewCmdFinish(a.TF, s) }, "", args...)
	for _, v := range []string{oldValue, newValue} {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("finish %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

// setPhase records phase as the last rotation's on secret/app.
func setPhase(t *testing.T, a *fakeAPI, phase string) {
	t.Helper()
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	obj, err := a.KC.Tracker().Get(gvr, "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	s := obj.(*corev1.Secret).DeepCopy()
	s.Annotations[v1alpha1.Phase] = phase
	if err := a.KC.Tracker().Update(gvr, s, "ns"); err != nil {
		t.Fatal(err)
	}
}

// web reads secret/app's token.
var web = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 2}, Spec: appsv1.DeploymentSpec{
	Replicas: ptr(int32(1)),
	Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Env: []corev1.EnvVar{{Name: "TOKEN",
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "token"}}}}}}}}}}

// rollout returns web with its rollout complete, or with no replica
// updated yet; rollout status is read through the dynamic client.
func rollout(done bool) runtime.Object {
	d := web.DeepCopy()
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}
	if !done {
		d.Status.UpdatedReplicas = 0
	}
	return d
}

func ptr[T any](v T) *T { return &v }

func TestFinishFlagErrors(t *testing.T) {
	const usage = "use `kubectl rotate finish secret/NAME`"
	tests := []struct {
		name  string
		args  []string
		phase string
		// dyn is what the dynamic client holds; web is in the typed
		// client whenever dyn is set.
		dyn  []runtime.Object
		want string
	}{
		{"no secret", nil, "", nil, "error: expected one Secret: " + usage},
		{"no kind", []string{"app"}, "", nil, `error: "app" names no kind: ` + usage},
		{"not a secret", []string{"configmap/app"}, "", nil, `error: "configmap/app" is not a Secret: ` + usage},
		{"bad output", []string{"secret/app", "-o", "wide"}, "", nil, `error: --output "wide" is not supported: use json or yaml`},
		{"bad dry-run", []string{"secret/app", "--dry-run=maybe"}, "", nil, `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		{"force with a value", []string{"secret/app", "--force=maybe"}, "", nil, `error: invalid argument "maybe" for "--force" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{"unknown flag", []string{"secret/app", "--restart=none"}, "", nil, "error: unknown flag: --restart"},
		{"never rotated", []string{"secret/plain"}, "", nil, "error: no previous values for secret/plain: secret/plain-previous not found (removed by `kubectl rotate finish`, or rotated with --no-keep-previous)"},
		{"missing secret", []string{"secret/nope"}, "", nil, "error: secret/nope not found in namespace ns: check the name and -n/--namespace"},
		{"rotation not complete", []string{"secret/app"}, v1alpha1.PhaseWritten, nil,
			`error: secret/app: the last rotation is "written", not complete: its consumers were not seen healthy; re-run the rotation to resume it, undo it, or pass --force`},
		{"consumer not healthy", []string{"secret/app"}, "", []runtime.Object{rollout(false)},
			`error: refusing to delete the previous values of secret/app while consumers are not healthy: deployment/web (Waiting for deployment "web" rollout to finish: 0 out of 1 new replicas have been updated); wait for them or pass --force`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t, tt.dyn...)
			if tt.phase != "" {
				setPhase(t, a, tt.phase)
			}
			r := run(t, a, tt.args...)
			cmdtest.CheckFatal(t, r, tt.want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("a refused finish wrote %q", w)
			}
			if a.SecretData(t, "app-previous") == nil {
				t.Error("a refused finish deleted secret/app-previous")
			}
		})
	}
}

func TestFinishDeletesPrevious(t *testing.T) {
	const progress = "secret/app-previous deleted: the previous values of secret/app are gone\n"
	tests := []struct {
		name        string
		args        []string
		dyn         []runtime.Object
		out, errOut string
	}{
		{"table", nil, nil, progress, ""},
		{"json", []string{"-o", "json"}, nil, `{
    "kind": "SecretRotationFinish",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "secret": "app",
    "namespace": "ns",
    "deleted": "app-previous",
    "consumers": []
}
`, progress},
		{"yaml", []string{"-o", "yaml"}, nil, `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: []
deleted: app-previous
kind: SecretRotationFinish
namespace: ns
secret: app
`, progress},
		{"healthy consumer", []string{"-o", "json"}, []runtime.Object{rollout(true)}, `{
    "kind": "SecretRotationFinish",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "secret": "app",
    "namespace": "ns",
    "deleted": "app-previous",
    "consumers": [
        {
            "kind": "Deployment",
            "namespace": "ns",
            "name": "web",
            "references": [
                {
                    "container": "web",
                    "how": "env",
                    "keys": [
                        "token"
                    ]
                }
            ],
            "restart": true
        }
    ]
}
`, progress},
		{"forced past an unhealthy consumer", []string{"--force"}, []runtime.Object{rollout(false)}, progress, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t, tt.dyn...)
			r := run(t, a, append([]string{"secret/app"}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if r.Out != tt.out || r.ErrOut != tt.errOut {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want %q", r.Out, tt.out, r.ErrOut, tt.errOut)
			}
			if got, want := strings.Join(a.Writes(), "; "), "delete secrets ns/app-previous; patch secrets ns/app"; got != want {
				t.Errorf("writes %q, want %q", got, want)
			}
			if a.SecretData(t, "app-previous") != nil {
				t.Error("secret/app-previous is still there")
			}
			if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(newValue)) {
				t.Error("finish changed the value of secret/app")
			}
		})
	}
}

func TestFinishDryRun(t *testing.T) {
	const would = "secret/app-previous would be deleted (dry run)\n"
	tests := []struct {
		name   string
		args   []string
		out    string
		writes string
	}{
		{"client", []string{"--dry-run=client"}, would, ""},
		{"client json", []string{"--dry-run=client", "-o", "json"}, `{
    "kind": "SecretRotationFinish",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "dryRun": "client",
    "secret": "app",
    "namespace": "ns",
    "deleted": "app-previous",
    "consumers": []
}
`, ""},
		{"server", []string{"--dry-run=server"}, would, "delete secrets ns/app-previous (dry run)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, append([]string{"secret/app"}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if r.Out != tt.out || r.ErrOut != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want nothing", r.Out, tt.out, r.ErrOut)
			}
			if got := strings.Join(a.Writes(), "; "); got != tt.writes {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			if a.SecretData(t, "app-previous") == nil {
				t.Error("a dry run deleted secret/app-previous")
			}
		})
	}
}

// ---- test harness (the same in every pkg/cli/<verb> test file) ----

// fakeAPI is the shared fake API server (pkg/cli/internal/cmdtest), with
// this file's helpers as methods.
type fakeAPI struct{ *cmdtest.FakeAPI }

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	return &fakeAPI{cmdtest.NewFakeAPI(t, objs...)}
}
