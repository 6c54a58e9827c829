package secret

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/display"
)

var fixedNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func secret(name string, data map[string]string, mutate ...func(*corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + "name", ResourceVersion: "1"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func clients(objs ...runtime.Object) (Clients, *fake.Clientset) {
	kc := fake.NewClientset(objs...)
	return Clients{Kube: kc, Dynamic: dynamicfake.NewSimpleDynamicClient(scheme.Scheme)}, kc
}

func setTo(key, v string) Change {
	return Change{Key: key, Source: "test", Make: func([]byte, bool) ([]byte, error) { return []byte(v), nil }}
}

func opts(changes ...Change) Options {
	return Options{Namespace: "ns", Secrets: []string{"app"}, Changes: changes, KeepPrevious: true, Now: func() time.Time { return fixedNow }}
}

func get(t *testing.T, c Clients, name string) *corev1.Secret {
	t.Helper()
	s, err := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRotateKeepsPreviousAndRecords(t *testing.T) {
	c, _ := clients(secret("app", map[string]string{"a": "old-a", "b": "old-b"}))
	res, err := Rotate(context.Background(), c, opts(setTo("a", "new-a"), Change{Key: "c", Make: func(_ []byte, exists bool) ([]byte, error) {
		if exists {
			t.Error("Make says c exists")
		}
		return []byte("new-c"), nil
	}}))
	if err == nil || !strings.Contains(err.Error(), `secret/app has no key "c" (keys: a, b)`) {
		t.Fatalf("missing key without CreateKeys: %v", err)
	}
	if _, err := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), "app-previous", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatal("bad input wrote a companion")
	}
	o := opts(setTo("a", "new-a"), setTo("c", "new-c"))
	o.CreateKeys = true
	res, err = Rotate(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	s := get(t, c, "app")
	if string(s.Data["a"]) != "new-a" || string(s.Data["b"]) != "old-b" || string(s.Data["c"]) != "new-c" {
		t.Errorf("data after rotation: %q", s.Data)
	}
	prev := get(t, c, "app-previous")
	if string(prev.Data["a"]) != "old-a" || len(prev.Data) != 1 || prev.Annotations[CreatedKeys] != "c" ||
		prev.Annotations[v1alpha1.ExpiresAt] != "2026-11-30T12:00:00Z" || prev.OwnerReferences[0].Name != "app" {
		t.Errorf("companion: data %q annotations %v", prev.Data, prev.Annotations)
	}
	if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" || s.Annotations[v1alpha1.Keys] != "a,c" {
		t.Errorf("records: %v", s.Annotations)
	}
	if res.Phase != PhaseComplete || res.Secrets[0].Keys[0].Old == "" || res.Secrets[0].Keys[1].Created != true {
		t.Errorf("result: %+v", res.Secrets)
	}

	// Undo restores a and removes the created key c.
	if _, err := Undo(context.Background(), c, UndoOptions{Namespace: "ns", Name: "app", Now: func() time.Time { return fixedNow }}); err != nil {
		t.Fatal(err)
	}
	s = get(t, c, "app")
	if string(s.Data["a"]) != "old-a" || s.Data["c"] != nil || s.Annotations[v1alpha1.Generation] != "2" {
		t.Errorf("after undo: %q %v", s.Data, s.Annotations[v1alpha1.Generation])
	}
	h, _ := v1alpha1.ReadHistory(s.Annotations)
	if len(h) != 2 || h[1].Action != v1alpha1.ActionUndo {
		t.Errorf("history: %+v", h)
	}
}

func TestRotateResumesInsteadOfRotatingAgain(t *testing.T) {
	c, kc := clients(secret("app", map[string]string{"a": "written-by-killed-run"}, func(s *corev1.Secret) {
		s.Annotations = map[string]string{v1alpha1.Phase: v1alpha1.PhaseWritten, v1alpha1.Generation: "3", v1alpha1.Keys: "a", v1alpha1.Fingerprints: `{"a":"sha256:abc"}`}
	}))
	var progress bytes.Buffer
	o := opts(setTo("a", "must-not-be-used"))
	o.Progress = &progress
	res, err := Rotate(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, "app").Data["a"]); got != "written-by-killed-run" {
		t.Errorf("resumed run wrote a new value")
	}
	if !res.Secrets[0].Resumed || res.Secrets[0].Generation != 3 || !strings.Contains(progress.String(), "resuming generation 3") {
		t.Errorf("result %+v, progress %q", res.Secrets[0], progress.String())
	}
	for _, a := range kc.Actions() {
		if a.GetVerb() == "create" || a.GetVerb() == "update" {
			t.Errorf("resumed run did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestRotateRefusesWhatItMustNotTouch(t *testing.T) {
	tests := []struct {
		name string
		objs []runtime.Object
		o    func(*Options)
		want string
	}{
		{"immutable", []runtime.Object{secret("app", map[string]string{"a": "x"}, func(s *corev1.Secret) { v := true; s.Immutable = &v })}, nil, "secret/app is immutable"},
		{"foreign -previous", []runtime.Object{secret("app", map[string]string{"a": "x"}), secret("app-previous", map[string]string{"z": "y"})}, nil,
			"secret/app-previous exists but is not kube-rotate's copy"},
		{"external secret", []runtime.Object{secret("app", map[string]string{"a": "x"}, func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1beta1", Kind: "ExternalSecret", Name: "es"}}
		})}, nil, "written by externalsecret/es"},
		{"bad generation annotation", []runtime.Object{secret("app", map[string]string{"a": "x"}, func(s *corev1.Secret) {
			s.Annotations = map[string]string{v1alpha1.Generation: "many"}
		})}, nil, "is not a generation number"},
		{"make fails", []runtime.Object{secret("app", map[string]string{"a": "x"})}, func(o *Options) {
			o.Changes = []Change{{Key: "a", Make: func([]byte, bool) ([]byte, error) { return nil, errBoom }}}
		}, "secret/app key a: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, kc := clients(tt.objs...)
			o := opts(setTo("a", "new"))
			if tt.o != nil {
				tt.o(&o)
			}
			_, err := Rotate(context.Background(), c, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if string(get(t, c, "app").Data["a"]) != "x" {
				t.Error("the Secret was written")
			}
			for _, a := range kc.Actions() {
				if a.GetVerb() == "update" && a.(k8stesting.UpdateAction).GetObject().(*corev1.Secret).Name == "app" {
					t.Error("the Secret was updated")
				}
			}
		})
	}
}

var errBoom = errString("boom")

type errString string

func (e errString) Error() string { return string(e) }

func TestConflictStopsWithNothingHalfWritten(t *testing.T) {
	c, kc := clients(secret("app", map[string]string{"a": "old"}))
	kc.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.UpdateAction).GetObject().(*corev1.Secret).Name == "app" {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "app", errString("the object has been modified"))
		}
		return false, nil, nil
	})
	_, err := Rotate(context.Background(), c, opts(setTo("a", "new")))
	if err == nil || !strings.Contains(err.Error(), "secret/app changed while it was being rotated") || !strings.Contains(err.Error(), "re-run") {
		t.Fatalf("err = %v", err)
	}
	if string(get(t, c, "app").Data["a"]) != "old" {
		t.Error("value changed despite the conflict")
	}
	// The companion holds the current value: re-running is safe.
	if string(get(t, c, "app-previous").Data["a"]) != "old" {
		t.Error("companion does not hold the current value")
	}
}

