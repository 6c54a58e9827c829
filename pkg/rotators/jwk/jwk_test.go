package jwk

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// TestRotateResumesWithTheSameKey: a run that fails at any write of the
// key set is finished by the re-run with the key it published, never a
// second one, and the finished rotation leaves no journal.
func TestRotateResumesWithTheSameKey(t *testing.T) {
	fixture, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		failNth  int // the Secret update that fails (1: publish, 2: promote)
		wantStep string
	}{
		{"publish fails", 1, "step 1 of 4 (publish) failed"},
		{"promote fails", 2, "step 3 of 4 (promote) failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-jwks", Namespace: "ns"},
				Data: map[string][]byte{"jwks.json": fixture}})
			updates := 0
			kc.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
				updates++
				if updates == tt.failNth {
					return true, nil, errors.New("the API server went away")
				}
				return false, nil, nil
			})
			tg := &Target{Kube: kc, Namespace: "ns", Secret: "diracx-jwks", Key: "jwks.json"}
			_, err := tg.Procedure().Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantStep) || !strings.Contains(err.Error(), "re-run the same command to resume") {
				t.Fatalf("first run: %v, want %q", err, tt.wantStep)
			}
			rec, err := tg.Procedure().Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, r, err := tg.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			kid := rec.String(FactKID)
			if len(r.Set.Keys) != 3 || r.Set.Keys[r.ActiveIndex()].KID != kid || r.State(1) != jwks.StateRetiring {
				t.Errorf("after the re-run: %d keys, signing %s, want 3 and %s", len(r.Set.Keys), r.Set.Keys[r.ActiveIndex()].KID, kid)
			}
			if rec, err := tg.Journal().Load(context.Background()); err != nil || rec != nil {
				t.Errorf("a finished rotation left its journal: %+v %v", rec, err)
			}
		})
	}
}

// TestRotateDryRunListsTheSteps: the plan names the four steps and writes
// nothing.
func TestRotateDryRunListsTheSteps(t *testing.T) {
	fixture, _ := os.ReadFile("../../model/jwks/testdata/diracx.json")
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-jwks", Namespace: "ns"},
		Data: map[string][]byte{"jwks.json": fixture}})
	tg := &Target{Kube: kc, Namespace: "ns", Secret: "diracx-jwks", Key: "jwks.json", Restart: true}
	steps, _, err := tg.Procedure().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
		if s.Done {
			t.Errorf("step %s done before anything ran", s.Name)
		}
	}
	if strings.Join(names, ",") != "publish,restart-verifiers,promote,restart-signers" {
		t.Errorf("steps %v", names)
	}
	for _, a := range kc.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("the dry run wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	var _ procedure.Journal = tg.Journal()
}
