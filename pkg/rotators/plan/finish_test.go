package plan

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

func TestFinishSecretOnceEvenWhenRerun(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u"},
		Data: map[string][]byte{"K": []byte("old-value-123456"), "other": []byte("kept")}})
	spec := &planspec.SecretSpec{Name: "db", Generate: []planspec.GenerateKey{{Key: "K", Spec: "hex:16"}}}
	cs, _, _ := SecretChanges(spec)
	pend, err := CreatePending(ctx, kc, "ns", "pw", "r1", spec, cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := FinishOptions{Namespace: "ns", Item: "pw", Secret: "db", Pending: pend, PreviousTTL: secret.DefaultPrevious}
	for run := 1; run <= 2; run++ {
		if _, err := FinishSecret(ctx, secret.Clients{Kube: kc}, o); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		live, _ := kc.CoreV1().Secrets("ns").Get(ctx, "db", metav1.GetOptions{})
		prev, err := kc.CoreV1().Secrets("ns").Get(ctx, "db-previous", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("run %d: no previous companion: %v", run, err)
		}
		if string(live.Data["K"]) != string(pend.Values["K"]) || string(live.Data["other"]) != "kept" || string(prev.Data["K"]) != "old-value-123456" {
			t.Fatalf("run %d: live K new=%v, other %q, previous K old=%v", run, string(live.Data["K"]) == string(pend.Values["K"]), live.Data["other"], string(prev.Data["K"]) == "old-value-123456")
		}
		if _, err := kc.CoreV1().Secrets("ns").Get(ctx, "db-pending", metav1.GetOptions{}); err == nil {
			t.Fatalf("run %d: the pending companion is still there", run)
		}
	}
}
