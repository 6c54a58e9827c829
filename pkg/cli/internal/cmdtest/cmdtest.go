// Package cmdtest runs the kubectl rotate verbs in tests as kubectl's own
// command tests do: over kubectl's cmdtesting factory, with a fake API
// server built on client-go's fake clientset (so the actions a command
// asked for can be checked) and the exit code and message cmdutil.CheckErr
// would give.
package cmdtest

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
)

type fatal struct {
	msg  string
	code int
}

// Result is one run of a command: what it wrote, and how it exited.
type Result struct {
	Out, ErrOut string
	Msg         string // the fatal message; "" on success
	Code        int    // the exit code
}

// Execute runs cmd with args and stdin the way plugins/kubectl-rotate
// runs the command tree: cobra's own errors (unknown flag, bad value)
// go through cmdutil.CheckErr too. The fatal handler panics so that
// the run stops where os.Exit would stop it.
func Execute(t *testing.T, newCmd func(genericiooptions.IOStreams) *cobra.Command, stdin string, args ...string) (r Result) {
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
			r.Msg, r.Code = f.msg, f.code
		}
		r.Out, r.ErrOut = out.String(), errOut.String()
	}()
	cmd := newCmd(streams)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true // as the root command
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(args)
	cmdutil.CheckErr(cmd.ExecuteContext(context.Background()))
	return r
}

// FakeAPI answers the typed clientset that kubectl's test factory
// builds (KubernetesClientSet, over the factory's fake REST client and
// its REST config) from a client-go fake clientset: each request becomes
// the client-go testing action the typed fake would record, so
// kc.Actions() lists what the command asked for, and the tracker
// answers. Writes with dryRun=All are recorded but not stored, as an
// API server would. The dynamic client is the factory's
// FakeDynamicClient, with its own actions.
type FakeAPI struct {
	TF     *cmdtesting.TestFactory
	KC     *kubefake.Clientset
	mapper meta.RESTMapper
	// unexpected are requests the fake cannot serve (a watch, a path
	// it cannot read): a test fails on any.
	mu         sync.Mutex
	unexpected []string
}

// WhoAmI is the user the fake API server says the caller is.
const WhoAmI = "test-user"

// NewFakeAPI serves objs to the commands built on TF, the test factory.
func NewFakeAPI(t *testing.T, objs ...runtime.Object) *FakeAPI {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("ns")
	t.Cleanup(tf.Cleanup)
	a := &FakeAPI{TF: tf, KC: kubefake.NewClientset(objs...), mapper: testrestmapper.TestOnlyStaticRESTMapper(kubescheme.Scheme)}
	a.KC.PrependReactor("*", "*", dryRunReactor(a.KC.Tracker()))
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

func (a *FakeAPI) serve(req *http.Request) (*http.Response, error) {
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
			Status: authnv1.SelfSubjectReviewStatus{UserInfo: authnv1.UserInfo{Username: WhoAmI}}}, nil)
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
	obj, err := a.KC.Invokes(action, nil)
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

func (a *FakeAPI) respond(obj runtime.Object, err error) (*http.Response, error) {
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

func (a *FakeAPI) fail(what string, code int) (*http.Response, error) {
	a.mu.Lock()
	a.unexpected = append(a.unexpected, what)
	a.mu.Unlock()
	return a.respond(nil, apierrors.NewGenericServerResponse(code, "", schema.GroupResource{}, "", "not served by the test's fake API server", 0, false))
}

// Writes lists the writes the command sent to either client, as
// "verb resource namespace/name"; dry-run writes end in " (dry run)".
func (a *FakeAPI) Writes() []string {
	var out []string
	for _, act := range append(a.KC.Actions(), a.TF.FakeDynamicClient.Actions()...) {
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

// SecretData returns the data of secret/name in namespace ns from the
// tracker, or nil when it does not exist. Tests compare values, never
// print them.
func (a *FakeAPI) SecretData(t *testing.T, name string) map[string][]byte {
	t.Helper()
	obj, err := a.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "ns", name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Secret).Data
}

// CheckFatal checks that the command failed as want says, with exit
// code 1 and a message of one line.
func CheckFatal(t *testing.T, r Result, want string) {
	t.Helper()
	if r.Code != 1 || r.Msg != want {
		t.Errorf("exit %d, message %q; want exit 1, %q", r.Code, r.Msg, want)
	}
	if strings.Contains(strings.TrimSuffix(r.Msg, "\n"), "\n") {
		t.Errorf("the message is not one line: %q", r.Msg)
	}
}
