package plan

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

func TestUndoRestoresFinishedAndDropsPending(t *testing.T) {
	ctx := context.Background()
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db}
spec:
  namespace: ns
  items:
  - name: a
    secret: {name: sa, generate: [{key: K, spec: "hex:16"}]}
  - name: b
    after: [a]
    secret: {name: sb, generate: [{key: K, spec: "hex:16"}]}
    hooks:
      set: {exec: {command: ["false"]}}
`
	p, err := planspec.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sa", Namespace: "ns", UID: "a"}, Data: map[string][]byte{"K": []byte("old-a-0123456789")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sb", Namespace: "ns", UID: "b"}, Data: map[string][]byte{"K": []byte("old-b-0123456789")}},
	)
	o := Options{Plan: p, Clients: secret.Clients{Kube: kc}}
	if _, err := Apply(ctx, o); err == nil {
		t.Fatal("the set hook `false` did not fail the run")
	}
	get := func(name string) (*corev1.Secret, error) {
		return kc.CoreV1().Secrets("ns").Get(ctx, name, metav1.GetOptions{})
	}
	if s, _ := get("sa"); string(s.Data["K"]) == "old-a-0123456789" {
		t.Fatal("item a did not finish before b failed")
	}
	var progress strings.Builder
	o.Progress = &progress
	if err := Undo(ctx, o); err != nil {
		t.Fatal(err)
	}
	if s, _ := get("sa"); string(s.Data["K"]) != "old-a-0123456789" {
		t.Error("item a's old value is not back")
	}
	if s, _ := get("sb"); string(s.Data["K"]) != "old-b-0123456789" {
		t.Error("item b's Secret changed")
	}
	if _, err := get("sb-pending"); err == nil {
		t.Error("item b's pending values are left")
	}
	if _, err := kc.CoreV1().ConfigMaps("ns").Get(ctx, JournalName("db"), metav1.GetOptions{}); err == nil {
		t.Error("the journal is left")
	}
	if !strings.Contains(progress.String(), "item b: pending values deleted") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if err := Undo(ctx, o); err == nil || !strings.Contains(err.Error(), "no run to undo") {
		t.Errorf("undo twice: %v", err)
	}
}
