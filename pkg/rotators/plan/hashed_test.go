package plan

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// A hashed item stores sha256(token) in its Secret and hands the token,
// in its format, to the delivery Secret, never into the hashed one.
func TestApplyHashedItem(t *testing.T) {
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: legacy}
spec:
  namespace: ns
  items:
  - name: legacy-key
    secret:
      name: diracx-secrets
      hashed: {key: HASHED, deliver: "secret:legacy-token:token", format: "diracx:legacy:{{.Base64URL}}"}
`
	p, err := planspec.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	kc := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-secrets", Namespace: "ns", UID: "u"},
		Data: map[string][]byte{"HASHED": []byte("old-hash")}})
	ctx := context.Background()
	if _, err := Apply(ctx, Options{Plan: p, Clients: secret.Clients{Kube: kc}}); err != nil {
		t.Fatal(err)
	}
	tok, err := kc.CoreV1().Secrets("ns").Get(ctx, "legacy-token", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no token delivered: %v", err)
	}
	token := string(tok.Data["token"])
	if !strings.HasPrefix(token, "diracx:legacy:") {
		t.Fatalf("token format: %d chars", len(token))
	}
	s, _ := kc.CoreV1().Secrets("ns").Get(ctx, "diracx-secrets", metav1.GetOptions{})
	raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(token, "diracx:legacy:"))
	if err != nil || len(raw) != 32 {
		t.Fatalf("token is not 32 bytes of base64url: %v", err)
	}
	sum := sha256.Sum256(raw)
	if got := string(s.Data["HASHED"]); got != hex.EncodeToString(sum[:]) {
		t.Error("the stored hash is not the sha256 of the delivered token")
	}
	for k := range s.Data {
		if strings.HasPrefix(k, TokenKeyPrefix) {
			t.Errorf("the token leaked into the hashed Secret under %s", k)
		}
	}
	if string(s.Data["HASHED"]) == "old-hash" {
		t.Error("the hash did not change")
	}
}
