package undo_test

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

	"github.com/kube-rotate/kube-rotate/pkg/cmd/undo"
	"github.com/kube-rotate/kube-rotate/pkg/plan"
	"github.com/kube-rotate/kube-rotate/pkg/planrun"
	"github.com/kube-rotate/kube-rotate/pkg/record"
	"github.com/kube-rotate/kube-rotate/pkg/rotation"
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
	_, err := rotation.Rotate(context.Background(), rotation.Clients{Kube: a.kc, Dynamic: a.tf.FakeDynamicClient}, rotation.Options{
		Namespace: "ns", Secrets: []string{"app"}, KeepPrevious: true, PreviousTTL: 7 * 24 * time.Hour, By: "setup",
		Changes: []rotation.Change{{Key: "token", Source: "test", Make: func([]byte, bool) ([]byte, error) { return []byte(newValue), nil }}},
		Now:     func() time.Time { return rotatedAt },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.kc.ClearActions()
	return a
}

func run(t *testing.T, a *fakeAPI, args ...string) result {
	t.Helper()
	r := execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return undo.NewCmdUndo(a.tf, s) }, "", args...)
	for _, v := range []string{oldValue, newValue} {
		if strings.Contains(r.out+r.errOut+r.msg, v) {
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
			checkFatal(t, r, tt.want)
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
			if w := a.writes(); len(w) > 0 {
				t.Errorf("a rejected undo wrote %q", w)
			}
			if !bytes.Equal(a.secretData(t, "app")["token"], []byte(newValue)) {
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
    "consumers": null,
    "phase": "planned"
}
`},
		{"yaml", []string{"-o", "yaml"}, `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: null
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
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, append([]string{"secret/app", "--dry-run=client"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.msg)
			}
			if r.out != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.out, tt.want)
			}
			if r.errOut != "" {
				t.Errorf("stderr %q, want nothing", r.errOut)
			}
			if w := a.writes(); len(w) > 0 {
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
	want := "secret/app: previous values of token restored (generation 2)\n" +
		"\nundo complete: secret/app holds its previous values (generation 2), 0 workload(s) restarted\n"
	if r.code != 0 || r.out != want || r.errOut != "" {
		t.Fatalf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr: %q", r.code, r.msg, r.out, want, r.errOut)
	}
	if got, want := strings.Join(a.writes(), "; "), "update secrets ns/app; patch secrets ns/app"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	if !bytes.Equal(a.secretData(t, "app")["token"], []byte(oldValue)) {
		t.Error("secret/app does not hold the previous value")
	}
	h := a.history(t, "app")
	if len(h) != 2 || h[1].Action != "undo" || h[1].By != whoAmI || h[1].Generation != 2 {
		t.Errorf("history %+v, want a second entry: undo, generation 2, by %s", h, whoAmI)
	}

	a.kc.ClearActions()
	r = run(t, a, "secret/app")
	if want := "secret/app already holds the previous values; nothing to undo\n"; r.code != 0 || r.out != want {
		t.Errorf("second undo: exit %d (%s), stdout %q, want %q", r.code, r.msg, r.out, want)
	}
	if w := a.writes(); len(w) > 0 {
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
    "consumers": null,
    "phase": "complete"
}
`},
		{"yaml", `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: null
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
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, "secret/app", "-o", tt.format)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.msg)
			}
			if r.out != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.out, tt.want)
			}
			if want := "secret/app: previous values of token restored (generation 2)\n"; r.errOut != want {
				t.Errorf("stderr %q, want %q", r.errOut, want)
			}
			if !bytes.Equal(a.secretData(t, "app")["token"], []byte(oldValue)) {
				t.Error("secret/app does not hold the previous value")
			}
		})
	}
}

// --dry-run=server sends every write with dryRun=All; nothing changes.
func TestUndoDryRunServer(t *testing.T) {
	a := rotatedFixture(t)
	r := run(t, a, "secret/app", "--dry-run=server")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.msg)
	}
	if got, want := strings.Join(a.writes(), "; "), "update secrets ns/app (dry run)"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	if !bytes.Equal(a.secretData(t, "app")["token"], []byte(newValue)) {
		t.Error("a server dry run changed secret/app")
	}
	// It says nothing changed, not "undo complete".
	if strings.Contains(r.out, "undo complete") || !strings.Contains(r.out, "undo accepted by the API server (dry run): secret/app was not changed") {
		t.Errorf("stdout of --dry-run=server: %q", r.out)
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
	p, err := plan.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planrun.Apply(context.Background(), planrun.Options{Plan: p, Clients: rotation.Clients{Kube: a.kc, Dynamic: a.tf.FakeDynamicClient}, Namespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.secretData(t, "plain")["token"], []byte(oldValue)) {
		t.Fatal("the plan did not rotate secret/plain")
	}
	a.kc.ClearActions()
	return path
}

// undo -f rolls a plan run back and deletes its journal.
func TestUndoPlan(t *testing.T) {
	a := rotatedFixture(t)
	path := appliedPlan(t, a)
	r := run(t, a, "-f", path)
	if r.code != 0 || r.out != "plan db: rolled back\n" {
		t.Fatalf("exit %d (%s), stdout %q", r.code, r.msg, r.out)
	}
	if want := "secret/plain: previous values of token restored (generation 2)\n"; r.errOut != want {
		t.Errorf("stderr %q, want %q", r.errOut, want)
	}
	if !bytes.Equal(a.secretData(t, "plain")["token"], []byte(oldValue)) {
		t.Error("secret/plain does not hold the previous value")
	}
	if _, err := a.kc.Tracker().Get(corev1.SchemeGroupVersion.WithResource("configmaps"), "ns", planrun.JournalName("db")); !apierrors.IsNotFound(err) {
		t.Errorf("the journal is still there (%v)", err)
	}
	r = run(t, a, "-f", path)
	checkFatal(t, r, "error: plan db has no run to undo in namespace ns (no configmap/"+planrun.JournalName("db")+")")
}

// -f with --dry-run=client must not roll anything back.
func TestUndoPlanDryRunWritesNothing(t *testing.T) {
	a := rotatedFixture(t)
	path := appliedPlan(t, a)
	for _, flag := range []string{"--dry-run=client", "--dry-run=server", "-o=json", "--restart=none", "--timeout=1s"} {
		r := run(t, a, "-f", path, flag)
		if w := a.writes(); len(w) > 0 {
			t.Errorf("undo -f %s wrote %q (exit %d, stdout %q)", flag, w, r.code, r.out)
		}
		if r.code != 1 || !strings.Contains(r.msg, "undo -f takes no --") || strings.Contains(r.msg, "\n") {
			t.Errorf("undo -f %s: exit %d, message %q; want a one-line refusal", flag, r.code, r.msg)
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
func (a *fakeAPI) history(t *testing.T, name string) []record.Entry {
	t.Helper()
	obj, err := a.kc.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "ns", name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := record.ReadHistory(obj.(*corev1.Secret).Annotations)
	if err != nil {
		t.Fatal(err)
	}
	return h
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
