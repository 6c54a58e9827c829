package apply_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cli/apply"
	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
)

// Test values: never printed; the checks only say whether they appear.
const (
	oldToken = "old-token-value-0001"
	oldURL   = "postgresql://app:old-password-0001@db/app"
)

// web reads secret/app's token.
var web = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
	Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Env: []corev1.EnvVar{{Name: "TOKEN",
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "token"}}}}}}}}}}

// planDoc rotates secret/app's token, then the password in secret/db's
// URL, whose set hook (HOOK) applies it to the database; nothing restarts
// (a restart waits for a rollout the fake API server cannot show).
const planDoc = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  restart: none
  items:
  - name: token
    secret: {name: app, generate: [{key: token, spec: "hex:16"}]}
  - name: pw
    after: [token]
    secret: {name: db, urlPassword: {keys: [URL]}}
    hooks:
      set: {exec: {command: HOOK}}
`

// printsPassword is a set hook that fails printing the new password (not
// the whole URL) on stderr, as a database client may.
const printsPassword = `["sh", "-c", "sed -n 's/.*\"pending\":{\"URL\":\"postgresql:\\/\\/app:\\([^@]*\\)@.*/\\1/p' \"$KUBE_ROTATE_VALUES_FILE\" >&2; exit 5"]`

const (
	hookOK   = `["true"]`
	hookFail = `["sh", "-c", "echo backend down; echo connection refused >&2; exit 3"]`
)

func fixture(t *testing.T) *fakeAPI {
	t.Helper()
	return newFakeAPI(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "u-app", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldToken)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u-db", ResourceVersion: "1"}, Data: map[string][]byte{"URL": []byte(oldURL)}},
		web)
}

// planFile writes planDoc with hook to a plan file and returns its path.
func planFile(t *testing.T, doc, hook string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(doc, "HOOK", hook, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fingerprint(v []byte) string {
	sum := sha256.Sum256(v)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// run runs `kubectl rotate apply ARGS`, and fails the test if an old or
// a new value is in the output.
func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return apply.NewCmdApply(a.TF, s) }, "", args...)
	values := []string{oldToken, oldURL, "old-password-0001"}
	for _, name := range []string{"app", "db", "app-pending", "db-pending"} {
		for _, v := range a.SecretData(t, name) {
			values = append(values, string(v))
		}
	}
	for _, v := range values {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("apply %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

// unchanged fails the test if secret/app or secret/db changed.
func unchanged(t *testing.T, a *fakeAPI) {
	t.Helper()
	if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(oldToken)) || !bytes.Equal(a.SecretData(t, "db")["URL"], []byte(oldURL)) {
		t.Error("a Secret in use changed")
	}
}

var (
	rotationID = regexp.MustCompile(`\b\d{8}t\d{6}-[0-9a-f]{6}\b`)
	timestamp  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
)

// stable replaces what each run makes anew: the rotation id (one per
// run), times (within [start, end]) and the fingerprints of the new
// values (which must be those of the values now in the Secrets).
func stable(t *testing.T, a *fakeAPI, s string, start, end time.Time) string {
	t.Helper()
	ids := map[string]bool{}
	for _, id := range rotationID.FindAllString(s, -1) {
		ids[id] = true
	}
	if len(ids) > 1 {
		t.Errorf("the output names %d rotation ids, want one", len(ids))
	}
	s = rotationID.ReplaceAllString(s, "<rotation-id>")
	s = timestamp.ReplaceAllStringFunc(s, func(ts string) string {
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(start.Truncate(time.Second)) || at.After(end) {
			t.Errorf("time %s is not within the run", ts)
		}
		return "<time>"
	})
	s = strings.ReplaceAll(s, fingerprint(a.SecretData(t, "app")["token"]), "sha256:<new token>")
	return strings.ReplaceAll(s, fingerprint(a.SecretData(t, "db")["URL"]), "sha256:<new URL>")
}

func TestApplyErrors(t *testing.T) {
	good := planFile(t, planDoc, hookOK)
	tests := []struct {
		name string
		args []string
		doc  string // when set, -f names a plan file holding doc
		want string // PLANFILE stands for the plan file's path
	}{
		{"no plan", nil, "", "error: give the plan with -f PLAN.yaml"},
		{"missing file", []string{"-f", "/nonexistent/plan.yaml"}, "", "error: /nonexistent/plan.yaml: no such file: give the path of a RotationPlan"},
		{"an argument", []string{"-f", good, "db"}, "", `error: unknown command "db" for "apply"`},
		{"bad output", []string{"-f", good, "-o", "wide"}, "", `error: --output "wide" is not supported: use json or yaml`},
		{"no dry-run: kubectl rotate plan is the dry run", []string{"-f", good, "--dry-run=client"}, "", "error: unknown flag: --dry-run"},
		{"unknown field", nil, strings.Replace(planDoc, "restart: none", "restarts: none", 1),
			`error: PLANFILE: plan: line 5: unknown field "restarts" in spec: use namespace, restart, timeout, previousTTL, replacePrevious, items`},
		{"bad restart mode", nil, strings.Replace(planDoc, "restart: none", "restart: later", 1),
			`error: PLANFILE: plan: spec.restart "later" is not known: use coalesced (each workload once, after all its writes), per-item or none`},
		{"missing secret", nil, strings.Replace(planDoc, "name: db,", "name: dbs,", 1), `error: plan: item "pw": secret/dbs not found in namespace ns: create it or fix the plan`},
		{"missing key", nil, strings.Replace(planDoc, "keys: [URL]", "keys: [DB_URL]", 1), `error: plan: item "pw": secret/db has no key DB_URL: fix the plan (or set createKeys: true for generated keys)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			args := tt.args
			if tt.doc != "" {
				args = []string{"-f", planFile(t, tt.doc, hookOK)}
			}
			r := run(t, a, args...)
			cmdtest.CheckFatal(t, r, strings.ReplaceAll(tt.want, "PLANFILE", strings.TrimPrefix(strings.Join(args, " "), "-f ")))
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("a rejected apply wrote %q", w)
			}
			unchanged(t, a)
		})
	}
}

