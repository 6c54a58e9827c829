package apply_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubefake "k8s.io/client-go/kubernetes/fake"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	restfake "k8s.io/client-go/rest/fake"
	k8stesting "k8s.io/client-go/testing"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cmd/apply"
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
func run(t *testing.T, a *fakeAPI, args ...string) result {
	t.Helper()
	r := execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return apply.NewCmdApply(a.tf, s) }, "", args...)
	values := []string{oldToken, oldURL, "old-password-0001"}
	for _, name := range []string{"app", "db", "app-pending", "db-pending"} {
		for _, v := range a.secretData(t, name) {
			values = append(values, string(v))
		}
	}
	for _, v := range values {
		if strings.Contains(r.out+r.errOut+r.msg, v) {
			t.Errorf("apply %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

// unchanged fails the test if secret/app or secret/db changed.
func unchanged(t *testing.T, a *fakeAPI) {
	t.Helper()
	if !bytes.Equal(a.secretData(t, "app")["token"], []byte(oldToken)) || !bytes.Equal(a.secretData(t, "db")["URL"], []byte(oldURL)) {
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
	s = strings.ReplaceAll(s, fingerprint(a.secretData(t, "app")["token"]), "sha256:<new token>")
	return strings.ReplaceAll(s, fingerprint(a.secretData(t, "db")["URL"]), "sha256:<new URL>")
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
			`error: PLANFILE: plan: line 5: unknown field "restarts" in spec: use namespace, restart, timeout, previousTTL, items`},
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
			checkFatal(t, r, strings.ReplaceAll(tt.want, "PLANFILE", strings.TrimPrefix(strings.Join(args, " "), "-f ")))
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
			if w := a.writes(); len(w) > 0 {
				t.Errorf("a rejected apply wrote %q", w)
			}
			unchanged(t, a)
		})
	}
}

// progress is what a run of planDoc reports, item by item.
const progress = `plan db: rotation <rotation-id> started
item token: new values in secret/app-pending
secret/app: token changed (generation 1); previous values in secret/app-previous
item token: secret/app holds the new values; the old ones are in secret/app-previous
item pw: new values in secret/db-pending
item pw: set hook succeeded
secret/db: URL changed (generation 1); previous values in secret/db-previous
item pw: secret/db holds the new values; the old ones are in secret/db-previous
`

// A run: every item goes through its steps, the values change, the old
// ones stay in NAME-previous, the journal records the run.
func TestApplyRotates(t *testing.T) {
	a := fixture(t)
	path := planFile(t, planDoc, hookOK)
	start := time.Now()
	r := run(t, a, "-f", path)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.msg)
	}
	want := progress + "plan db: rotation <rotation-id> complete\n"
	if got := stable(t, a, r.out, start, time.Now()); got != want || r.errOut != "" {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q", got, want, r.errOut)
	}
	app, db := a.secretData(t, "app"), a.secretData(t, "db")
	if len(app["token"]) != 32 || bytes.Equal(app["token"], []byte(oldToken)) || bytes.Equal(db["URL"], []byte(oldURL)) ||
		!strings.HasPrefix(string(db["URL"]), "postgresql://app:") || !strings.HasSuffix(string(db["URL"]), "@db/app") {
		t.Error("the Secrets do not hold new values of the right shape")
	}
	if !bytes.Equal(a.secretData(t, "app-previous")["token"], []byte(oldToken)) || !bytes.Equal(a.secretData(t, "db-previous")["URL"], []byte(oldURL)) {
		t.Error("the previous values are not in NAME-previous")
	}
	if a.secretData(t, "app-pending") != nil || a.secretData(t, "db-pending") != nil {
		t.Error("a pending companion is left")
	}
	j := a.journal(t)
	if !strings.Contains(j, fingerprint(app["token"])) || strings.Contains(j, string(app["token"])) || strings.Contains(j, string(db["URL"])) {
		t.Error("the journal lacks the new token's fingerprint, or holds a value")
	}

	// The same command again reports the finished run and writes nothing.
	a.kc.ClearActions()
	r = run(t, a, "-f", path)
	if want := "plan db: rotation <rotation-id> already finished (<time>); nothing to do: `kubectl rotate undo -f` rolls it back\n" +
		"plan db: rotation <rotation-id> complete\n"; r.code != 0 || stable(t, a, r.out, start, time.Now()) != want {
		t.Errorf("second apply: exit %d (%s), stdout:\n%s\nwant:\n%s", r.code, r.msg, r.out, want)
	}
	if w := a.writes(); len(w) > 0 {
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
updated: "<time>"
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			r := run(t, a, "-f", planFile(t, planDoc, hookOK), "-o", tt.format)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.msg)
			}
			end := time.Now()
			if got := stable(t, a, r.out, start, end); got != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tt.want)
			}
			if got := stable(t, a, r.errOut, start, end); got != progress {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, progress)
			}
		})
	}
}

