//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/satokens"
)

// The legacy service-account token Secrets a service-account key rotation
// breaks are found (and only they), and reissued by the real tokens
// controller of kube-controller-manager with the key it signs with now.
func TestServiceAccountTokensListedAndReissued(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci-bot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-bot-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "ci-bot"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createSecret(t, ns, "not-a-token", map[string]string{"password": "x"})
	var old []byte
	waitFor(t, "the tokens controller to issue ci-bot-token", 60*time.Second, func() bool {
		old = getSecret(t, ns, "ci-bot-token").Data[corev1.ServiceAccountTokenKey]
		return len(old) > 0
	})

	toks, err := satokens.List(ctx, client, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 || toks[0].Name != "ci-bot-token" || toks[0].ServiceAccount != "ci-bot" || !toks[0].Issued {
		t.Fatalf("tokens in %s: %+v, want ci-bot-token of ci-bot only", ns, toks)
	}

	// kops-rotate lists them with the cluster's kubeconfig, without a value.
	out, err := exec.Command("kops-rotate", "service-account-tokens", "--kubeconfig", os.Getenv("KUBECONFIG")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ns) || !strings.Contains(string(out), "ci-bot-token") || strings.Contains(string(out), string(old)) ||
		!strings.Contains(string(out), "service-account-tokens --reissue") {
		t.Errorf("kops-rotate service-account-tokens: %v\n%s", err, out)
	}

	// A Secret changed since it was listed is not touched.
	stale := toks[0]
	stale.ResourceVersion = "1"
	if err := satokens.Reissue(ctx, client, stale, 10*time.Second); err == nil {
		t.Error("a stale listing reissued the token")
	}
	if !bytes.Equal(getSecret(t, ns, "ci-bot-token").Data[corev1.ServiceAccountTokenKey], old) {
		t.Fatal("a refused reissue changed the token")
	}

	// Watch the Secret: the reissue removes the token, then the
	// controller issues one (the same bytes here: a legacy token has no
	// issue time, and the signing key did not change in this test).
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	w, err := client.CoreV1().Secrets(ns).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=ci-bot-token", ResourceVersion: toks[0].ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := satokens.Reissue(ctx, client, toks[0], 60*time.Second); err != nil {
		t.Fatal(err)
	}
	removed := false
	for ev := range w.ResultChan() {
		s, ok := ev.Object.(*corev1.Secret)
		if !ok {
			break
		}
		if len(s.Data[corev1.ServiceAccountTokenKey]) == 0 {
			removed = true
		} else if removed {
			break
		}
	}
	if !removed {
		t.Error("the token was never removed: nothing was reissued")
	}
	now := getSecret(t, ns, "ci-bot-token").Data[corev1.ServiceAccountTokenKey]
	if len(now) == 0 {
		t.Fatal("no token after the reissue")
	}
	// The new token is one the API server accepts for ci-bot.
	review, err := client.AuthenticationV1().TokenReviews().Create(ctx, tokenReview(now), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":ci-bot" {
		t.Errorf("the reissued token authenticates as %q (authenticated %v, error %q)", review.Status.User.Username, review.Status.Authenticated, review.Status.Error)
	}
}

func tokenReview(token []byte) *authenticationv1.TokenReview {
	return &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: string(token)}}
}
