package secret

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// companionOf is NAME-previous as a rotation of generation gen left it,
// holding data, kept until expires.
func companionOf(name string, gen int, expires time.Time, data map[string]string) *corev1.Secret {
	return secret(CompanionName(name), data, func(s *corev1.Secret) {
		s.Labels = map[string]string{v1alpha1.CompanionOf: name, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy}
		s.Annotations = map[string]string{v1alpha1.Generation: strconv.Itoa(gen), v1alpha1.ExpiresAt: expires.Format(time.RFC3339)}
	})
}

func generation(gen int) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		s.Annotations = map[string]string{v1alpha1.Generation: strconv.Itoa(gen), v1alpha1.Phase: v1alpha1.PhaseComplete}
	}
}

// A rotation may replace NAME-previous only when nothing is lost: the
// companion is gone (finished), expired, holds only what the Secret holds
// now, or the user said --replace-previous.
func TestRotateKeepsAnUnfinishedPrevious(t *testing.T) {
	later, earlier := fixedNow.Add(24*time.Hour), fixedNow.Add(-time.Hour)
	tests := []struct {
		name    string
		comp    *corev1.Secret
		replace bool
		wantErr string
	}{
		{name: "unfinished and not expired: refused", comp: companionOf("app", 1, later, map[string]string{"a": "v0"}),
			wantErr: "secret/app-previous still holds the values of a from before rotation 1 of secret/app, kept until 2026-11-24T12:00:00Z and not finished: run `kubectl rotate finish secret/app -n ns` once nothing needs them, or pass --replace-previous to drop them"},
		{name: "replaced with --replace-previous", comp: companionOf("app", 1, later, map[string]string{"a": "v0"}), replace: true},
		{name: "expired", comp: companionOf("app", 1, earlier, map[string]string{"a": "v0"})},
		{name: "holds only the current values (after an undo)", comp: companionOf("app", 1, later, map[string]string{"a": "v1"})},
		{name: "finished (no companion)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{secret("app", map[string]string{"a": "v1"}, generation(1))}
			if tt.comp != nil {
				objs = append(objs, tt.comp)
			}
			c, _ := clients(objs...)
			o := opts(setTo("a", "v2"))
			o.ReplacePrevious = tt.replace
			_, err := Rotate(context.Background(), c, o)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v,\nwant %s", err, tt.wantErr)
				}
				if got := string(get(t, c, "app").Data["a"]); got != "v1" {
					t.Errorf("the refused rotation changed secret/app")
				}
				if got := string(get(t, c, "app-previous").Data["a"]); got != "v0" {
					t.Errorf("the refused rotation changed secret/app-previous")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, prev := string(get(t, c, "app").Data["a"]), string(get(t, c, "app-previous").Data["a"]); a != "v2" || prev != "v1" {
				t.Errorf("after the rotation app holds %q and app-previous %q, want v2 and v1", a, prev)
			}
		})
	}
}

// Two rotations in a row without finish: the second would drop the values
// from before the first.
func TestSecondRotationWithoutFinishIsRefused(t *testing.T) {
	c, _ := clients(secret("app", map[string]string{"a": "v0"}))
	if _, err := Rotate(context.Background(), c, opts(setTo("a", "v1"))); err != nil {
		t.Fatal(err)
	}
	_, err := Rotate(context.Background(), c, opts(setTo("a", "v2")))
	if err == nil || !strings.Contains(err.Error(), "still holds the values of a from before rotation 1") {
		t.Fatalf("second rotation: %v, want a refusal", err)
	}
	if a, prev := string(get(t, c, "app").Data["a"]), string(get(t, c, "app-previous").Data["a"]); a != "v1" || prev != "v0" {
		t.Errorf("after the refusal app holds %q and app-previous %q, want v1 and v0", a, prev)
	}
}

var externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// esClients holds secret/app written by externalsecret/app with spec, and
// the other objects.
func esClients(spec map[string]any, objs ...runtime.Object) (Clients, *dynamicfake.FakeDynamicClient) {
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": "app", "namespace": "ns"}, "spec": spec,
	}}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{externalSecrets: "ExternalSecretList"}, es)
	owned := secret("app", map[string]string{"a": "v1"}, generation(1), func(s *corev1.Secret) {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "app"}}
	})
	return Clients{Kube: fake.NewClientset(append([]runtime.Object{owned}, objs...)...), Dynamic: dc}, dc
}

func forceSyncOpts() ForceSyncOptions {
	o := opts()
	o.Secrets, o.Progress = nil, nil
	return ForceSyncOptions{Options: o, Name: "app", SyncTimeout: 300 * time.Millisecond}
}

