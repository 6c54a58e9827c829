//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/e2e/images"
)

// TestPlanKeySetWithJobHook rotates a DiracX key set through a plan whose
// test hook is a Kubernetes Job: the new key is published and the
// Deployment reading the set restarts before the key signs; the Job runs
// and is deleted; finish promotes the key and the Deployment restarts again.
func TestPlanKeySetWithJobHook(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "diracx-jwks", map[string]string{"jwks.json": string(readFixture(t, "diracx.json"))})
	deployWith(t, ns, "diracx", envKeyFrom("diracx-jwks", "jwks.json"))
	waitRolledOut(t, ns, "diracx")
	before := restartedAt(t, ns, "diracx")
	oldKeys := listKeys(t, "--secret", "diracx-jwks", "-n", ns)

	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: signing-keys}
spec:
  namespace: ` + ns + `
  items:
  - name: diracx-signing-key
    jwks: {secret: diracx-jwks}
    hooks:
      test:
        job:
          template:
            template:
              spec:
                containers: [{name: check, image: ` + images.TestApp.Ref() + `, args: [exit, "0"]}]
`
	planFile := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "apply", "-f", planFile)
	for _, want := range []string{"published as next", "test hook succeeded", "is now the signing key"} {
		if !strings.Contains(out.allOutput(), want) {
			t.Errorf("apply output lacks %q", want)
		}
	}
	// Published (restart), then promoted (restart): the order the output shows.
	o := out.allOutput()
	if i, j := strings.Index(o, "published as next"), strings.Index(o, "is now the signing key"); i < 0 || j < i || !strings.Contains(o[i:j], "deployment/diracx restarted") {
		t.Errorf("the verifiers did not restart between publish and promote:\n%s", o)
	}
	if restartedAt(t, ns, "diracx") == before {
		t.Error("the Deployment reading the key set was not restarted")
	}
	keys := listKeys(t, "--secret", "diracx-jwks", "-n", ns)
	if len(keys.Keys) != len(oldKeys.Keys)+1 {
		t.Fatalf("%d keys after the plan, want %d", len(keys.Keys), len(oldKeys.Keys)+1)
	}
	active := 0
	for _, k := range keys.Keys {
		if k.State == "active" {
			active++
			for _, old := range oldKeys.Keys {
				if old.KID == k.KID {
					t.Error("the signing key is still an old one")
				}
			}
		}
	}
	if active != 1 {
		t.Errorf("%d active keys", active)
	}
	jobs, err := client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("the hook's Job is left behind: %v %d", err, len(jobs.Items))
	}
	waitRolledOut(t, ns, "diracx")
}
