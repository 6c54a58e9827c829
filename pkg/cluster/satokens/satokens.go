// Package satokens finds the legacy service-account token Secrets of a
// cluster (type kubernetes.io/service-account-token) and reissues them.
//
// Their tokens are signed with the service-account key: when a kOps
// service-account keyset rotation distrusts the old key, every token it
// signed stops working. Kubernetes' tokens controller
// (kubernetes/kubernetes pkg/controller/serviceaccount/tokens_controller.go,
// secretUpdateNeeded: "needsToken := len(tokenData) == 0") fills in a new
// token, signed with the current key, for such a Secret whose `token` key is
// empty: Reissue removes that key and waits for the controller. Token values
// are never printed, logged or returned.
package satokens

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Token is one legacy service-account token Secret: where it is and which
// ServiceAccount it belongs to, never its value.
type Token struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	ServiceAccount string `json:"serviceAccount"`
	// Issued is false while the tokens controller has not filled it in.
	Issued bool `json:"issued"`
	// ResourceVersion is what Reissue's precondition is checked against.
	ResourceVersion string `json:"-"`
}

// Ref is secret/NAME -n NAMESPACE, as kubectl names it.
func (t Token) Ref() string { return "secret/" + t.Name + " -n " + t.Namespace }

// List returns every legacy service-account token Secret in the cluster
// (namespace "" for all), sorted, listed in pages of 500 with a field
// selector on the type so that no other Secret is read.
func List(ctx context.Context, kc kubernetes.Interface, namespace string) ([]Token, error) {
	var out []Token
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken), Limit: 500}
	for {
		list, err := kc.CoreV1().Secrets(namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing service-account token Secrets: %w", err)
		}
		for _, s := range list.Items {
			out = append(out, Token{Namespace: s.Namespace, Name: s.Name, ServiceAccount: s.Annotations[corev1.ServiceAccountNameKey],
				Issued: len(s.Data[corev1.ServiceAccountTokenKey]) > 0, ResourceVersion: s.ResourceVersion})
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Reissue removes the token of t (with t.ResourceVersion as precondition:
// a Secret changed since List is not touched) and waits up to timeout for
// the tokens controller to issue a new one. A legacy token has no issue
// time: issued again with the same key it is the same token, so what
// Reissue waits for is a token issued after the removal, not a different
// one.
func Reissue(ctx context.Context, kc kubernetes.Interface, t Token, timeout time.Duration) error {
	secrets := kc.CoreV1().Secrets(t.Namespace)
	cur, err := secrets.Get(ctx, t.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", t.Ref(), err)
	}
	if cur.ResourceVersion != t.ResourceVersion {
		return fmt.Errorf("%s changed since it was listed: nothing was done; list the tokens again", t.Ref())
	}
	if len(cur.Data[corev1.ServiceAccountTokenKey]) > 0 {
		patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/resourceVersion","value":%q},{"op":"remove","path":"/data/token"}]`, t.ResourceVersion)
		if _, err := secrets.Patch(ctx, t.Name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			if apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
				return fmt.Errorf("%s changed while it was being reissued: nothing was done; list the tokens again", t.Ref())
			}
			return fmt.Errorf("%s: removing the old token: %w", t.Ref(), err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(s.Data[corev1.ServiceAccountTokenKey]) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("%s: the tokens controller issued no new token within %s (is kube-controller-manager running with --service-account-private-key-file?): %w", t.Ref(), timeout, err)
	}
	return nil
}
