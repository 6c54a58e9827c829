// Package args parses the object arguments of kubectl-style verbs.
package args

import (
	"fmt"
	"strings"
)

// SecretName accepts `secret/NAME`, `secrets/NAME` or `secret NAME`, as
// kubectl does, and returns NAME.
func SecretName(verb string, args []string) (string, error) {
	usage := fmt.Sprintf("use `kubectl rotate %s secret/NAME`", verb)
	switch len(args) {
	case 1:
		kind, name, ok := strings.Cut(args[0], "/")
		if !ok {
			return "", fmt.Errorf("%q names no kind: %s", args[0], usage)
		}
		if !isSecret(kind) || name == "" {
			return "", fmt.Errorf("%q is not a Secret: %s", args[0], usage)
		}
		return name, nil
	case 2:
		if !isSecret(args[0]) || args[1] == "" || strings.Contains(args[1], "/") {
			return "", fmt.Errorf("%q is not a Secret: %s", strings.Join(args, " "), usage)
		}
		return args[1], nil
	}
	return "", fmt.Errorf("expected one Secret: %s", usage)
}

func isSecret(kind string) bool {
	switch strings.ToLower(kind) {
	case "secret", "secrets":
		return true
	}
	return false
}
