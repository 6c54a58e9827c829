package secret

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/delivery"
	"github.com/kube-rotate/kube-rotate/pkg/model/changes"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	rotatesecret "github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// hashedToken is a --hashed token and where --deliver sends it.
type hashedToken struct {
	target delivery.Target
	token  []byte
}

// buildChanges turns the value flags into rotation changes (pkg/model/changes),
// plus the hashed token and its delivery target.
func buildChanges(o *Options) ([]rotatesecret.Change, *hashedToken, error) {
	spec, err := valueSpec(o)
	if err != nil {
		return nil, nil, err
	}
	out, err := changes.Build(spec)
	if err != nil {
		return nil, nil, err
	}
	if o.Hashed == "" && o.Deliver == "" {
		return out, nil, nil
	}
	if o.Hashed == "" || o.Deliver == "" {
		return nil, nil, errors.New("--hashed KEY and --deliver file:PATH|secret:NAME:KEY go together: the token must go somewhere, once")
	}
	t, err := parseDeliver(o.Deliver, o.clients.Namespace)
	if err != nil {
		return nil, nil, err
	}
	c, token, err := changes.Hashed(o.Hashed, o.TokenBytes, o.DeliverFormat, t.String())
	if err != nil {
		return nil, nil, fmt.Errorf("--hashed %s: %w", o.Hashed, err)
	}
	return append(out, c), &hashedToken{target: t, token: token}, nil
}

// parseDeliver reads --deliver: file:PATH or secret:NAME:KEY.
func parseDeliver(spec, namespace string) (delivery.Target, error) {
	switch {
	case strings.HasPrefix(spec, "file:"):
		t := delivery.Target{Path: strings.TrimPrefix(spec, "file:")}
		if t.Path == "" {
			return t, errors.New("--deliver file:PATH needs a path")
		}
		if err := t.Check(""); err != nil {
			return t, fmt.Errorf("--deliver: %w", err)
		}
		return t, nil
	case strings.HasPrefix(spec, "secret:"):
		name, key, ok := strings.Cut(strings.TrimPrefix(spec, "secret:"), ":")
		if !ok || name == "" || key == "" {
			return delivery.Target{}, errors.New("--deliver secret:NAME:KEY needs a Secret name and a key")
		}
		return delivery.Target{Namespace: namespace, Secret: name, Key: key}, nil
	}
	return delivery.Target{}, fmt.Errorf("--deliver %q: use file:PATH or secret:NAME:KEY", spec)
}

// pushChanges reads --push KEY=GENERATOR: the values made for keys the
// External Secrets operator pushes to the store.
func pushChanges(push []string) ([]rotatesecret.Change, error) {
	var spec changes.Spec
	seen := map[string]bool{}
	for _, p := range push {
		k, g, ok := strings.Cut(p, "=")
		if !ok || k == "" || g == "" {
			return nil, fmt.Errorf("--push %q: use KEY=GENERATOR, e.g. --push password=hex:32", p)
		}
		if seen[k] {
			return nil, fmt.Errorf("--push: key %s is given twice", k)
		}
		seen[k] = true
		gen, err := values.ParseSpec(g)
		if err != nil {
			return nil, fmt.Errorf("--push %s: %w", k, err)
		}
		spec.Generate = append(spec.Generate, changes.Generate{Key: k, Gen: gen})
	}
	if len(spec.Generate) == 0 {
		return nil, nil
	}
	return changes.Build(spec)
}