// What ESO will not sync is refused before anything is written.
func TestForceSyncRefusesWhatTheOperatorWillNotSync(t *testing.T) {
	tests := []struct {
		name    string
		spec    map[string]any
		wantErr string
	}{
		{"refreshInterval 0", map[string]any{"refreshInterval": "0"},
			"externalsecret/app has refreshInterval 0: the External Secrets operator does not sync it again, force-sync included; set spec.refreshInterval (e.g. 1h) or spec.refreshPolicy: OnChange first"},
		{"refreshInterval 0s, Periodic", map[string]any{"refreshInterval": "0s", "refreshPolicy": "Periodic"}, "has refreshInterval 0s"},
		{"CreatedOnce", map[string]any{"refreshInterval": "1h", "refreshPolicy": "CreatedOnce"},
			"externalsecret/app has refreshPolicy CreatedOnce: the External Secrets operator never syncs it again, force-sync included; set spec.refreshPolicy to OnChange or Periodic first"},
		{"an unfinished previous", map[string]any{"refreshInterval": "1h"},
			"secret/app-previous still holds the values of a from before rotation 1 of secret/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dc := esClients(tt.spec, companionOf("app", 1, fixedNow.Add(time.Hour), map[string]string{"a": "v0"}))
			_, err := ForceSync(context.Background(), c, forceSyncOpts())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got := string(get(t, c, "app-previous").Data["a"]); got != "v0" {
				t.Errorf("the refusal changed secret/app-previous")
			}
			for _, a := range dc.Actions() {
				if a.GetVerb() != "get" {
					t.Errorf("the refusal wrote to the ExternalSecret: %s", a.GetVerb())
				}
			}
		})
	}
}

// A force-sync that changes nothing leaves NAME-previous as it was: put
// back when it existed, removed when this run made it.
func TestForceSyncThatChangesNothingLeavesThePreviousAsItWas(t *testing.T) {
	expired := companionOf("app", 1, fixedNow.Add(-time.Hour), map[string]string{"a": "v0"})
	for _, prev := range []*corev1.Secret{expired, nil} {
		name := "none before"
		if prev != nil {
			name = "an expired one before"
		}
		t.Run(name, func(t *testing.T) {
			var objs []runtime.Object
			if prev != nil {
				objs = append(objs, prev.DeepCopy())
			}
			c, _ := esClients(map[string]any{"refreshInterval": "1h"}, objs...)
			_, err := ForceSync(context.Background(), c, forceSyncOpts())
			if err == nil || !strings.Contains(err.Error(), "did not change secret/app within 300ms") {
				t.Fatalf("error %v, want the sync to time out", err)
			}
			got, gerr := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), "app-previous", metav1.GetOptions{})
			if prev == nil {
				if !apierrors.IsNotFound(gerr) || !strings.Contains(err.Error(), "secret/app-previous, made by this run, was removed") {
					t.Errorf("app-previous after the failed sync: %v (%v), want it removed and said so", gerr, err)
				}
				return
			}
			if gerr != nil {
				t.Fatal(gerr)
			}
			if string(got.Data["a"]) != "v0" || got.Annotations[v1alpha1.Generation] != "1" || got.Annotations[v1alpha1.ExpiresAt] != prev.Annotations[v1alpha1.ExpiresAt] || !strings.Contains(err.Error(), "secret/app-previous is as it was") {
				t.Errorf("app-previous after the failed sync holds %q, annotations %v (%v), want it as it was", got.Data["a"], got.Annotations, err)
			}
		})
	}
}

// Two force-syncs within one second (or with one clock) must still change
// the annotation: the operator syncs on a change only.
func TestForceSyncRequestAlwaysChangesTheAnnotation(t *testing.T) {
	c, dc := esClients(map[string]any{"refreshInterval": "1h"})
	o := forceSyncOpts()
	o.defaults()
	fs := &forceSync{o: &o, c: c, requests: []syncRequest{{res: dc.Resource(externalSecrets).Namespace("ns"), ref: "externalsecret/app", name: "app", namespace: "ns"}}}
	var seen []string
	for i := 0; i < 2; i++ {
		if err := fs.request(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		es, err := dc.Resource(externalSecrets).Namespace("ns").Get(context.Background(), "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, es.GetAnnotations()[ForceSyncAnnotation])
	}
	if seen[0] == "" || seen[0] == seen[1] {
		t.Errorf("force-sync annotations of two requests: %q", seen)
	}
}

// A force-sync killed after it wrote NAME-previous (and, with --push,
// after the store took the new value, which the operator may then sync
// on its own) is re-run: the companion it wrote holds the values from
// before and is kept as it is, not overwritten with the Secret's newer ones.
func TestForceSyncRerunKeepsThePreviousItWrote(t *testing.T) {
	// The interrupted run of rotation 2 kept v0; the operator has since
	// synced v1 into the Secret, which still records generation 1.
	c, dc := esClients(map[string]any{"refreshInterval": "1h"}, companionOf("app", 2, fixedNow.Add(time.Hour), map[string]string{"a": "v0"}))
	o := forceSyncOpts()
	o.SyncTimeout = 5 * time.Second
	// The sync of the re-run (the unit under test is this package, not
	// the operator): v2 once force-sync is set.
	go func() {
		for i := 0; i < 200; i++ {
			es, err := dc.Resource(externalSecrets).Namespace("ns").Get(context.Background(), "app", metav1.GetOptions{})
			if err == nil && es.GetAnnotations()[ForceSyncAnnotation] != "" {
				s := get(t, c, "app")
				s.Data["a"] = []byte("v2")
				_, _ = c.Kube.CoreV1().Secrets("ns").Update(context.Background(), s, metav1.UpdateOptions{})
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := ForceSync(context.Background(), c, o); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, "app").Data["a"]); got != "v2" {
		t.Fatalf("the sync did not happen: a=%q", got)
	}
	if got := string(get(t, c, "app-previous").Data["a"]); got != "v0" {
		t.Errorf("app-previous holds %q after the re-run, want the value from before the rotation (v0)", got)
	}
}
