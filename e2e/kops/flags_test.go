//go:build e2e

package kops

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The kops flags given to run reach the kops CLI steps they belong to,
// are journaled, and a re-run without them passes them again; with
// --target terraform the run stops after each update for a person to
// apply the Terraform kops wrote.
func TestRunPassesKopsFlagsThrough(t *testing.T) {
	e := setup(t)
	original := e.primaries()
	out := filepath.Join(e.dir, "terraform")

	// --target terraform without --out: refused before anything runs.
	before := e.snapshot()
	r := e.run("run", "etcd-manager-ca-main", "--yes", "--target", "terraform")
	oneLine(t, "--target terraform without --out", r, "--target terraform", "--out")
	e.checkUnchanged("--target terraform without --out", before)

	r = e.run("run", "etcd-manager-ca-main", "--yes", "--target", "terraform", "--out", out,
		"--instance-group-roles", "control-plane", "--validate-count", "2", "--admin=2h")
	if r.code != 3 || r.waitingAt() != "terraform-apply-after-stage" || !strings.Contains(r.stdout, out) {
		t.Fatalf("run with --target terraform: exit code %d, want 3 at terraform-apply-after-stage naming %s\n%s%s", r.code, out, r.stdout, r.stderr)
	}
	update := "update cluster --yes --target terraform --out " + out
	if got := e.calls(); !reflect.DeepEqual(got, []string{update}) {
		t.Errorf("kops calls before the Terraform apply: %q, want %q", got, update)
	}
	e.checkStatusIsKops("staged", original, "etcd-manager-ca-main")

	// Re-runs without the flags: the journaled ones are passed.
	var stops []string
	for _, step := range []struct{ done, stage string }{
		{"terraform-apply-after-stage", "promoted"},
		{"terraform-apply-after-promote", "distrusted"},
		{"terraform-apply-after-distrust", "complete"},
	} {
		r = e.run("run", "etcd-manager-ca-main", "--yes", "--done", step.done)
		if w := r.waitingAt(); w != "" {
			stops = append(stops, w)
			if !strings.Contains(r.stdout, out) {
				t.Errorf("the stop at %s does not name the Terraform directory %s:\n%s", w, out, r.stdout)
			}
		} else if r.code != 0 {
			t.Fatalf("run --done %s: exit code %d\n%s", step.done, r.code, r.stderr)
		}
		e.checkStatusIsKops(step.stage, original, "etcd-manager-ca-main")
	}
	if want := []string{"terraform-apply-after-promote", "terraform-apply-after-distrust"}; !reflect.DeepEqual(stops, want) {
		t.Errorf("stops after the first: %q, want %q", stops, want)
	}
	if !strings.Contains(r.stdout, "Rotation complete") {
		t.Errorf("the last run did not complete the rotation:\n%s", r.stdout)
	}
	roll := "rolling-update cluster --yes --instance-group-roles control-plane --validate-count 2"
	validate := "validate cluster --wait 15m0s"
	want := []string{
		update, roll, validate, "export kubecfg",
		update, roll, validate, "export kubecfg --admin=2h0m0s",
		update, roll, validate, "export kubecfg",
	}
	if got := e.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("kops calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
