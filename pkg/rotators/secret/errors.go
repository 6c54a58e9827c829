package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// describeAPIError turns an API error into one line that names the object
// and the fix. It never includes request bodies (which may hold values).
func describeAPIError(err error, verb, object, namespace string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found in namespace %s: check the name and -n/--namespace", object, namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to %s %s in namespace %s (RBAC): grant the verb %q on it; the API server said: %v", verb, object, namespace, verb, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server did not accept your credentials while trying to %s %s: log in again or check --kubeconfig/--context", verb, object)
	}
	var netErr *net.OpError
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return fmt.Errorf("cannot reach the API server to %s %s: %v: check --kubeconfig/--context and that the cluster is up", verb, object, err)
	}
	return fmt.Errorf("%s %s in namespace %s: %w", verb, object, namespace, err)
}

func jsonUnmarshal(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}
