package finish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kube-rotate/kube-rotate/pkg/cmd/finish"
	"github.com/kube-rotate/kube-rotate/pkg/record"
	"github.com/kube-rotate/kube-rotate/pkg/rotation"
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
	_, err := rotation.Rotate(context.Background(), rotation.Clients{Kube: a.kc, Dynamic: a.tf.FakeDynamicClient}, rotation.Options{
		Namespace: "ns", Secrets: []string{"app"}, KeepPrevious: true, PreviousTTL: 7 * 24 * time.Hour, By: "setup",
		Changes: []rotation.Change{{Key: "token", Source: "test", Make: func([]byte, bool) ([]byte, error) { return []byte(newValue), nil }}},
		Now:     func() time.Time { return time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	a.kc.ClearActions()
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
	a.tf.FakeDynamicClient = dynamicfake.NewSimpleDynamicClient(kubescheme.Scheme, dyn...)
	return a
}

func run(t *testing.T, a *fakeAPI, args ...string) result {
	t.Helper()
	r := execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return finish.NewCmdFinish(a.tf, s) }, "", args...)
	for _, v := range []string{oldValue, newValue} {
		if strings.Contains(r.out+r.errOut+r.msg, v) {
			t.Errorf("finish %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

// setPhase records phase as the last rotation's on secret/app.
func setPhase(t *testing.T, a *fakeAPI, phase string) {
	t.Helper()
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	obj, err := a.kc.Tracker().Get(gvr, "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	s := obj.(*corev1.Secret).DeepCopy()
	s.Annotations[record.Phase] = phase
	if err := a.kc.Tracker().Update(gvr, s, "ns"); err != nil {
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
		{"rotation not complete", []string{"secret/app"}, record.PhaseWritten, nil,
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
			checkFatal(t, r, tt.want)
			if r.out != "" {
				t.Errorf("stdout %q, want nothing", r.out)
			}
			if w := a.writes(); len(w) > 0 {
				t.Errorf("a refused finish wrote %q", w)
			}
			if a.secretData(t, "app-previous") == nil {
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
    "consumers": null
}
`, progress},
		{"yaml", []string{"-o", "yaml"}, nil, `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers: null
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
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.msg)
			}
			if r.out != tt.out || r.errOut != tt.errOut {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want %q", r.out, tt.out, r.errOut, tt.errOut)
			}
			if got, want := strings.Join(a.writes(), "; "), "delete secrets ns/app-previous; patch secrets ns/app"; got != want {
				t.Errorf("writes %q, want %q", got, want)
			}
			if a.secretData(t, "app-previous") != nil {
				t.Error("secret/app-previous is still there")
			}
			if !bytes.Equal(a.secretData(t, "app")["token"], []byte(newValue)) {
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
    "consumers": null
}
`, ""},
		{"server", []string{"--dry-run=server"}, would, "delete secrets ns/app-previous (dry run)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := rotatedFixture(t)
			r := run(t, a, append([]string{"secret/app"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.msg)
			}
			if r.out != tt.out || r.errOut != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q, want nothing", r.out, tt.out, r.errOut)
			}
			if got := strings.Join(a.writes(), "; "); got != tt.writes {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			if a.secretData(t, "app-previous") == nil {
				t.Error("a dry run deleted secret/app-previous")
			}
		})
	}
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