func TestNoKeepPreviousAndHelmWarning(t *testing.T) {
	c, _ := clients(secret("app", map[string]string{"a": "old"}, func(s *corev1.Secret) {
		s.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
		s.Annotations = map[string]string{"meta.helm.sh/release-name": "diracx", v1alpha1.Previous: "app-previous"}
	}))
	var progress bytes.Buffer
	o := opts(setTo("a", "new"))
	o.KeepPrevious = false
	o.Progress = &progress
	res, err := Rotate(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), "app-previous", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Error("--no-keep-previous wrote a companion")
	}
	if _, ok := get(t, c, "app").Annotations[v1alpha1.Previous]; ok {
		t.Error("previous annotation left pointing at nothing")
	}
	if !strings.Contains(progress.String(), "managed by Helm release diracx") || len(res.Secrets[0].Warnings) != 1 {
		t.Errorf("no Helm warning: %q", progress.String())
	}
}

func TestFinishRefusesBeforeComplete(t *testing.T) {
	c, _ := clients(
		secret("app", map[string]string{"a": "new"}, func(s *corev1.Secret) {
			s.Annotations = map[string]string{v1alpha1.Phase: v1alpha1.PhaseFailed, v1alpha1.Keys: "a", v1alpha1.Previous: "app-previous"}
		}),
		secret("app-previous", map[string]string{"a": "old"}, func(s *corev1.Secret) { s.Labels = map[string]string{v1alpha1.CompanionOf: "app"} }),
	)
	_, err := Finish(context.Background(), c, FinishOptions{Namespace: "ns", Name: "app"})
	if err == nil || !strings.Contains(err.Error(), `last rotation is "failed"`) {
		t.Fatalf("err = %v", err)
	}
	get(t, c, "app-previous")
	if _, err := Finish(context.Background(), c, FinishOptions{Namespace: "ns", Name: "app", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kube.CoreV1().Secrets("ns").Get(context.Background(), "app-previous", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Error("finish --force kept the companion")
	}
}

func TestUndoRefusesExternalSecretOwnedSecrets(t *testing.T) {
	c, _ := clients(
		secret("app", map[string]string{"a": "from-store"}, func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "es"}}
		}),
		secret("app-previous", map[string]string{"a": "old"}, func(s *corev1.Secret) { s.Labels = map[string]string{v1alpha1.CompanionOf: "app"} }),
	)
	_, err := Undo(context.Background(), c, UndoOptions{Namespace: "ns", Name: "app"})
	if err == nil || !strings.Contains(err.Error(), "written by externalsecret/es") || !strings.Contains(err.Error(), "--force-sync") {
		t.Fatalf("err = %v", err)
	}
	if string(get(t, c, "app").Data["a"]) != "from-store" {
		t.Error("undo wrote an operator-owned Secret")
	}
}

// The undo command is worded with the name the tool runs as, from the
// context, not a name written into the core.
func TestUndoCommandUsesTheDisplayName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"default", context.Background(), "kubectl rotate undo secret/app -n ns"},
		{"as run", display.WithKubectlRotate(context.Background(), "kubectl-rotate"), "kubectl-rotate undo secret/app -n ns"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := UndoCommand(tt.ctx, "ns", "app"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