// progress is what a run of planDoc reports, item by item.
const progress = `plan db: rotation <rotation-id> started on cluster localhost:8080 (server http://localhost:8080)
item token: new values in secret/app-pending
secret/app: token changed (generation 1); previous values in secret/app-previous
item token: secret/app holds the new values; the old ones are in secret/app-previous
item pw: new values in secret/db-pending
item pw: set hook succeeded
secret/db: URL changed (generation 1); previous values in secret/db-previous
item pw: secret/db holds the new values; the old ones are in secret/db-previous
plan db: rotation <rotation-id> complete
`

// A run: every item goes through its steps, the values change, the old
// ones stay in NAME-previous, the journal records the run.
func TestApplyRotates(t *testing.T) {
	a := fixture(t)
	path := planFile(t, planDoc, hookOK)
	start := time.Now()
	r := run(t, a, "-f", path)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Msg)
	}
	want := progress
	if got := stable(t, a, r.Out, start, time.Now()); got != want || r.ErrOut != "" {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q", got, want, r.ErrOut)
	}
	app, db := a.SecretData(t, "app"), a.SecretData(t, "db")
	if len(app["token"]) != 32 || bytes.Equal(app["token"], []byte(oldToken)) || bytes.Equal(db["URL"], []byte(oldURL)) ||
		!strings.HasPrefix(string(db["URL"]), "postgresql://app:") || !strings.HasSuffix(string(db["URL"]), "@db/app") {
		t.Error("the Secrets do not hold new values of the right shape")
	}
	if !bytes.Equal(a.SecretData(t, "app-previous")["token"], []byte(oldToken)) || !bytes.Equal(a.SecretData(t, "db-previous")["URL"], []byte(oldURL)) {
		t.Error("the previous values are not in NAME-previous")
	}
	if a.SecretData(t, "app-pending") != nil || a.SecretData(t, "db-pending") != nil {
		t.Error("a pending companion is left")
	}
	j := a.journal(t)
	if !strings.Contains(j, fingerprint(app["token"])) || strings.Contains(j, string(app["token"])) || strings.Contains(j, string(db["URL"])) {
		t.Error("the journal lacks the new token's fingerprint, or holds a value")
	}

	// The same command again reports the finished run and writes nothing.
	a.KC.ClearActions()
	r = run(t, a, "-f", path)
	// Once: "nothing to do", naming the plan file to undo, and no second
	// "complete" line.
	if want := "plan db: rotation <rotation-id> already finished (<time>); nothing to do: `kubectl rotate undo -f " + path + "` rolls it back\n"; r.Code != 0 || stable(t, a, r.Out, start, time.Now()) != want {
		t.Errorf("second apply: exit %d (%s), stdout:\n%s\nwant:\n%s", r.Code, r.Msg, r.Out, want)
	}
	if w := a.Writes(); len(w) > 0 {
		t.Errorf("a second apply wrote %q", w)
	}
}

