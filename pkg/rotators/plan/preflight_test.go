package plan

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
)

func TestPreflightAndDescribe(t *testing.T) {
	// app was rotated (generation 1) and not finished: app-previous holds
	// its value from before, for a week more.
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Data: map[string][]byte{"URL": []byte("postgresql://a:b@h/d")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Annotations: map[string]string{v1alpha1.Generation: "1"}}, Data: map[string][]byte{"pw": []byte("v1")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-previous", Namespace: "ns",
			Labels:      map[string]string{v1alpha1.CompanionOf: "app"},
			Annotations: map[string]string{v1alpha1.Generation: "1", v1alpha1.ExpiresAt: time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)}},
			Data: map[string][]byte{"pw": []byte("v0")}})
	tests := []struct {
		items, want, spec string
	}{
		{items: `- {name: k, secret: {name: app, generate: [{key: pw, spec: "hex:16"}]}}`,
			want: `plan: item "k": secret/app-previous still holds the values of pw from before rotation 1 of secret/app`},
		{items: `- {name: k, secret: {name: app, generate: [{key: pw, spec: "hex:16"}]}}`, want: "set spec.replacePrevious: true in the plan"},
		{items: `- {name: k, secret: {name: app, generate: [{key: pw, spec: "hex:16"}]}}`, spec: "replacePrevious: true\n  "},
		{`- {name: pw, secret: {name: db, urlPassword: {keys: [URL]}}}`, "", ""},
		{`- {name: pw, secret: {name: nope, urlPassword: {keys: [URL]}}}`, `plan: item "pw": secret/nope not found in namespace ns`, ""},
		{`- {name: pw, secret: {name: db, urlPassword: {keys: [OTHER]}}}`, `plan: item "pw": secret/db has no key OTHER`, ""},
		{`- {name: k, secret: {name: db, generate: [{key: NEW, spec: "hex:16"}]}}`, "has no key NEW", ""},
		{`- {name: k, secret: {name: db, createKeys: true, generate: [{key: NEW, spec: "hex:16"}]}}`, "", ""},
	}
	for _, tt := range tests {
		p, err := planspec.Parse([]byte("apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPlan\nmetadata: {name: x}\nspec:\n  namespace: ns\n  " + tt.spec + "items:\n  " + tt.items + "\n"))
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
			if !strings.Contains(b.String(), "create: new values in secret/") || !strings.Contains(b.String(), "finish: values into secret/") {
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
