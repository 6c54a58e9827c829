//go:build e2e

package kops

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The cluster must validate after every rolling update before the next
// keyset step: `run --yes` fails at the validation and does not promote;
// a single promote or distrust runs kops validate cluster itself and is
// refused, nothing changed, while it fails; once the cluster validates,
// the run goes on.
func TestPromoteAndDistrustWaitForValidation(t *testing.T) {
	e := setup(t)
	original := e.primaries()
	const reason = "VALIDATION ERRORS: node nodes-fsn1-1 is not ready"
	failValidate := func(fail bool) {
		t.Helper()
		if !fail {
			if err := os.Remove(e.validateFails); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(e.validateFails, []byte(reason+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	failValidate(true)
	r := e.run("run", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, "validate-after-stage") {
		t.Fatalf("run --yes with a cluster that does not validate: exit code %d, want 1 naming validate-after-stage\n%s", r.code, r.stderr)
	}
	if want := []string{"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s"}; !reflect.DeepEqual(e.calls(), want) {
		t.Errorf("kops calls: %q, want %q (nothing after the failed validation)", e.calls(), want)
	}
	e.checkStatusIsKops("staged", original)

	// promote by hand: kops validate cluster runs first, and fails.
	before := e.snapshot()
	r = e.run("promote", "all")
	oneLine(t, "promote all while the cluster does not validate", r, "promote refused, nothing changed", "does not validate", reason)
	if got := e.calls()[len(before.calls):]; !reflect.DeepEqual(got, []string{"validate cluster"}) {
		t.Errorf("promote all ran %q, want kops validate cluster only", got)
	}
	if !reflect.DeepEqual(e.keypairs(true), before.keypairs) {
		t.Errorf("the refused promote changed the keypairs: %+v", e.keypairs(true))
	}
	e.checkStatusIsKops("staged", original)

	// The cluster validates: the run validates again and goes on to the
	// stop for the CA data; the promote's validation fails.
	failValidate(false)
	r = e.run("run", "--yes")
	if r.code != 3 || r.waitingAt() != "distribute-ca-after-stage" {
		t.Fatalf("run --yes once the cluster validates: exit code %d, want 3 at distribute-ca-after-stage\n%s", r.code, r.stderr)
	}
	if got := e.calls()[len(before.calls)+1:]; !reflect.DeepEqual(got, []string{"validate cluster --wait 15m0s", "export kubecfg"}) {
		t.Errorf("the re-run ran %q, want the validation and the export", got)
	}
	failValidate(true)
	r = e.run("run", "--yes", "--done", "distribute-ca-after-stage")
	if r.code != 1 || !strings.Contains(r.stderr, "validate-after-promote") {
		t.Fatalf("run after the promote with a cluster that does not validate: exit code %d, want 1 naming validate-after-promote\n%s", r.code, r.stderr)
	}
	e.checkStatusIsKops("promoted", original)

	// distrust by hand before the cluster validated after the promote.
	before = e.snapshot()
	r = e.run("distrust", "all")
	oneLine(t, "distrust all while the cluster does not validate", r, "distrust refused, nothing changed", "does not validate", reason)
	if got := e.calls()[len(before.calls):]; !reflect.DeepEqual(got, []string{"validate cluster"}) {
		t.Errorf("distrust all ran %q, want kops validate cluster only", got)
	}
	before.calls = e.calls()
	e.checkUnchanged("the refused distrust", before)
	e.checkStatusIsKops("promoted", original)

	failValidate(false)
	if r, _ := e.runThrough(); r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Fatalf("run once the cluster validates: exit code %d\n%s", r.code, r.stderr)
	}
	e.checkStatusIsKops("complete", original)
}

// run --yes refuses a kops CLI that is not the version that last updated
// the cluster (its kops-version.txt, as kops update cluster writes it),
// before anything runs: a newer one would upgrade the cluster in the
// middle of the rotation, an older one kops itself refuses.
func TestRunRefusesAnotherKopsVersion(t *testing.T) {
	for _, tc := range []struct {
		name, marker, want string
	}{
		// A newer kops updated the cluster: this one would downgrade it.
		{"newer kops updated the cluster", "1.37.0", "refuses to downgrade"},
		// An older one did: this one would upgrade it mid-rotation.
		{"older kops updated the cluster", "1.30.0", "must not upgrade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			have := strings.TrimPrefix(strings.TrimSpace(e.kopsOK(nil, "version", "--short")), "v")
			if have == tc.marker || have == "" {
				t.Fatalf("kops version --short says %q: the test needs a kops other than %s", have, tc.marker)
			}
			if err := os.WriteFile(e.dir+"/state/"+clusterName+"/kops-version.txt", []byte(tc.marker), 0o644); err != nil {
				t.Fatal(err)
			}
			before := e.snapshot()
			r := e.run("run", "--yes")
			oneLine(t, "run --yes with kops-version.txt "+tc.marker, r, have, tc.marker, tc.want)
			e.checkUnchanged("the refused run", before)
			if len(before.calls) != 0 {
				t.Errorf("kops calls: %q", before.calls)
			}
			if kps := e.keypairs(true); len(kps["kubernetes-ca"]) != 1 {
				t.Errorf("a keypair was staged: %+v", kps)
			}

			// A promote by hand checks the version before it validates.
			if r := e.run("stage", "all"); r.code != 0 {
				t.Fatalf("stage all: exit code %d\n%s", r.code, r.stderr)
			}
			before = e.snapshot()
			r = e.run("promote", "all")
			oneLine(t, "promote all with kops-version.txt "+tc.marker, r, "promote refused, nothing changed", have, tc.marker, tc.want)
			e.checkUnchanged("the refused promote", before)
		})
	}
}