// With -o, stdout is the run's record (steps, times, fingerprints, no
// values) and progress goes to stderr.
func TestApplyOutputFormats(t *testing.T) {
	tests := []struct{ format, want string }{
		{"json", `{
    "kind": "RotationPlanRun",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "plan": "db",
    "target": {
        "cluster": "localhost:8080",
        "server": "http://localhost:8080"
    },
    "fingerprint": "98bbacc1dbaa5e40360840b31c92542551d5b4801c5e9ceeff3dff5096a26f88",
    "rotationId": "<rotation-id>",
    "started": "<time>",
    "updated": "<time>",
    "items": {
        "pw": {
            "done": "finish",
            "fingerprints": {
                "URL": "sha256:<new URL>"
            },
            "steps": {
                "create": "<time>",
                "finish": "<time>",
                "set": "<time>",
                "test": "<time>"
            },
            "hooks": {
                "set": {
                    "step": "set",
                    "kind": "exec",
                    "exitCode": 0,
                    "started": "<time>",
                    "finished": "<time>"
                }
            }
        },
        "token": {
            "done": "finish",
            "fingerprints": {
                "token": "sha256:<new token>"
            },
            "steps": {
                "create": "<time>",
                "finish": "<time>",
                "set": "<time>",
                "test": "<time>"
            }
        }
    }
}
`},
		{"yaml", `apiVersion: rotate.kube-rotate.io/v1alpha1
fingerprint: 98bbacc1dbaa5e40360840b31c92542551d5b4801c5e9ceeff3dff5096a26f88
items:
  pw:
    done: finish
    fingerprints:
      URL: sha256:<new URL>
    hooks:
      set:
        exitCode: 0
        finished: "<time>"
        kind: exec
        started: "<time>"
        step: set
    steps:
      create: "<time>"
      finish: "<time>"
      set: "<time>"
      test: "<time>"
  token:
    done: finish
    fingerprints:
      token: sha256:<new token>
    steps:
      create: "<time>"
      finish: "<time>"
      set: "<time>"
      test: "<time>"
kind: RotationPlanRun
plan: db
rotationId: <rotation-id>
started: "<time>"
target:
  cluster: localhost:8080
  server: http://localhost:8080
updated: "<time>"
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			r := run(t, a, "-f", planFile(t, planDoc, hookOK), "-o", tt.format)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			end := time.Now()
			if got := stable(t, a, r.Out, start, end); got != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tt.want)
			}
			if got := stable(t, a, r.ErrOut, start, end); got != progress {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, progress)
			}
		})
	}
}

// A failed set hook stops the run before the Secret in use changes, with
// one line that says how to resume; what the hook printed is in it,
// without the values.
func TestApplyHookFails(t *testing.T) {
	// The engine's wording (pkg/procedure.StepError): start, token's four
	// steps, pw's create, then pw's set; PLANFILE is the plan's path.
	const (
		failed = "error: step 7 of 9 (pw/set) failed: "
		resume = ": re-run the same command to resume, or undo with kubectl rotate undo -f PLANFILE"
	)
	tests := []struct{ name, hook, want string }{
		{"exit 3", hookFail, failed + "hook set of item pw exited 3: connection refused" + resume},
		{"prints the values", `["sh", "-c", "cat \"$KUBE_ROTATE_VALUES_FILE\" >&2; echo >&2; exit 4"]`,
			failed + `hook set of item pw exited 4: {"secret":"db","namespace":"ns","item":"pw","step":"set","rotationId":"<rotation-id>",` +
				`"pending":{"URL":"[REDACTED]"},"current":{"URL":"[REDACTED]"}}` + resume},
		{"prints the new password", printsPassword, failed + "hook set of item pw exited 5: [REDACTED]" + resume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			path := planFile(t, planDoc, tt.hook)
			r := run(t, a, "-f", path)
			// The new password, from the pending URL: only checked for.
			pending := string(a.SecretData(t, "db-pending")["URL"])
			password := strings.TrimSuffix(strings.TrimPrefix(pending, "postgresql://app:"), "@db/app")
			if len(password) != 32 {
				t.Fatal("secret/db-pending does not hold a postgresql://app:PASSWORD@db/app URL with a new 32-character password")
			}
			if strings.Contains(r.Msg+r.Out+r.ErrOut, password) {
				r.Msg = strings.ReplaceAll(r.Msg, password, "<the new password>")
				t.Errorf("the new password is in the output")
			}
			if strings.Contains(a.journal(t), password) {
				t.Errorf("the new password is in configmap/kube-rotate-plan-db")
			}
			r.Msg = rotationID.ReplaceAllString(r.Msg, "<rotation-id>")
			cmdtest.CheckFatal(t, r, strings.ReplaceAll(tt.want, "PLANFILE", path))
			want := strings.Join(strings.SplitAfter(progress, "\n")[:5], "")
			if got := stable(t, a, r.Out, start, time.Now()); got != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
			}
			if !bytes.Equal(a.SecretData(t, "db")["URL"], []byte(oldURL)) || a.SecretData(t, "db-pending") == nil {
				t.Error("after a failed set hook, secret/db changed or its pending values are gone")
			}
		})
	}
}

// journal returns the data of the run's journal, configmap/kube-rotate-plan-db.
func (a *fakeAPI) journal(t *testing.T) string {
	t.Helper()
	obj, err := a.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("configmaps"), "ns", "kube-rotate-plan-db")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(obj.(*corev1.ConfigMap).Data)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---- test harness (the same in every pkg/cli/<verb> test file) ----

// fakeAPI is the shared fake API server (pkg/cli/internal/cmdtest), with
// this file's helpers as methods.
type fakeAPI struct{ *cmdtest.FakeAPI }

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	return &fakeAPI{cmdtest.NewFakeAPI(t, objs...)}
}
