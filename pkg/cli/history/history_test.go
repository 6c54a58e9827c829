package history_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/history"
	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
)

// secretValue is the value of every test Secret: never printed; the
// checks only say whether it appears in the output.
const secretValue = "do-not-print-0001"

func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return history.NewCmdHistory(a.TF, s) }, "", args...)
	if strings.Contains(r.Out+r.ErrOut+r.Msg, secretValue) {
		t.Errorf("history %s printed a secret value", strings.Join(args, " "))
	}
	return r
}

func secretWith(name string, annotations map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("u-" + name), Annotations: annotations},
		Data: map[string][]byte{"token": []byte(secretValue), "url": []byte("postgresql://app:" + secretValue + "@db/app")}}
}

func TestHistoryErrors(t *testing.T) {
	const usage = "use `kubectl rotate history secret/NAME`"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no secret", nil, "error: expected one Secret: " + usage},
		{"no kind", []string{"app"}, `error: "app" names no kind: ` + usage},
		{"not a secret", []string{"deployment/web"}, `error: "deployment/web" is not a Secret: ` + usage},
		{"empty name", []string{"secret/"}, `error: "secret/" is not a Secret: ` + usage},
		{"bad output", []string{"secret/app", "-o", "wide"}, `error: --output "wide" is not supported: use json or yaml`},
		{"no dry-run: it writes nothing", []string{"secret/app", "--dry-run=client"}, "error: unknown flag: --dry-run"},
		{"missing secret", []string{"secret/nope"}, `error: reading secret/nope in namespace ns: secrets "nope" not found`},
		{"broken history", []string{"secret/broken"}, "error: secret/broken: annotation " + v1alpha1.History + " is not valid: invalid character 'o' in literal null (expecting 'u')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAPI(t, secretWith("app", nil), secretWith("broken", map[string]string{v1alpha1.History: "not json"}))
			r := run(t, a, tt.args...)
			cmdtest.CheckFatal(t, r, tt.want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("history wrote %q", w)
			}
		})
	}
}

func TestHistoryOutput(t *testing.T) {
	// Times whole seconds in the past, so AGE is exact (3h, 2d).
	now := time.Now().UTC().Truncate(time.Second)
	t1, t2 := now.Add(-50*time.Hour), now.Add(-3*time.Hour)
	h := []v1alpha1.Entry{
		{Time: metav1.NewTime(t1), Action: v1alpha1.ActionRotate, Generation: 1, Keys: map[string]string{"url": "sha256:1111aaaa2222", "token": "sha256:3333bbbb4444"}, By: "alice"},
		{Time: metav1.NewTime(t2), Action: v1alpha1.ActionUndo, Generation: 2, Keys: map[string]string{"token": "sha256:5555cccc6666"}},
	}
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	rotated := secretWith("app", map[string]string{v1alpha1.History: string(raw), v1alpha1.Phase: v1alpha1.PhaseComplete, v1alpha1.Previous: "app-previous"})
	ts1, ts2 := t1.Format(time.RFC3339), t2.Format(time.RFC3339)
	tests := []struct {
		name   string
		secret string
		args   []string
		want   string
	}{
		{"table", "app", nil, `TIME                   AGE   ACTION   GENERATION   KEYS        FINGERPRINTS                              BY
` + ts1 + `   2d    rotate   1            token,url   sha256:3333bbbb4444,sha256:1111aaaa2222   alice
` + ts2 + `   3h    undo     2            token       sha256:5555cccc6666                       -
`},
		{"json", "app", []string{"-o", "json"}, `{
    "kind": "SecretRotationHistory",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "secret": "app",
    "namespace": "ns",
    "phase": "complete",
    "previous": "app-previous",
    "items": [
        {
            "time": "` + ts1 + `",
            "action": "rotate",
            "generation": 1,
            "keys": {
                "token": "sha256:3333bbbb4444",
                "url": "sha256:1111aaaa2222"
            },
            "by": "alice"
        },
        {
            "time": "` + ts2 + `",
            "action": "undo",
            "generation": 2,
            "keys": {
                "token": "sha256:5555cccc6666"
            }
        }
    ]
}
`},
		{"yaml", "app", []string{"-o", "yaml"}, `apiVersion: rotate.kube-rotate.io/v1alpha1
items:
- action: rotate
  by: alice
  generation: 1
  keys:
    token: sha256:3333bbbb4444
    url: sha256:1111aaaa2222
  time: "` + ts1 + `"
- action: undo
  generation: 2
  keys:
    token: sha256:5555cccc6666
  time: "` + ts2 + `"
kind: SecretRotationHistory
namespace: ns
phase: complete
previous: app-previous
secret: app
`},
		{"never rotated", "plain", nil, "secret/plain has no rotation history (never rotated with kubectl rotate)\n"},
		{"never rotated, json", "plain", []string{"-o", "json"}, `{
    "kind": "SecretRotationHistory",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "secret": "plain",
    "namespace": "ns",
    "items": []
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAPI(t, rotated, secretWith("plain", nil))
			r := run(t, a, append([]string{"secret/" + tt.secret}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if r.Out != tt.want || r.ErrOut != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want nothing", r.Out, tt.want, r.ErrOut)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("history wrote %q", w)
			}
		})
	}
}

// kubectl's two-word form, secret NAME, reads the same Secret.
func TestHistorySecretNameForms(t *testing.T) {
	for _, args := range [][]string{{"secret/plain"}, {"secrets/plain"}, {"secret", "plain"}, {"Secret", "plain"}} {
		a := newFakeAPI(t, secretWith("plain", nil))
		r := run(t, a, args...)
		if want := "secret/plain has no rotation history (never rotated with kubectl rotate)\n"; r.Code != 0 || r.Out != want {
			t.Errorf("history %s: exit %d (%s), stdout %q, want %q", strings.Join(args, " "), r.Code, r.Msg, r.Out, want)
		}
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
