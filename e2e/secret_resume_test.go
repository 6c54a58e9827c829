//go:build e2e

package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	rotatesecret "github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// TestRotationResumesAfterItsRestarts: `kubectl rotate secret` stops after
// it restarted the consumer (its wait times out, or it is killed -9 while
// waiting); the re-run of the same command resumes at the wait: the values
// written by the first run stay, and the workload is not restarted again
// (the journal on the Secret says it was restarted for these values).
func TestRotationResumesAfterItsRestarts(t *testing.T) {
	tests := []struct {
		name string
		// stop runs the first command and stops it after its restart.
		stop func(t *testing.T, ns string, args []string) string
	}{
		{"the wait times out", func(t *testing.T, ns string, args []string) string {
			r := run(t, nil, append(args, "--timeout", "5s")...)
			if r.code == 0 {
				t.Fatalf("the rotation succeeded with a consumer that cannot become ready:\n%s", r.allOutput())
			}
			for _, want := range []string{"step 4 of 5 (wait) failed", "deployment/slow", "re-run the same command to resume, or undo with kubectl rotate undo secret/app -n " + ns} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("the failure does not say %q:\n%s", want, r.stderr)
				}
			}
			if ph := getSecret(t, ns, "app").Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseFailed {
				t.Errorf("phase after the failed wait %q, want failed", ph)
			}
			return r.allOutput()
		}},
		{"killed while it waits", func(t *testing.T, ns string, args []string) string {
			cmd := exec.Command(rotateBin(t), append(args, "--timeout", timeoutFlag(2*time.Minute))...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the restart to be journaled", time.Minute, func() bool {
				return strings.Contains(getSecret(t, ns, "app").Annotations[rotatesecret.JournalAnnotation], "deployment/slow")
			})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if ph := getSecret(t, ns, "app").Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseWritten {
				t.Errorf("phase after the kill %q, want written", ph)
			}
			return out.String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			createSecret(t, ns, "app", map[string]string{"password": "the-original-password"})
			deployWith(t, ns, "slow", envKeyFrom("app", "password"))
			patchDeployment(t, ns, "slow", `{"spec":{"template":{"spec":{"nodeSelector":{"not-yet":"true"}}}}}`) // new pods wait
			before := getDeployment(t, ns, "slow").Generation

			args := []string{"secret", "app", "-n", ns, "--key", "password", "--generate", "password:24"}
			first := tt.stop(t, ns, args)
			s := getSecret(t, ns, "app")
			written := s.Data["password"]
			if string(written) == "the-original-password" {
				t.Fatal("the first run did not write a new value")
			}
			if s.Annotations[rotatesecret.JournalAnnotation] == "" {
				t.Fatal("the first run left no journal of its restart")
			}
			restarted := restartedAt(t, ns, "slow")
			if restarted == "" || getDeployment(t, ns, "slow").Generation != before+1 {
				t.Fatalf("the first run did not restart deployment/slow once (generation %d -> %d)\n%s", before, getDeployment(t, ns, "slow").Generation, first)
			}

			// The operator fixes the workload and runs the same command again.
			patchDeployment(t, ns, "slow", `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`)
			fixed := getDeployment(t, ns, "slow").Generation
			r := mustRun(t, append(args, "--timeout", timeoutFlag(2*time.Minute))...)
			for _, want := range []string{"resuming generation 1", `deployment "slow" successfully rolled out`} {
				if !strings.Contains(r.allOutput(), want) {
					t.Errorf("the re-run does not say %q:\n%s", want, r.allOutput())
				}
			}
			// A kill right after the restart's own journal entry, before
			// the step itself is marked done, resumes inside the step: the
			// step runs again and skips the journaled restart.
			if !strings.Contains(r.allOutput(), "step 3 of 5 (restart): done already") &&
				!strings.Contains(r.allOutput(), "deployment/slow: restarted already by an interrupted run") {
				t.Errorf("the re-run does not say the restart was done already:\n%s", r.allOutput())
			}
			if strings.Contains(r.allOutput(), "deployment/slow restarted") {
				t.Errorf("the re-run restarted deployment/slow again:\n%s", r.allOutput())
			}
			if g := getDeployment(t, ns, "slow").Generation; g != fixed || restartedAt(t, ns, "slow") != restarted {
				t.Errorf("the re-run restarted deployment/slow a second time (generation %d -> %d, restartedAt %s -> %s)", fixed, g, restarted, restartedAt(t, ns, "slow"))
			}
			s = getSecret(t, ns, "app")
			if !bytes.Equal(s.Data["password"], written) {
				t.Error("the re-run generated another value instead of resuming")
			}
			if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" {
				t.Errorf("after the re-run: phase %q generation %q, want complete and 1", s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
			}
			if _, ok := s.Annotations[rotatesecret.JournalAnnotation]; ok {
				t.Error("the journal is left on the Secret after the rotation completed")
			}
			if string(getSecret(t, ns, "app-previous").Data["password"]) != "the-original-password" {
				t.Error("the previous value was lost")
			}
			assertNoValues(t, "output", first+r.allOutput(), map[string][]byte{"old": []byte("the-original-password"), "new": written})
		})
	}
}
