//go:build e2e

package kops

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// A kubernetes-ca, service-account and etcd-manager-ca-main rotation run
// by `run --yes` stops for a person (exit code 3) where kOps' procedure
// has one act: the new CA data handed out after the stage, new admin
// credentials after the promote, and the legacy service-account tokens
// (the cluster cannot be read here: no context test.example.com); a
// re-run without --done changes nothing, a --done for another step is
// refused, and the right --done goes on. kops get keypairs agrees with
// kops-rotate status at every stop.
func TestRunStopsForAPerson(t *testing.T) {
	e := setup(t)
	keysets := []string{"kubernetes-ca", "service-account", "etcd-manager-ca-main"}
	original := e.primaries()
	run := func(extra ...string) result {
		return e.run(append(append([]string{"run"}, keysets...), append([]string{"--yes"}, extra...)...)...)
	}

	r := run()
	if r.code != 3 || r.waitingAt() != "distribute-ca-after-stage" {
		t.Fatalf("first run: exit code %d, want 3, stopped at distribute-ca-after-stage\n%s", r.code, r.stderr)
	}
	if want := []string{"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg"}; !reflect.DeepEqual(e.calls(), want) {
		t.Errorf("kops calls before the stop: %q, want %q", e.calls(), want)
	}
	e.checkStatusIsKops("staged", original)
	if st := e.status(); st.Record == nil || st.Record.Waiting != "distribute-ca-after-stage" {
		t.Errorf("status does not say the run waits at distribute-ca-after-stage: %+v", st.Record)
	}

	// The CA bundle on stdout: the primary and the staged certificate, by
	// id and SHA-256 fingerprint, as kops holds them.
	var staged string
	for _, k := range e.keypairs(false)["kubernetes-ca"] {
		if !k.IsPrimary {
			staged = k.ID
		}
	}
	fps := e.fingerprints("kubernetes-ca")
	listed := map[string][2]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(primary|new|previous|trust-only)\s+(\d+)\s+sha256:([0-9a-f]{64})\s*$`).FindAllStringSubmatch(r.stdout, -1) {
		listed[m[1]] = [2]string{m[2], m[3]}
	}
	if got := listed["new"]; got[0] != staged || got[1] != fps[staged] {
		t.Errorf("stdout lists the new kubernetes-ca certificate as %s sha256:%s, kops has %s sha256:%s", got[0], got[1], staged, fps[staged])
	}
	if got, p := listed["primary"], original["kubernetes-ca"]; got[0] != p || got[1] != fps[p] {
		t.Errorf("stdout lists the primary kubernetes-ca certificate as %s sha256:%s, kops has %s sha256:%s", got[0], got[1], p, fps[p])
	}
	if len(listed) != 2 || !strings.Contains(r.stdout, "--done distribute-ca-after-stage") {
		t.Errorf("stdout at the stop: want the primary and the new certificate and how to go on:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") || strings.Contains(r.stdout, "BEGIN") {
		t.Errorf("stdout prints key material:\n%s", r.stdout)
	}

	// Re-run without --done: the same stop, nothing run, nothing changed.
	before := e.snapshot()
	if r := run(); r.code != 3 || r.waitingAt() != "distribute-ca-after-stage" {
		t.Errorf("re-run without --done: exit code %d, want 3 at distribute-ca-after-stage\n%s", r.code, r.stderr)
	}
	after := e.snapshot()
	if !reflect.DeepEqual(after.keypairs, before.keypairs) || !reflect.DeepEqual(after.calls, before.calls) {
		t.Errorf("re-run without --done changed the keypairs or ran kops: %q", after.calls)
	}
	e.checkStatusIsKops("staged", original)

	// --done for a step the run is not waiting at: refused, nothing changed.
	before = e.snapshot()
	r = run("--done", "distribute-credentials-after-promote")
	if r.code == 0 || r.code == 3 || !strings.Contains(r.stderr, "waiting at distribute-ca-after-stage") {
		t.Errorf("--done distribute-credentials-after-promote while waiting at distribute-ca-after-stage: exit code %d\n%s", r.code, r.stderr)
	}
	oneLine(t, "--done for another step", r, "distribute-credentials-after-promote", "distribute-ca-after-stage")
	e.checkUnchanged("--done for another step", before)
	e.checkStatusIsKops("staged", original)

	// The person handed out the CA data: promote, roll, new credentials.
	r = run("--done", "distribute-ca-after-stage")
	if r.code != 3 || r.waitingAt() != "distribute-credentials-after-promote" {
		t.Fatalf("--done distribute-ca-after-stage: exit code %d, want 3 at distribute-credentials-after-promote\n%s", r.code, r.stderr)
	}
	if got := e.calls()[len(before.calls):]; !reflect.DeepEqual(got, []string{"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg --admin"}) {
		t.Errorf("kops calls after the promote: %q", got)
	}
	if !strings.Contains(r.stdout, "--done distribute-credentials-after-promote") {
		t.Errorf("stdout at the stop does not say how to go on:\n%s", r.stdout)
	}
	e.checkStatusIsKops("promoted", original)
	if p := e.primaries()["kubernetes-ca"]; p != staged {
		t.Errorf("kubernetes-ca primary after the promote is %s, want the staged %s", p, staged)
	}

	// The admin credentials were handed out: the service-account tokens
	// cannot be checked here (no context test.example.com), a person's.
	before = e.snapshot()
	r = run("--done", "distribute-credentials-after-promote")
	if r.code != 3 || r.waitingAt() != "service-account-tokens" || !strings.Contains(r.stdout, "--done service-account-tokens") {
		t.Fatalf("--done distribute-credentials-after-promote: exit code %d, want 3 at service-account-tokens\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.checkStatusIsKops("promoted", original)
	if got := e.calls(); len(got) != len(before.calls) {
		t.Errorf("kops calls before the service-account tokens: %q", got[len(before.calls):])
	}

	r = run("--done", "service-account-tokens")
	if r.code != 0 || !strings.Contains(r.stdout, "Rotation complete") {
		t.Fatalf("--done service-account-tokens: exit code %d\n%s", r.code, r.stderr)
	}
	if got := e.calls()[len(before.calls):]; !reflect.DeepEqual(got, []string{"update cluster --yes", "rolling-update cluster --yes", "validate cluster --wait 15m0s", "export kubecfg"}) {
		t.Errorf("kops calls after the distrust: %q", got)
	}
	e.checkStatusIsKops("complete", original)
}