// A failed set hook stops the run before the Secret in use changes, with
// one line that says how to resume; what the hook printed is in it,
// without the values.
func TestApplyHookFails(t *testing.T) {
	const resume = "; step set failed (the Secret in use changes only at finish): fix the cause and re-run `kubectl rotate apply` to resume at set, " +
		"or roll the run back with `kubectl rotate undo -f` the plan (journal: configmap/kube-rotate-plan-db)"
	tests := []struct{ name, hook, want string }{
		{"exit 3", hookFail, "error: hook set of item pw exited 3: connection refused" + resume},
		{"prints the values", `["sh", "-c", "cat \"$KUBE_ROTATE_VALUES_FILE\" >&2; echo >&2; exit 4"]`,
			`error: hook set of item pw exited 4: {"secret":"db","namespace":"ns","item":"pw","step":"set","rotationId":"<rotation-id>",` +
				`"pending":{"URL":"[REDACTED]"},"current":{"URL":"[REDACTED]"}}` + resume},
		{"prints the new password", printsPassword, "error: hook set of item pw exited 5: [REDACTED]" + resume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			r := run(t, a, "-f", planFile(t, planDoc, tt.hook))
			// The new password, from the pending URL: only checked for.
			pending := string(a.secretData(t, "db-pending")["URL"])
			password := strings.TrimSuffix(strings.TrimPrefix(pending, "postgresql://app:"), "@db/app")
			if len(password) != 32 {
				t.Fatal("secret/db-pending does not hold a postgresql://app:PASSWORD@db/app URL with a new 32-character password")
			}
			if strings.Contains(r.msg+r.out+r.errOut, password) {
				r.msg = strings.ReplaceAll(r.msg, password, "<the new password>")
				t.Errorf("the new password is in the output")
			}
			if strings.Contains(a.journal(t), password) {
				t.Errorf("the new password is in configmap/kube-rotate-plan-db")
			}
			r.msg = rotationID.ReplaceAllString(r.msg, "<rotation-id>")
			checkFatal(t, r, tt.want)
			want := strings.Join(strings.SplitAfter(progress, "\n")[:5], "")
			if got := stable(t, a, r.out, start, time.Now()); got != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
			}
			if !bytes.Equal(a.secretData(t, "db")["URL"], []byte(oldURL)) || a.secretData(t, "db-pending") == nil {
				t.Error("after a failed set hook, secret/db changed or its pending values are gone")
			}
		})
	}
}

// journal returns the data of the run's journal, configmap/kube-rotate-plan-db.
func (a *fakeAPI) journal(t *testing.T) string {
	t.Helper()
	obj, err := a.kc.Tracker().Get(corev1.SchemeGroupVersion.WithResource("configmaps"), "ns", "kube-rotate-plan-db")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(obj.(*corev1.ConfigMap).Data)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---- test harness (the same in every pkg/cmd/<verb> test file) ----

// fatal is what cmdutil.CheckErr hands the fatal handler: the message
// and the exit code.
type fatal struct {
	msg  string
	code int
}

// result is one run of a command: what it wrote, and how it exited.
type result struct {
	out, errOut string
	msg         string // the fatal message; "" on success
	code        int    // the exit code
}

// execute runs cmd with args and stdin the way plugins/kubectl-rotate
// runs the command tree: cobra's own errors (unknown flag, bad value)
// go through cmdutil.CheckErr too. The fatal handler panics so that
// the run stops where os.Exit would stop it.
func execute(t *testing.T, newCmd func(genericiooptions.IOStreams) *cobra.Command, stdin string, args ...string) (r result) {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fatal{msg, code}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			r.msg, r.code = f.msg, f.code
		}
		r.out, r.errOut = out.String(), errOut.String()
	}()
	cmd := newCmd(streams)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true // as the root command
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(args)
	cmdutil.CheckErr(cmd.ExecuteContext(context.Background()))
	return r
}

// fakeAPI answers the typed clientset that kubectl's test factory
// builds (KubernetesClientSet, over the factory's fake REST client and
// its REST config) from a client-go fake clientset: each request becomes
// the client-go testing action the typed fake would record, so
// kc.Actions() lists what the command asked for, and the tracker
// answers. Writes with dryRun=All are recorded but not stored, as an
// API server would. The dynamic client is the factory's
// FakeDynamicClient, with its own actions.
type fakeAPI struct {
	tf     *cmdtesting.TestFactory
	kc     *kubefake.Clientset
	mapper meta.RESTMapper
	// unexpected are requests the fake cannot serve (a watch, a path
	// it cannot read): a test fails on any.
	mu         sync.Mutex
	unexpected []string
}

