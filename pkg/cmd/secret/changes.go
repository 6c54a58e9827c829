package secret

import (
	"errors"
	"fmt"
	"github.com/kube-rotate/kube-rotate/pkg/changes"

	"github.com/kube-rotate/kube-rotate/pkg/rotation"
	"github.com/kube-rotate/kube-rotate/pkg/values"
)

// buildChanges turns the value flags into rotation changes (pkg/changes),
// plus the hashed token pair and its delivery.
func buildChanges(o *Options) ([]rotation.Change, *delivery, error) {
	out, err := changes.Build(changes.Spec{Keys: o.Keys, Generate: o.Generate, FromFile: o.FromFile, FromStdin: o.FromStdin, Stdin: o.In,
		URLPassword: o.URLPassword, PasswordSpec: o.PasswordSpec, PasswordFromFile: o.PasswordFromFile,
		JSONFields: o.JSONFields, FromFileField: o.FromFileField})
	if err != nil {
		return nil, nil, err
	}
	var d *delivery
	if o.Hashed != "" || o.Deliver != "" {
		if o.Hashed == "" || o.Deliver == "" {
			return nil, nil, errors.New("--hashed KEY and --deliver file:PATH|secret:NAME:KEY go together: the token must go somewhere, once")
		}
		var err error
		if d, err = parseDelivery(o.Deliver, o.DeliverFormat); err != nil {
			return nil, nil, err
		}
		pair, err := values.NewHashedPair(o.TokenBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("--token-bytes: %w", err)
		}
		if d.plaintext, err = pair.Plaintext(d.format); err != nil {
			return nil, nil, err
		}
		c := changes.Fixed(o.Hashed, "sha256 of a token delivered to "+d.where(), pair.Hash())
		c.Generated = true
		out = append(out, c)
	}
	return out, d, nil
}
