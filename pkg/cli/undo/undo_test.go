package undo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
	"github.com/kube-rotate/kube-rotate/pkg/cli/undo"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	rotateplan "github.com/kube-rotate/kube-rotate/pkg/rotators/plan"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Test values: compared, never printed; the checks only say whether
// they appear in the output.
const (
	oldValue = "old-token-value-0001"
	newValue = "new-token-value-0002"
)

// Fingerprints of the values, as the records show them: "sha256:" and
// the first 12 hex digits of the value's SHA-256 (TestFingerprints).
const (
	oldFP = "sha256:db8c9603f052"
	newFP = "sha256:c41b2544aa40"
)

var rotatedAt = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// rotatedFixture is secret/app rotated once (token: oldValue -> newValue,
// the old value kept in app-previous) and secret/plain, never rotated;
// the actions of the setup are cleared.
func rotatedFixture(t *testing.T) *fakeAPI {
	t.Helper()
	a := newFakeAPI(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "u-app", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldValue)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "ns", UID: "u-plain", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldValue)}},
	)
	_, err := secret.Rotate(context.Background(), secret.Clients{Kube: a.KC, Dynamic: a.TF.FakeDynamicClient}, secret.Options{
		Namespace: "ns", Secrets: []string{"app"}, KeepPrevious: true, PreviousTTL: 7 * 24 * time.Hour, By: "setup",
		Changes: []secret.Change{{Key: "token", Source: "test", Make: func([]byte, bool) ([]byte, error) { return []byte(newValue), nil }}},
		Now:     func() time.Time { return rotatedAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.KC.ClearActions()
	return a
}

func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return undo.NewCmdUndo(a.TF, s) }, "", args...)
	for _, v := range []string{oldValue, newValue} {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("undo %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

func TestUndoFlagErrors(t *testing.T) {
	const usage = "use `kubectl rotate undo secret/NAME`"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no secret", nil, "error: expected one Secret: " + usage},
		{"no kind", []string{"app"}, `error: "app" names no kind: ` + usage},
		{"not a secret", []string{"deployment/web"}, `error: "deployment/web" is not a Secret: ` + usage},
		{"two secrets", []string{"secret/app", "secret/plain"}, `error: "secret/app secret/plain" is not a Secret: ` + usage},
		{"bad restart", []string{"secret/app", "--restart", "later"}, `error: --restart "later" is not supported: use rollout or none`},
		{"zero timeout", []string{"secret/app", "--timeout", "0s"}, "error: --timeout must be positive, got 0s"},
		{"timeout not a duration", []string{"secret/app", "--timeout", "soon"}, `error: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"`},
		{"bad output", []string{"secret/app", "-o", "wide"}, `error: --output "wide" is not supported: use json or yaml`},
		{"bad dry-run", []string{"secret/app", "--dry-run=maybe"}, `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		{"unknown flag", []string{"secret/app", "--force"}, "error: unknown flag: --force"},
		{"name and plan", []string{"secret/app", "-f", "plan.yaml"}, "error: give secret/NAME or -f PLAN.yaml, not both"},
		{"missing plan", []string{"-f", "/nonexistent/plan.yaml"}, "error: /nonexistent/plan.yaml: no such file: give the path of a RotationPlan"},
		{"never rotated", []string{"secret/plain"}, "error: no previous values for secret/plain: secret/plain-previous not found (removed by `kubectl rotate finish`, or rotated with --no-keep-previous)"},
		{"missing secret", []string{"secret/nope"}, "error: secret/nope not found in namespace ns: check the name and -n/--namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, tt.args...)
			cmdtest.CheckFatal(t, r, tt.want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("a rejected undo wrote %q", w)
			}
			if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(newValue)) {
				t.Error("a rejected undo changed secret/app")
			}
		})
	}
}

// The plan of an undo, in each format; nothing is written.
func TestUndoDryRunClient(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"table", nil, `Plan (dry run: nothing was changed)
On cluster localhost:8080 (server http://localhost:8080)

secret/app (namespace ns, generation 2)
  KEY     NEW VALUE FROM   OLD                   NEW
  token   previous         ` + newFP + `   ` + oldFP + `
  previous values -> secret/app-previous

Consumers: none found (no workload reads a changed key)

Undo after the rotation:
  kubectl rotate undo secret/app -n ns
`},
		{"json", []string{"-o", "json"}, `{
    "kind": "SecretRotation",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "dryRun": "client",
    "target": {
        "cluster": "localhost:8080",
        "server": "http://localhost:8080"
    },
    "secrets": [
        {
            "namespace": "ns",
            "name": "app",
            "generation": 2,
            "keys": [
                {
                    "key": "token",
                    "source": "previous",
                    "old": "` + newFP + `",
                    "new": "` + oldFP + `"
                }
            ],
            "previous": "app-previous"
        }
    ],
    "consumers": [],
    "phase": "planned"
}
`},
		{"yaml", []string{"-o", "yaml"}, `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: []
dryRun: client
kind: SecretRotation
phase: planned
secrets:
- generation: 2
  keys:
  - key: token
    new: ` + oldFP + `
    old: ` + newFP + `
    source: previous
  name: app
  namespace: ns
  previous: app-previous
target:
  cluster: localhost:8080
  server: http://localhost:8080
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, append([]string{"secret/app", "--dry-run=client"}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if r.Out != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.Out, tt.want)
			}
			if r.ErrOut != "" {
				t.Errorf("stderr %q, want nothing", r.ErrOut)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("--dry-run=client wrote %q", w)
			}
		})
	}
}

