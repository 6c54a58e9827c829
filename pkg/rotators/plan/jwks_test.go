package plan

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// A key-set item publishes a key, then promotes it; a re-run publishes no
// second key; undo refuses to demote a promoted key.
func TestApplyKeySetItem(t *testing.T) {
	set, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-jwks", Namespace: "ns", UID: "u"},
		Data: map[string][]byte{"jwks.json": set}})
	p, err := planspec.Parse([]byte(`apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: keys}
spec:
  namespace: ns
  items:
  - name: signing-key
    jwks: {secret: diracx-jwks}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := Options{Plan: p, Clients: secret.Clients{Kube: kc}}
	ring := func() *jwks.Ring {
		st := &jwks.SecretStore{Client: kc, Namespace: "ns", Name: "diracx-jwks", Key: "jwks.json"}
		s, rec, err := st.Load(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return jwks.NewRing(s, "", rec)
	}
	before := ring()
	oldSigning := before.Set.Keys[before.ActiveIndex()].KID
	j, err := Apply(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	kid := j.Items["signing-key"].KID
	r := ring()
	if kid == "" || r.Set.Keys[r.ActiveIndex()].KID != kid || len(r.Set.Keys) != len(before.Set.Keys)+1 {
		t.Fatalf("after apply: signing %s, journal kid %s, %d keys", r.Set.Keys[r.ActiveIndex()].KID, kid, len(r.Set.Keys))
	}
	if r.State(r.Set.Find(oldSigning)) != jwks.StateRetiring {
		t.Error("the previous signing key does not keep verifying")
	}
	if _, err := Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	if n := len(ring().Set.Keys); n != len(before.Set.Keys)+1 {
		t.Errorf("a re-run published another key: %d keys", n)
	}
	if err := Undo(ctx, o); err == nil || !strings.Contains(err.Error(), "already the signing key") {
		t.Errorf("undo of a promoted key: %v", err)
	}
}

// A key-set item on a Slurm set follows Slurm's rule: the new key is
// appended last, and at finish it gets "use":"default" (Slurm signs with
// it) while the existing keys keep their place and bytes but for use.
func TestApplyKeySetItemSlurm(t *testing.T) {
	set, err := os.ReadFile("../../model/jwks/testdata/slurm-schedmd.json")
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slurm-jwks", Namespace: "ns", UID: "u"},
		Data: map[string][]byte{"slurm.jwks": set}})
	p, err := planspec.Parse([]byte(`apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: keys}
spec:
  namespace: ns
  items:
  - name: auth-key
    jwks: {secret: slurm-jwks, key: slurm.jwks}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j, err := Apply(ctx, Options{Plan: p, Clients: secret.Clients{Kube: kc}})
	if err != nil {
		t.Fatal(err)
	}
	st := &jwks.SecretStore{Client: kc, Namespace: "ns", Name: "slurm-jwks", Key: "slurm.jwks"}
	s, rec, err := st.Load(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	r := jwks.NewRing(s, "", rec)
	kid := j.Items["auth-key"].KID
	if r.Layout != jwks.LayoutSlurm || len(s.Keys) != 3 || s.Keys[2].KID != kid || r.ActiveIndex() != 2 {
		t.Fatalf("after apply: layout %s, %d keys, signing %d, journal kid %s", r.Layout, len(s.Keys), r.ActiveIndex(), kid)
	}
	if s.Keys[0].KID != "key-identifier" || s.Keys[1].KID != "key-identifier-2" || strings.Contains(string(s.Keys[1].Raw), `"use"`) {
		t.Errorf("the old keys moved or the old signer kept use: %s", s.Keys[1].Raw)
	}
	if r.Check() != nil {
		t.Errorf("the written set is one Slurm refuses: %v", r.Check())
	}
}
