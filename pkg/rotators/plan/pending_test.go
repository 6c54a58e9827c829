package plan

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

func TestCreatePendingReusesItsOwnValues(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u1"},
		Data: map[string][]byte{"A": []byte("postgresql://app:old@db/a"), "B": []byte("mysql://app:old@db:3306/b"), "K": []byte("k0")}})
	spec := &planspec.SecretSpec{Name: "db", URLPassword: &planspec.URLPassword{Keys: []string{"A", "B"}, Generate: "password:24"},
		Generate: []planspec.GenerateKey{{Key: "K", Spec: "hex:16"}}}
	cs, _, err := SecretChanges(spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CreatePending(ctx, kc, "ns", "db-password", "r1", spec, cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := values.URLPassword(string(p.Values["A"]))
	pb, _ := values.URLPassword(string(p.Values["B"]))
	if pa != pb || len(pa) != 24 || len(p.Values["K"]) != 32 || string(p.Current["A"]) != "postgresql://app:old@db/a" || p.Reused {
		t.Fatalf("pending %d/%d chars, K %d chars, reused %v", len(pa), len(pb), len(p.Values["K"]), p.Reused)
	}
	live, _ := kc.CoreV1().Secrets("ns").Get(ctx, "db", metav1.GetOptions{})
	if string(live.Data["A"]) != "postgresql://app:old@db/a" {
		t.Error("create changed the Secret in use")
	}
	ps, err := kc.CoreV1().Secrets("ns").Get(ctx, "db-pending", metav1.GetOptions{})
	if err != nil || ps.Annotations[RotationIDAnnotation] != "r1" || ps.OwnerReferences[0].UID != "u1" {
		t.Fatalf("pending companion: %v %+v", err, ps)
	}

	// A re-run of the same rotation gets the same values back.
	cs2, _, _ := SecretChanges(spec)
	again, err := CreatePending(ctx, kc, "ns", "db-password", "r1", spec, cs2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || !bytes.Equal(again.Values["A"], p.Values["A"]) || !bytes.Equal(again.Values["K"], p.Values["K"]) {
		t.Error("a re-run made new values instead of reusing the pending ones")
	}
	if fp := again.Fingerprints()["K"]; fp != values.Fingerprint(p.Values["K"]) {
		t.Errorf("fingerprint %s", fp)
	}

	// Another rotation finds them and stops.
	if _, err := CreatePending(ctx, kc, "ns", "db-password", "r2", spec, cs2, nil); err == nil || !strings.Contains(err.Error(), "another rotation (r1)") {
		t.Errorf("another rotation: %v", err)
	}
}

func TestCreatePendingBadInput(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Data: map[string][]byte{"A": []byte("not a url")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: "ns"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken-pending", Namespace: "ns"}},
	)
	tests := []struct {
		spec *planspec.SecretSpec
		want string
	}{
		{&planspec.SecretSpec{Name: "missing", Generate: []planspec.GenerateKey{{Key: "K", Spec: "hex:16"}}}, "secret/missing not found in namespace ns"},
		{&planspec.SecretSpec{Name: "db", Generate: []planspec.GenerateKey{{Key: "K", Spec: "hex:16"}}}, "has no key K: add it, or set createKeys: true"},
		{&planspec.SecretSpec{Name: "db", URLPassword: &planspec.URLPassword{Keys: []string{"A"}, Generate: "password:20"}}, "secret/db key A"},
		{&planspec.SecretSpec{Name: "taken", Generate: []planspec.GenerateKey{{Key: "K", Spec: "hex:16"}}, CreateKeys: true}, "is not kube-rotate's pending companion"},
	}
	for _, tt := range tests {
		cs, _, err := SecretChanges(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CreatePending(ctx, kc, "ns", "it", "r1", tt.spec, cs, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "item it: ") {
			t.Errorf("%s: %v, want %q", tt.spec.Name, err, tt.want)
		}
	}
	if _, err := kc.CoreV1().Secrets("ns").Get(ctx, "db-pending", metav1.GetOptions{}); err == nil {
		t.Error("a failed create left a pending companion")
	}
}