// A real undo: the value is back, the history says who undid it, and a
// second undo changes nothing.
func TestUndoRestores(t *testing.T) {
	a := rotatedFixture(t)
	r := run(t, a, "secret/app")
	want := "restoring on cluster localhost:8080 (server http://localhost:8080)\n" +
		"secret/app: previous values of token restored (generation 2)\n" +
		"\nundo complete: secret/app holds its previous values (generation 2), 0 workload(s) restarted\n"
	if r.Code != 0 || r.Out != want || r.ErrOut != "" {
		t.Fatalf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr: %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
	}
	if got, want := strings.Join(a.Writes(), "; "), "update secrets ns/app; patch secrets ns/app"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(oldValue)) {
		t.Error("secret/app does not hold the previous value")
	}
	h := a.history(t, "app")
	if len(h) != 2 || h[1].Action != "undo" || h[1].By != cmdtest.WhoAmI || h[1].Generation != 2 {
		t.Errorf("history %+v, want a second entry: undo, generation 2, by %s", h, cmdtest.WhoAmI)
	}

	a.KC.ClearActions()
	r = run(t, a, "secret/app")
	if want := "secret/app already holds the previous values; nothing to undo\n"; r.Code != 0 || r.Out != want {
		t.Errorf("second undo: exit %d (%s), stdout %q, want %q", r.Code, r.Msg, r.Out, want)
	}
	if w := a.Writes(); len(w) > 0 {
		t.Errorf("a second undo wrote %q", w)
	}
}

