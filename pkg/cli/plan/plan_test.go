package plan_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
	"github.com/kube-rotate/kube-rotate/pkg/cli/plan"
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
// URL, whose set hook applies it to the database.
const planDoc = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  items:
  - name: token
    secret: {name: app, generate: [{key: token, spec: "hex:16"}]}
  - name: pw
    after: [token]
    secret: {name: db, urlPassword: {keys: [URL]}}
    hooks:
      set: {exec: {command: ["./alter-role.sh"]}}
`

func fixture(t *testing.T) *fakeAPI {
	t.Helper()
	return newFakeAPI(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "u-app", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte(oldToken)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u-db", ResourceVersion: "1"}, Data: map[string][]byte{"URL": []byte(oldURL)}},
		web)
}

// planFile writes doc to a plan file and returns its path.
func planFile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return plan.NewCmdPlan(a.TF, s) }, "", args...)
	for _, v := range []string{oldToken, oldURL, "old-password-0001"} {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("plan %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

func TestPlanErrors(t *testing.T) {
	good := planFile(t, planDoc)
	tests := []struct {
		name string
		args []string
		doc  string // when set, the plan file (-f) holds doc
		want string // PLANFILE stands for the plan file's path
	}{
		{"no plan", nil, "", "error: give the plan with -f PLAN.yaml"},
		{"missing file", []string{"-f", "/nonexistent/plan.yaml"}, "", "error: /nonexistent/plan.yaml: no such file: give the path of a RotationPlan"},
		{"an argument", []string{"-f", good, "db"}, "", `error: unknown command "db" for "plan"`},
		{"no output flag", []string{"-f", good, "-o", "json"}, "", "error: unknown shorthand flag: 'o' in -o"},
		{"no dry-run flag: it writes nothing", []string{"-f", good, "--dry-run=client"}, "", "error: unknown flag: --dry-run"},
		{"empty file", nil, " ", "error: PLANFILE: plan: the file is empty: write a RotationPlan (apiVersion rotate.kube-rotate.io/v1alpha1)"},
		{"unknown field", nil, strings.Replace(planDoc, "after: [token]", "afterr: [token]", 1),
			`error: PLANFILE: plan: line 9: unknown field "afterr" in an item: use name, after, secret, jwks, hooks`},
		{"unknown after", nil, strings.Replace(planDoc, "after: [token]", "after: [tokn]", 1),
			`error: PLANFILE: plan: item "pw": after names "tokn", which is not an item of this plan: use the name of another item`},
		{"missing secret", nil, strings.Replace(planDoc, "name: db,", "name: dbs,", 1), `error: plan: item "pw": secret/dbs not found in namespace ns: create it or fix the plan`},
		{"missing key", nil, strings.Replace(planDoc, "keys: [URL]", "keys: [DB_URL]", 1), `error: plan: item "pw": secret/db has no key DB_URL: fix the plan (or set createKeys: true for generated keys)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			args := tt.args
			if tt.doc != "" {
				args = []string{"-f", planFile(t, tt.doc)}
			}
			r := run(t, a, args...)
			want := strings.ReplaceAll(tt.want, "PLANFILE", strings.TrimPrefix(strings.Join(args, " "), "-f "))
			cmdtest.CheckFatal(t, r, want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("plan wrote %q", w)
			}
		})
	}
}

// plan describes each item's steps and consumers, and writes nothing.
func TestPlanDescribes(t *testing.T) {
	a := fixture(t)
	r := run(t, a, "-f", planFile(t, planDoc))
	want := `plan db: 2 items, restart coalesced
1. token: secret/app in ns, keys token
   create: new values in secret/app-pending
   set: no hook
   test: no hook
   finish: values into secret/app, old ones kept in secret/app-previous
   consumer: deployment/web
2. pw: secret/db in ns, keys URL
   create: new values in secret/db-pending
   set: run ./alter-role.sh (values in a file or on stdin, never on the command line)
   test: no hook
   finish: values into secret/db, old ones kept in secret/db-previous
`
	if r.Code != 0 || r.Out != want || r.ErrOut != "" {
		t.Errorf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
	}
	if w := a.Writes(); len(w) > 0 {
		t.Errorf("plan wrote %q", w)
	}
	if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(oldToken)) || a.SecretData(t, "app-pending") != nil {
		t.Error("plan changed secret/app or made its pending companion")
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
