//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestApplyPlanWithHook rotates two Secrets through a plan whose set hook
// fails once: the Secret in use is untouched, the re-run resumes at set,
// both Secrets end with new values, the old ones in NAME-previous, and the
// Deployment reading both restarts once.
func TestApplyPlanWithHook(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app-token", map[string]string{"TOKEN": "old-token-value-1"})
	createSecret(t, ns, "db-urls", map[string]string{"DB_URL": "postgresql://app:old-db-pass@db:5432/app"})
	deployWith(t, ns, "web", func(ps *corev1.PodSpec) {
		envFrom("app-token")(ps)
		envFrom("db-urls")(ps)
	})
	waitRolledOut(t, ns, "web")
	before := restartedAt(t, ns, "web")

	dir := t.TempDir()
	hook := "#!/bin/sh\ncp \"$KUBE_ROTATE_VALUES_FILE\" ./seen-$KUBE_ROTATE_STEP.json\n[ -e ./broken ] && { echo database unreachable; exit 2; }\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "set.sh"), []byte(hook), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o600)
	planFile := filepath.Join(dir, "plan.yaml")
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: app-creds}
spec:
  namespace: ` + ns + `
  items:
  - name: token
    secret: {name: app-token, generate: [{key: TOKEN, spec: "hex:32"}]}
  - name: db-password
    secret: {name: db-urls, urlPassword: {keys: [DB_URL]}}
    hooks:
      set: {exec: {command: ["./set.sh"]}}
`
	if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	// plan: the steps, the hook and the consumer; nothing changes.
	pl := mustRun(t, "plan", "-f", planFile)
	for _, want := range []string{"1. token: secret/app-token", "2. db-password: secret/db-urls", "set: run ./set.sh", "consumer: deployment/web"} {
		if !strings.Contains(pl.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, pl.stdout)
		}
	}
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "app-token-pending", metav1.GetOptions{}); err == nil {
		t.Fatal("plan wrote a pending companion")
	}
	// A plan naming a missing Secret fails before anything runs.
	badPlan := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badPlan, []byte(strings.Replace(doc, "name: db-urls,", "name: db-urlz,", 1)), 0o600)
	for _, verb := range []string{"plan", "apply"} {
		if b := run(t, nil, verb, "-f", badPlan); b.code == 0 || !strings.Contains(b.stderr, `item "db-password": secret/db-urlz not found`) {
			t.Errorf("%s with a missing Secret: exit %d\n%s", verb, b.code, b.allOutput())
		}
	}
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "app-token-pending", metav1.GetOptions{}); err == nil {
		t.Fatal("apply of a plan naming a missing Secret wrote something")
	}

	r := run(t, nil, "apply", "-f", planFile)
	if r.code == 0 || !strings.Contains(r.stderr, "db-password") || !strings.Contains(r.stderr, "(db-password/set) failed") ||
		!strings.Contains(r.stderr, "re-run the same command to resume, or undo with kubectl rotate undo -f "+planFile) {
		t.Fatalf("apply with a failing hook: exit %d\n%s", r.code, r.allOutput())
	}
	if got := string(getSecret(t, ns, "db-urls").Data["DB_URL"]); got != "postgresql://app:old-db-pass@db:5432/app" {
		t.Fatal("a failed set hook changed the Secret in use")
	}
	pending := string(getSecret(t, ns, "db-urls-pending").Data["DB_URL"])

	os.Remove(filepath.Join(dir, "broken"))
	out := mustRun(t, "apply", "-f", planFile, "-o", "json")
	var rec struct {
		RotationID string   `json:"rotationId"`
		Restarted  bool     `json:"restarted"`
		Restarts   []string `json:"restarts"`
		Items      map[string]struct {
			Done         string            `json:"done"`
			Fingerprints map[string]string `json:"fingerprints"`
			Hooks        map[string]struct {
				ExitCode int `json:"exitCode"`
			} `json:"hooks"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &rec); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.stdout)
	}
	if len(rec.Restarts) != 1 || !strings.HasSuffix(rec.Restarts[0], "/web") {
		t.Errorf("the record's restarts: %v, want the one Deployment once", rec.Restarts)
	}
	if h, ok := rec.Items["db-password"].Hooks["set"]; !ok || h.ExitCode != 0 {
		t.Errorf("the record lacks the set hook's result: %+v", rec.Items["db-password"].Hooks)
	}
	if rec.Items["db-password"].Done != "finish" || rec.Items["token"].Done != "finish" || !rec.Restarted || rec.Items["token"].Fingerprints["TOKEN"] == "" {
		t.Fatalf("record: %+v", rec)
	}
	if got := string(getSecret(t, ns, "db-urls").Data["DB_URL"]); got != pending {
		t.Error("db-urls does not hold the value the set hook applied")
	}
	if got := string(getSecret(t, ns, "db-urls-previous").Data["DB_URL"]); got != "postgresql://app:old-db-pass@db:5432/app" {
		t.Error("the old URL is not kept in db-urls-previous")
	}
	if tok := string(getSecret(t, ns, "app-token").Data["TOKEN"]); len(tok) != 64 {
		t.Errorf("app-token has a %d-char token, want 64 hex", len(tok))
	}
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "db-urls-pending", metav1.GetOptions{}); err == nil {
		t.Error("db-urls-pending is left behind")
	}
	seen, _ := os.ReadFile(filepath.Join(dir, "seen-set.json"))
	if !strings.Contains(string(seen), "old-db-pass") || !strings.Contains(string(seen), pending) {
		t.Error("the set hook did not get the current and pending values")
	}
	after := restartedAt(t, ns, "web")
	if after == before {
		t.Error("the Deployment reading both Secrets was not restarted")
	}
	waitRolledOut(t, ns, "web")
	assertNoValues(t, "apply output", out.allOutput()+r.allOutput(), map[string][]byte{"old": []byte("old-db-pass"), "new": []byte(pending)})

	// A Kubernetes Event on each rotated Secret says which plan item did it.
	evs, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=db-urls,reason=PlanItemRotated"})
	if err != nil || len(evs.Items) != 1 || !strings.Contains(evs.Items[0].Message, "plan app-creds item db-password") {
		t.Errorf("events on secret/db-urls: %v %+v", err, evs)
	} else {
		assertNoValues(t, "event", evs.Items[0].Message, map[string][]byte{"old": []byte("old-db-pass"), "new": []byte(pending)})
	}

	// Applying the finished plan again changes nothing.
	mustRun(t, "apply", "-f", planFile)
	if got := string(getSecret(t, ns, "db-urls").Data["DB_URL"]); got != pending {
		t.Error("applying a finished plan rotated again")
	}
	if restartedAt(t, ns, "web") != after {
		t.Error("applying a finished plan restarted the Deployment again")
	}

	// undo -f: both Secrets get their old values back; the journal goes.
	u := mustRun(t, "undo", "-f", planFile)
	if got := string(getSecret(t, ns, "db-urls").Data["DB_URL"]); got != "postgresql://app:old-db-pass@db:5432/app" {
		t.Error("undo -f did not restore the old URL")
	}
	if got := string(getSecret(t, ns, "app-token").Data["TOKEN"]); got != "old-token-value-1" {
		t.Error("undo -f did not restore the old token")
	}
	if !strings.Contains(u.stderr, "item db-password: its set hook ran") {
		t.Errorf("undo does not warn that the set hook changed the backing system:\n%s", u.allOutput())
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), "kube-rotate-plan-app-creds", metav1.GetOptions{}); err == nil {
		t.Error("the journal is left after undo")
	}
	waitRolledOut(t, ns, "web")
}