// whoAmI is the user the fake API server says the caller is.
const whoAmI = "test-user"

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("ns")
	t.Cleanup(tf.Cleanup)
	a := &fakeAPI{tf: tf, kc: kubefake.NewClientset(objs...), mapper: testrestmapper.TestOnlyStaticRESTMapper(kubescheme.Scheme)}
	a.kc.PrependReactor("*", "*", dryRunReactor(a.kc.Tracker()))
	hc := restfake.CreateHTTPClient(a.serve)
	tf.Client = &restfake.RESTClient{NegotiatedSerializer: kubescheme.Codecs.WithoutConversion(), Client: hc}
	// KubernetesClientSet swaps the fake client into most API groups;
	// the transport catches the others (authentication.k8s.io for
	// WhoAmI) and the REST config handed out by ToRESTConfig.
	tf.ClientConfigVal.Transport = hc.Transport
	// No client-side rate limit (client-go's default, 5 requests a
	// second, would make a plan run take seconds).
	tf.ClientConfigVal.QPS = -1
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, u := range a.unexpected {
			t.Errorf("the fake API server could not serve %s", u)
		}
	})
	return a
}

// dryRunReactor answers writes that carry dryRun=All without storing them.
func dryRunReactor(tracker k8stesting.ObjectTracker) k8stesting.ReactionFunc {
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		switch a := action.(type) {
		case k8stesting.CreateActionImpl:
			return len(a.CreateOptions.DryRun) > 0, a.Object, nil
		case k8stesting.UpdateActionImpl:
			return len(a.UpdateOptions.DryRun) > 0, a.Object, nil
		case k8stesting.PatchActionImpl:
			if len(a.PatchOptions.DryRun) == 0 {
				return false, nil, nil
			}
			obj, err := tracker.Get(a.Resource, a.Namespace, a.Name)
			return true, obj, err
		case k8stesting.DeleteActionImpl:
			return len(a.DeleteOptions.DryRun) > 0, nil, nil
		}
		return false, nil, nil
	}
}

func (a *fakeAPI) serve(req *http.Request) (*http.Response, error) {
	what := req.Method + " " + req.URL.String()
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var gv schema.GroupVersion
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		gv, parts = schema.GroupVersion{Version: parts[1]}, parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		gv, parts = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return a.fail(what, http.StatusNotFound)
	}
	ns := ""
	if len(parts) >= 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) == 0 || len(parts) > 2 {
		return a.fail(what, http.StatusNotFound) // no subresources here
	}
	gvr := gv.WithResource(parts[0])
	name := ""
	if len(parts) == 2 {
		name = parts[1]
	}
	if gvr.Resource == "selfsubjectreviews" {
		return a.respond(&authnv1.SelfSubjectReview{TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
			Status: authnv1.SelfSubjectReviewStatus{UserInfo: authnv1.UserInfo{Username: whoAmI}}}, nil)
	}
	gvk, err := a.mapper.KindFor(gvr)
	if err != nil {
		return a.fail(what, http.StatusNotFound)
	}
	q := req.URL.Query()
	dryRun := q["dryRun"]
	var body []byte
	if req.Body != nil {
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	// Bodies come as JSON or protobuf, whichever the client picked.
	decode := func(into runtime.Object, kind schema.GroupVersionKind) error {
		_, _, err := kubescheme.Codecs.UniversalDeserializer().Decode(body, &kind, into)
		return err
	}
	newObject := func() (runtime.Object, error) {
		obj, err := kubescheme.Scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		return obj, decode(obj, gvk)
	}
	var action k8stesting.Action
	switch {
	case req.Method == http.MethodGet && q.Get("watch") == "true":
		return a.fail(what, http.StatusMethodNotAllowed)
	case req.Method == http.MethodGet && name != "":
		action = k8stesting.NewGetAction(gvr, ns, name)
	case req.Method == http.MethodGet:
		action = k8stesting.NewListActionWithOptions(gvr, gvk, ns, metav1.ListOptions{LabelSelector: q.Get("labelSelector"), FieldSelector: q.Get("fieldSelector")})
	case req.Method == http.MethodPost:
		obj, err := newObject()
		if err != nil {
			return a.fail(what, http.StatusBadRequest)
		}
		action = k8stesting.NewCreateActionWithOptions(gvr, ns, obj, metav1.CreateOptions{DryRun: dryRun, FieldManager: q.Get("fieldManager")})
	case req.Method == http.MethodPut:
		obj, err := newObject()
		if err != nil {
			return a.fail(what, http.StatusBadRequest)
		}
		action = k8stesting.NewUpdateActionWithOptions(gvr, ns, obj, metav1.UpdateOptions{DryRun: dryRun, FieldManager: q.Get("fieldManager")})
	case req.Method == http.MethodPatch:
		pt := types.PatchType(strings.Split(req.Header.Get("Content-Type"), ";")[0])
		action = k8stesting.NewPatchActionWithOptions(gvr, ns, name, pt, body, metav1.PatchOptions{DryRun: dryRun, FieldManager: q.Get("fieldManager")})
	case req.Method == http.MethodDelete:
		opts := metav1.DeleteOptions{DryRun: dryRun}
		if len(body) > 0 {
			if err := decode(&opts, metav1.SchemeGroupVersion.WithKind("DeleteOptions")); err != nil {
				return a.fail(what, http.StatusBadRequest)
			}
		}
		action = k8stesting.NewDeleteActionWithOptions(gvr, ns, name, opts)
	default:
		return a.fail(what, http.StatusMethodNotAllowed)
	}
	obj, err := a.kc.Invokes(action, nil)
	if err == nil && action.GetVerb() == "list" {
		err = filterList(obj, q.Get("labelSelector"))
	}
	if err == nil && obj != nil {
		kind := gvk
		if action.GetVerb() == "list" {
			kind.Kind += "List"
		}
		obj.GetObjectKind().SetGroupVersionKind(kind)
	}
	if err == nil && obj == nil {
		obj = &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusSuccess}
	}
	return a.respond(obj, err)
}

