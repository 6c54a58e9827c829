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
)

func TestPreflightAndDescribe(t *testing.T) {
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Data: map[string][]byte{"URL": []byte("postgresql://a:b@h/d")}})
	tests := []struct {
		items, want string
	}{
		{`- {name: pw, secret: {name: db, urlPassword: {keys: [URL]}}}`, ""},
		{`- {name: pw, secret: {name: nope, urlPassword: {keys: [URL]}}}`, `plan: item "pw": secret/nope not found in namespace ns`},
		{`- {name: pw, secret: {name: db, urlPassword: {keys: [OTHER]}}}`, `plan: item "pw": secret/db has no key OTHER`},
		{`- {name: k, secret: {name: db, generate: [{key: NEW, spec: "hex:16"}]}}`, "has no key NEW"},
		{`- {name: k, secret: {name: db, createKeys: true, generate: [{key: NEW, spec: "hex:16"}]}}`, ""},
	}
	for _, tt := range tests {
		p, err := planspec.Parse([]byte("apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPlan\nmetadata: {name: x}\nspec:\n  namespace: ns\n  items:\n  " + tt.items + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		err = Preflight(context.Background(), kc, p, "default")
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.items, err, tt.want)
		}
		if tt.want == "" {
			var b bytes.Buffer
			if err := Describe(context.Background(), &b, kc, p, "default"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "create: new values in secret/db-pending") || !strings.Contains(b.String(), "finish: values into secret/db") {
				t.Errorf("describe:\n%s", b.String())
			}
		}
	}
	if acts := kc.Actions(); len(acts) == 0 {
		t.Fatal("no reads")
	}
	for _, a := range kc.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("preflight or describe wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
