package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// A rotation of several Secrets records them complete one write each: a
// run stopped between two of those writes (killed, or a write that
// fails) is resumed by the same command, whichever Secrets were recorded
// complete already, without rotating them again or restarting anything
// twice.
func TestRotateResumesAfterAPartlyRecordedComplete(t *testing.T) {
	tests := []struct {
		name    string
		restart bool
		// failOn is the Secret whose phase-complete write fails: app
		// holds the journal (the procedure's first Secret); db is the
		// second.
		failOn string
	}{
		{"the second Secret's record fails", true, "db"},
		{"the first Secret's record (with the journal) fails", true, "app"},
		{"no consumers, the second Secret's record fails", false, "db"},
		{"no consumers, the first Secret's record fails", false, "app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, appSecret(), true)
			if err := w.kc.Tracker().Add(secret("db", map[string]string{"a": "old-db"})); err != nil {
				t.Fatal(err)
			}
			w.fail = failing("patch", "secrets", tt.failOn, `"`+v1alpha1.Phase+`":"complete"`)
			var progress bytes.Buffer
			o := rotateOpts("first", &progress)
			// One write at a time: the order of the records is the point.
			o.Secrets, o.Restart, o.Workers = []string{"app", "db"}, tt.restart, 1
			_, err := Rotate(context.Background(), w.c, o)
			var serr *procedure.StepError
			if !errors.As(err, &serr) || serr.Step != StepComplete {
				t.Fatalf("first run: %v, want step complete to fail", err)
			}

			w.fail = nil
			progress.Reset()
			o = rotateOpts("second", &progress)
			o.Secrets, o.Restart = []string{"app", "db"}, tt.restart
			if _, err := Rotate(context.Background(), w.c, o); err != nil {
				t.Fatalf("re-run: %v\n%s", err, progress.String())
			}
			for name, old := range map[string]string{"app": "old-a", "db": "old-db"} {
				s := w.secret(name)
				if got := string(s.Data["a"]); got != "first" {
					t.Errorf("secret/%s holds %q after the re-run, want the first run's value", name, got)
				}
				if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" {
					t.Errorf("secret/%s: phase %q generation %q, want complete and 1", name, s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
				}
				if _, ok := s.Annotations[JournalAnnotation]; ok {
					t.Errorf("secret/%s keeps a journal", name)
				}
				if got := string(w.secret(name + "-previous").Data["a"]); got != old {
					t.Errorf("secret/%s-previous holds %q, want the value from before", name, got)
				}
			}
			want := map[string]int{}
			if tt.restart {
				want = map[string]int{"web1": 1, "web2": 1}
			}
			if len(w.restarts) != len(want) || w.restarts["web1"] != want["web1"] || w.restarts["web2"] != want["web2"] {
				t.Errorf("restarts %v, want %v", w.restarts, want)
			}
			if !strings.Contains(progress.String(), "resuming generation 1") {
				t.Errorf("the re-run does not say it resumes:\n%s", progress.String())
			}
		})
	}
}

// A Secret whose readers are healthy is recorded complete while the
// others still roll out, and stays so when another Secret's reader fails:
// its own consumers prove its values. The re-run, once the failing reader
// is healthy, completes the rest without restarting anything twice.
func TestASecretIsCompleteWhenItsReadersAre(t *testing.T) {
	w := newWorld(t, appSecret(), false) // web2, reading app, does not roll out
	db := secret("db", map[string]string{"a": "old-db"})
	web3 := reader("web3")
	web3.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "db"
	for _, obj := range []runtime.Object{db, web3} {
		if err := w.kc.Tracker().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.dyn.Tracker().Add(rollout(t, "web3", true)); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	o := rotateOpts("first", &progress)
	o.Secrets = []string{"app", "db"}
	_, err := Rotate(context.Background(), w.c, o)
	var serr *procedure.StepError
	if !errors.As(err, &serr) || serr.Step != StepWait {
		t.Fatalf("first run: %v, want step wait to fail", err)
	}
	if ph := w.secret("db").Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseComplete {
		t.Errorf("secret/db, whose reader web3 is healthy: phase %q, want complete", ph)
	}
	if ph := w.secret("app").Annotations[v1alpha1.Phase]; ph != v1alpha1.PhaseFailed {
		t.Errorf("secret/app, whose reader web2 did not roll out: phase %q, want failed", ph)
	}

	w.healthy("web2")
	progress.Reset()
	o = rotateOpts("second", &progress)
	o.Secrets = []string{"app", "db"}
	if _, err := Rotate(context.Background(), w.c, o); err != nil {
		t.Fatalf("re-run: %v\n%s", err, progress.String())
	}
	for _, name := range []string{"app", "db"} {
		s := w.secret(name)
		if got := string(s.Data["a"]); got != "first" {
			t.Errorf("secret/%s holds %q after the re-run, want the first run's value", name, got)
		}
		if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" {
			t.Errorf("secret/%s: phase %q generation %q, want complete and 1", name, s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
		}
	}
	if want := map[string]int{"web1": 1, "web2": 1, "web3": 1}; fmt.Sprint(w.restarts) != fmt.Sprint(want) {
		t.Errorf("restarts %v, want %v", w.restarts, want)
	}
}