// With -o, stdout is the record alone and progress goes to stderr.
func TestUndoOutputFormats(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{"json", `{
    "kind": "SecretRotation",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "target": {
        "cluster": "localhost:8080",
        "server": "http://localhost:8080"
    },
    "secrets": [
        {
            "namespace": "ns",
            "name": "app",
            "generation": 2,
            "keys": [
                {
                    "key": "token",
                    "source": "previous",
                    "old": "` + newFP + `",
                    "new": "` + oldFP + `"
                }
            ],
            "previous": "app-previous"
        }
    ],
    "consumers": [],
    "phase": "complete"
}
`},
		{"yaml", `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: []
kind: SecretRotation
phase: complete
secrets:
- generation: 2
  keys:
  - key: token
    new: ` + oldFP + `
    old: ` + newFP + `
    source: previous
  name: app
  namespace: ns
  previous: app-previous
target:
  cluster: localhost:8080
  server: http://localhost:8080
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, "secret/app", "-o", tt.format)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if r.Out != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.Out, tt.want)
			}
			if want := "restoring on cluster localhost:8080 (server http://localhost:8080)\nsecret/app: previous values of token restored (generation 2)\n"; r.ErrOut != want {
				t.Errorf("stderr %q, want %q", r.ErrOut, want)
			}
			if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(oldValue)) {
				t.Error("secret/app does not hold the previous value")
			}
		})
	}
}

// --dry-run=server sends every write with dryRun=All; nothing changes.
func TestUndoDryRunServer(t *testing.T) {
	a := rotatedFixture(t)
	r := run(t, a, "secret/app", "--dry-run=server")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Msg)
	}
	if got, want := strings.Join(a.Writes(), "; "), "update secrets ns/app (dry run)"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(newValue)) {
		t.Error("a server dry run changed secret/app")
	}
	// It says nothing changed, not "undo complete".
	if strings.Contains(r.Out, "undo complete") || !strings.Contains(r.Out, "undo accepted by the API server (dry run): secret/app was not changed") {
		t.Errorf("stdout of --dry-run=server: %q", r.Out)
	}
}

const planDoc = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  namespace: ns
  restart: none
  items:
  - name: token
    secret: {name: plain, generate: [{key: token, spec: "hex:16"}]}
`

// appliedPlan applies planDoc to secret/plain and returns the plan's path.
func appliedPlan(t *testing.T, a *fakeAPI) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(planDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := planspec.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotateplan.Apply(context.Background(), rotateplan.Options{Plan: p, Clients: secret.Clients{Kube: a.KC, Dynamic: a.TF.FakeDynamicClient}, Namespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.SecretData(t, "plain")["token"], []byte(oldValue)) {
		t.Fatal("the plan did not rotate secret/plain")
	}
	a.KC.ClearActions()
	return path
}

// undo -f rolls a plan run back and deletes its journal.
func TestUndoPlan(t *testing.T) {
	a := rotatedFixture(t)
	path := appliedPlan(t, a)
	r := run(t, a, "-f", path)
	if r.Code != 0 || r.Out != "plan db: rolled back\n" {
		t.Fatalf("exit %d (%s), stdout %q", r.Code, r.Msg, r.Out)
	}
	if want := "secret/plain: previous values of token restored (generation 2)\n"; r.ErrOut != want {
		t.Errorf("stderr %q, want %q", r.ErrOut, want)
	}
	if !bytes.Equal(a.SecretData(t, "plain")["token"], []byte(oldValue)) {
		t.Error("secret/plain does not hold the previous value")
	}
	if _, err := a.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("configmaps"), "ns", rotateplan.JournalName("db")); !apierrors.IsNotFound(err) {
		t.Errorf("the journal is still there (%v)", err)
	}
	r = run(t, a, "-f", path)
	cmdtest.CheckFatal(t, r, "error: plan db has no run to undo in namespace ns (no configmap/"+rotateplan.JournalName("db")+")")
}

// -f with --dry-run=client must not roll anything back.
func TestUndoPlanDryRunWritesNothing(t *testing.T) {
	a := rotatedFixture(t)
	path := appliedPlan(t, a)
	for _, flag := range []string{"--dry-run=client", "--dry-run=server", "-o=json", "--restart=none", "--timeout=1s"} {
		r := run(t, a, "-f", path, flag)
		if w := a.Writes(); len(w) > 0 {
			t.Errorf("undo -f %s wrote %q (exit %d, stdout %q)", flag, w, r.Code, r.Out)
		}
		if r.Code != 1 || !strings.Contains(r.Msg, "undo -f takes no --") || strings.Contains(r.Msg, "\n") {
			t.Errorf("undo -f %s: exit %d, message %q; want a one-line refusal", flag, r.Code, r.Msg)
		}
	}
}

func TestFingerprints(t *testing.T) {
	for v, want := range map[string]string{oldValue: oldFP, newValue: newFP} {
		sum := sha256.Sum256([]byte(v))
		if got := "sha256:" + hex.EncodeToString(sum[:])[:12]; got != want {
			t.Errorf("fingerprint constant %s, computed %s", want, got)
		}
	}
}

// history reads the rotation history recorded on secret/name.
func (a *fakeAPI) history(t *testing.T, name string) []v1alpha1.Entry {
	t.Helper()
	obj, err := a.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "ns", name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1alpha1.ReadHistory(obj.(*corev1.Secret).Annotations)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ---- test harness (the same in every pkg/cli/<verb> test file) ----

// fakeAPI is the shared fake API server (pkg/cli/internal/cmdtest), with
// this file's helpers as methods.
type fakeAPI struct{ *cmdtest.FakeAPI }

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	return &fakeAPI{cmdtest.NewFakeAPI(t, objs...)}
}
