package plan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
)

// An exec hook of a plan gets the pending and current values in its
// values file, runs in the plan's directory, and its failure names the
// item and step without the value.
func TestRunExecHook(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "check.sh")
	// The hook copies its values file next to the plan and fails when asked.
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncp \"$KUBE_ROTATE_VALUES_FILE\" ./seen.json\n[ \"$FAIL\" = 1 ] && { echo \"bad value $(cat ./seen.json)\"; exit 4; }\nexit 0\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(dir, "plan.yaml")
	for _, fail := range []string{"0", "1"} {
		doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  items:
  - name: pw
    secret: {name: db, generate: [{key: K, spec: "hex:16"}]}
    hooks:
      set: {exec: {command: ["./check.sh"], env: [{name: FAIL, value: "` + fail + `"}]}}
`
		if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := planspec.ParseFile(planFile)
		if err != nil {
			t.Fatal(err)
		}
		pend := &Pending{Values: map[string][]byte{"K": []byte("new-secret-value")}, Current: map[string][]byte{"K": []byte("old-secret-value")}}
		res, err := RunHook(context.Background(), fake.NewClientset(), p, p.Spec.Items[0], StepSet, "ns", "r1", pend)
		seen, _ := os.ReadFile(filepath.Join(dir, "seen.json"))
		if !strings.Contains(string(seen), "new-secret-value") || !strings.Contains(string(seen), "old-secret-value") {
			t.Fatalf("the hook did not get both values: %s", seen)
		}
		if fail == "0" && (err != nil || res == nil || res.ExitCode != 0) {
			t.Fatalf("hook: %+v %v", res, err)
		}
		if fail == "1" {
			if err == nil || !strings.Contains(err.Error(), "pw") || !strings.Contains(err.Error(), "set") || strings.Contains(err.Error(), "new-secret-value") {
				t.Fatalf("failing hook: %v", err)
			}
			if strings.Contains(res.Output, "new-secret-value") {
				t.Error("the hook's output is kept unredacted")
			}
		}
		if r, err := RunHook(context.Background(), nil, p, p.Spec.Items[0], StepTested, "ns", "r1", pend); r != nil || err != nil {
			t.Errorf("no test hook: %v %v", r, err)
		}
	}
}
