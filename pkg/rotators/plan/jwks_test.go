package plan

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// A key-set item publishes a key, then promotes it by the set's upstream
// rule; a re-run publishes no second key; undo refuses to demote a
// promoted key.
func TestApplyKeySetItem(t *testing.T) {
	tests := []struct {
		name, fixture, secret, key, item string
		layout                           jwks.Layout
		// check is what the layout's own rule says of the set after apply;
		// before is the set before, kid the key the journal names.
		check func(t *testing.T, before, after *jwks.Ring, kid string)
	}{
		{name: "diracx: the new key signs, the old one keeps verifying", fixture: "diracx.json",
			secret: "diracx-jwks", key: "jwks.json", item: "signing-key", layout: jwks.LayoutDiracX,
			check: func(t *testing.T, before, after *jwks.Ring, kid string) {
				oldSigning := before.Set.Keys[before.ActiveIndex()].KID
				if after.State(after.Set.Find(oldSigning)) != jwks.StateRetiring {
					t.Error("the previous signing key does not keep verifying")
				}
			}},
		{name: `slurm: the new key is appended last and gets "use":"default"`, fixture: "slurm-schedmd.json",
			secret: "slurm-jwks", key: "slurm.jwks", item: "auth-key", layout: jwks.LayoutSlurm,
			check: func(t *testing.T, before, after *jwks.Ring, kid string) {
				s := after.Set
				if len(s.Keys) != 3 || s.Keys[2].KID != kid || after.ActiveIndex() != 2 {
					t.Errorf("%d keys, signing %d, journal kid %s; want the new key last and signing", len(s.Keys), after.ActiveIndex(), kid)
				}
				if s.Keys[0].KID != "key-identifier" || s.Keys[1].KID != "key-identifier-2" || strings.Contains(string(s.Keys[1].Raw), `"use"`) {
					t.Errorf("the old keys moved or the old signer kept use: %s", s.Keys[1].Raw)
				}
				if after.Check() != nil {
					t.Errorf("the written set is one Slurm refuses: %v", after.Check())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := os.ReadFile("../../model/jwks/testdata/" + tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tt.secret, Namespace: "ns", UID: "u"},
				Data: map[string][]byte{tt.key: set}})
			p, err := planspec.Parse([]byte(`apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: keys}
spec:
  namespace: ns
  items:
  - name: ` + tt.item + `
    jwks: {secret: ` + tt.secret + `, key: ` + tt.key + `}
`))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			o := Options{Plan: p, Clients: secret.Clients{Kube: kc}}
			ring := func() *jwks.Ring {
				st := &keystore.SecretStore{Client: kc, Namespace: "ns", Name: tt.secret, Key: tt.key}
				s, rec, err := st.Load(ctx, false)
				if err != nil {
					t.Fatal(err)
				}
				return jwks.NewRing(s, "", rec)
			}
			before := ring()
			j, err := Apply(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			kid := j.Items[tt.item].KID
			after := ring()
			if after.Layout != tt.layout || kid == "" || after.Set.Keys[after.ActiveIndex()].KID != kid || len(after.Set.Keys) != len(before.Set.Keys)+1 {
				t.Fatalf("after apply: layout %s, signing %s, journal kid %s, %d keys", after.Layout, after.Set.Keys[after.ActiveIndex()].KID, kid, len(after.Set.Keys))
			}
			tt.check(t, before, after, kid)
			if _, err := Apply(ctx, o); err != nil {
				t.Fatal(err)
			}
			if n := len(ring().Set.Keys); n != len(before.Set.Keys)+1 {
				t.Errorf("a re-run published another key: %d keys", n)
			}
			if err := Undo(ctx, o); err == nil || !strings.Contains(err.Error(), "already the signing key") {
				t.Errorf("undo of a promoted key: %v", err)
			}
		})
	}
}