// filterList keeps the items of list that match selector: the tracker
// does not filter (the typed fakes do, after it).
func filterList(list runtime.Object, selector string) error {
	sel, err := labels.Parse(selector)
	if err != nil || sel.Empty() {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	var keep []runtime.Object
	for _, it := range items {
		if m, err := meta.Accessor(it); err == nil && sel.Matches(labels.Set(m.GetLabels())) {
			keep = append(keep, it)
		}
	}
	return meta.SetList(list, keep)
}

func (a *fakeAPI) respond(obj runtime.Object, err error) (*http.Response, error) {
	code := http.StatusOK
	if err != nil {
		status, ok := err.(apierrors.APIStatus)
		if !ok {
			status = apierrors.NewInternalError(err)
		}
		s := status.Status()
		s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
		obj, code = &s, int(s.Code)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: code, Header: cmdtesting.DefaultHeader(), Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (a *fakeAPI) fail(what string, code int) (*http.Response, error) {
	a.mu.Lock()
	a.unexpected = append(a.unexpected, what)
	a.mu.Unlock()
	return a.respond(nil, apierrors.NewGenericServerResponse(code, "", schema.GroupResource{}, "", "not served by the test's fake API server", 0, false))
}

// writes lists the writes the command sent to either client, as
// "verb resource namespace/name"; dry-run writes end in " (dry run)".
func (a *fakeAPI) writes() []string {
	var out []string
	for _, act := range append(a.kc.Actions(), a.tf.FakeDynamicClient.Actions()...) {
		verb := act.GetVerb()
		if verb != "create" && verb != "update" && verb != "patch" && verb != "delete" {
			continue
		}
		var name string
		dry := false
		switch x := act.(type) {
		case k8stesting.CreateActionImpl:
			name, dry = objectName(x.Object), len(x.CreateOptions.DryRun) > 0
		case k8stesting.UpdateActionImpl:
			name, dry = objectName(x.Object), len(x.UpdateOptions.DryRun) > 0
		case k8stesting.PatchActionImpl:
			name, dry = x.Name, len(x.PatchOptions.DryRun) > 0
		case k8stesting.DeleteActionImpl:
			name, dry = x.Name, len(x.DeleteOptions.DryRun) > 0
		}
		w := fmt.Sprintf("%s %s %s/%s", verb, act.GetResource().Resource, act.GetNamespace(), name)
		if dry {
			w += " (dry run)"
		}
		out = append(out, w)
	}
	return out
}

func objectName(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "?"
	}
	return m.GetName()
}

// secretData returns the data of secret/name in namespace ns from the
// tracker, or nil when it does not exist. Tests compare values, never
// print them.
func (a *fakeAPI) secretData(t *testing.T, name string) map[string][]byte {
	t.Helper()
	obj, err := a.kc.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "ns", name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Secret).Data
}

// checkFatal checks that the command failed as want says, with exit
// code 1 and a message of one line.
func checkFatal(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 || r.msg != want {
		t.Errorf("exit %d, message %q; want exit 1, %q", r.code, r.msg, want)
	}
	if strings.Contains(strings.TrimSuffix(r.msg, "\n"), "\n") {
		t.Errorf("the message is not one line: %q", r.msg)
	}
}
