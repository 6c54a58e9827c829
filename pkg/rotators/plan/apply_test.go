package plan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// A set hook that fails leaves the Secret in use untouched; the re-run
// resumes at set with the same pending values and finishes every item.
func TestApplyResumesAtTheFailedStep(t *testing.T) {
	dir := t.TempDir()
	// The hook appends the pending value's fingerprint source to a log and
	// fails while ./broken exists.
	hook := "#!/bin/sh\ncat \"$KUBE_ROTATE_VALUES_FILE\" >> ./calls.log; echo >> ./calls.log\n[ -e ./broken ] && { echo backend down; exit 2; }\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "set.sh"), []byte(hook), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  namespace: ns
  items:
  - name: token
    secret: {name: app, generate: [{key: T, spec: "hex:16"}]}
  - name: pw
    after: [token]
    secret: {name: db, urlPassword: {keys: [URL]}}
    hooks:
      set: {exec: {command: ["./set.sh"]}}
`
	if err := os.WriteFile(filepath.Join(dir, "plan.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := planspec.ParseFile(filepath.Join(dir, "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "a"}, Data: map[string][]byte{"T": []byte("old-token-000000")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "d"}, Data: map[string][]byte{"URL": []byte("postgresql://app:old-pass@db/app")}},
	)
	o := Options{Plan: p, Clients: secret.Clients{Kube: kc}, Namespace: "default", PlanFile: filepath.Join(dir, "plan.yaml")}
	ctx := context.Background()
	get := func(name string) *corev1.Secret {
		s, err := kc.CoreV1().Secrets("ns").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("secret/%s: %v", name, err)
		}
		return s
	}

	j, err := Apply(ctx, o)
	// The engine's wording: start, token's 4 steps, then pw's create and set.
	if err == nil || !strings.Contains(err.Error(), "item pw") || !strings.Contains(err.Error(), "step 7 of 10 (pw/set) failed: ") ||
		!strings.HasSuffix(err.Error(), ": re-run the same command to resume, or undo with kubectl rotate undo -f "+o.PlanFile) || strings.Contains(err.Error(), "old-pass") {
		t.Fatalf("first run: %v", err)
	}
	if h := j.Items["pw"].Hooks[StepSet]; h == nil || h.ExitCode != 2 || !strings.Contains(h.Output, "backend down") {
		t.Errorf("the failed hook's result is not journaled: %+v", h)
	}
	if NextStep(j, "token") != "" || NextStep(j, "pw") != StepSet || j.Items["pw"].Failed != StepSet {
		t.Fatalf("journal after the failure: %+v %+v", j.Items["token"], j.Items["pw"])
	}
	if string(get("db").Data["URL"]) != "postgresql://app:old-pass@db/app" {
		t.Fatal("a failed set hook changed the Secret in use")
	}
	pending := string(get("db-pending").Data["URL"])

	os.Remove(filepath.Join(dir, "broken"))
	j2, err := Apply(ctx, o)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if j2.RotationID != j.RotationID || NextStep(j2, "pw") != "" || !j2.Restarted {
		t.Fatalf("re-run journal: %+v", j2)
	}
	if got := string(get("db").Data["URL"]); got != pending {
		t.Error("the finished Secret does not hold the values the hook was given")
	}
	if string(get("db-previous").Data["URL"]) != "postgresql://app:old-pass@db/app" {
		t.Error("the old URL is not kept in db-previous")
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	if n := strings.Count(string(calls), `"rotationId":"`+j.RotationID+`"`); n != 2 {
		t.Errorf("the set hook ran %d times with this rotation, want 2 (failed, then resumed)", n)
	}
	if strings.Count(string(calls), pending) != 2 {
		t.Error("the resumed hook got other values than the failed one")
	}

	// Each finished item left an Event on its Secret: keys and
	// fingerprints, no value.
	evs, _ := kc.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
	reasons := map[string]string{}
	for _, e := range evs.Items {
		reasons[e.InvolvedObject.Name] = e.Reason + ": " + e.Message
	}
	for _, name := range []string{"app", "db"} {
		if !strings.HasPrefix(reasons[name], EventReason) || !strings.Contains(reasons[name], j.RotationID) || strings.Contains(reasons[name], "old-pass") || strings.Contains(reasons[name], pending) {
			t.Errorf("event on secret/%s: %q", name, reasons[name])
		}
	}

	// Finished: a further apply does nothing.
	if _, err := Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := string(get("db").Data["URL"]); got != pending {
		t.Error("applying a finished plan rotated again")
	}
}
