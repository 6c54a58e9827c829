package kube

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Clients are the typed and dynamic clients of one kubeconfig context.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Namespace is -n/--namespace, else the context's namespace, else "default".
	Namespace string
	// ExplicitNamespace is true when -n/--namespace was given.
	ExplicitNamespace bool
	// Target is the cluster the clients reach (commands say it before
	// they write, and records carry it).
	Target Target
}

// NewClients builds clients from kubectl's factory.
func NewClients(f cmdutil.Factory) (*Clients, error) {
	ns, explicit, err := f.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	kc, err := f.KubernetesClientSet()
	if err != nil {
		return nil, fmt.Errorf("building a client from the kubeconfig: %w", err)
	}
	dc, err := f.DynamicClient()
	if err != nil {
		return nil, fmt.Errorf("building a client from the kubeconfig: %w", err)
	}
	// A cluster name kube-rotate would not put in an id does not stop a
	// rotation: the record keeps what is known.
	t, _ := TargetFor(f, "")
	return &Clients{Kube: kc, Dynamic: dc, Namespace: ns, ExplicitNamespace: explicit, Target: t}, nil
}

// WhoAmI returns the user name the API server sees (as `kubectl auth
// whoami`), or "" when it cannot tell.
func WhoAmI(ctx context.Context, c kubernetes.Interface) string {
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || r == nil {
		return ""
	}
	return r.Status.UserInfo.Username
}
