package secret

import (
	"errors"
	"fmt"

	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/rotation"
	"github.com/kube-rotate/kube-rotate/pkg/values"
)

// fieldEdit is one JSON field change inside a key's value.
type fieldEdit struct {
	field  string
	source string
	value  func(old string) (string, error)
}

// buildChanges turns the value flags into rotation changes. Files and
// standard input are read here, so a bad path fails before anything is read
// from the cluster. Values are generated here too, once: one password is
// shared by every URL that gets one.
func buildChanges(o *Options) ([]rotation.Change, *delivery, error) {
	var changes []rotation.Change
	if len(o.Keys) > 0 && o.Generate == "" {
		return nil, nil, errors.New("--key needs --generate SPEC (" + values.SpecHelp + "), or use --from-file/--from-stdin for values you supply")
	}
	if o.Generate != "" && len(o.Keys) == 0 {
		return nil, nil, errors.New("--generate needs at least one --key")
	}
	if o.Generate != "" {
		gen, err := values.ParseSpec(o.Generate)
		if err != nil {
			return nil, nil, fmt.Errorf("--generate: %w", err)
		}
		for _, k := range o.Keys {
			v, err := gen.Generate()
			if err != nil {
				return nil, nil, err
			}
			c := fixed(k, gen.String(), v)
			c.Generated = true
			changes = append(changes, c)
		}
	}
	for _, spec := range o.FromFile {
		k, path, ok := strings.Cut(spec, "=")
		if !ok || k == "" || path == "" {
			return nil, nil, fmt.Errorf("--from-file %q: use KEY=PATH", spec)
		}
		v, err := readFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--from-file %s: %w", k, err)
		}
		changes = append(changes, fixed(k, "file", v))
	}
	if o.FromStdin != "" {
		if o.In == nil {
			return nil, nil, errors.New("--from-stdin: no standard input")
		}
		v, err := readAll(o.In)
		if err != nil {
			return nil, nil, fmt.Errorf("--from-stdin %s: %w", o.FromStdin, err)
		}
		if len(v) == 0 {
			return nil, nil, fmt.Errorf("--from-stdin %s: standard input was empty: pipe the new value in", o.FromStdin)
		}
		changes = append(changes, fixed(o.FromStdin, "stdin", v))
	}

	// One password for every URL (and url-password JSON field).
	var password string
	passwordSource := ""
	needPassword := len(o.URLPassword) > 0
	for _, jf := range o.JSONFields {
		if strings.HasSuffix(jf, ":url-password") {
			needPassword = true
		}
	}
	if o.PasswordFromFile != "" && !needPassword {
		return nil, nil, errors.New("--password-from-file is for --url-password or a url-password --json-field")
	}
	if needPassword {
		if o.PasswordFromFile != "" {
			b, err := readFile(o.PasswordFromFile)
			if err != nil {
				return nil, nil, fmt.Errorf("--password-from-file: %w", err)
			}
			if len(b) == 0 {
				return nil, nil, fmt.Errorf("--password-from-file %s is empty", o.PasswordFromFile)
			}
			password, passwordSource = string(b), "url-password (file)"
		} else {
			gen, err := values.ParseSpec(o.PasswordSpec)
			if err != nil {
				return nil, nil, fmt.Errorf("--password-generate: %w", err)
			}
			b, err := gen.Generate()
			if err != nil {
				return nil, nil, err
			}
			password, passwordSource = string(b), "url-password ("+gen.String()+")"
		}
	}
	for _, k := range o.URLPassword {
		if k == "" {
			return nil, nil, errors.New("--url-password: empty key name")
		}
		changes = append(changes, rotation.Change{Key: k, Source: passwordSource, Generated: o.PasswordFromFile == "", Make: func(old []byte, exists bool) ([]byte, error) {
			if !exists {
				return nil, errors.New("is missing: --url-password changes the password inside an existing URL")
			}
			s, err := values.ReplaceURLPassword(string(old), password)
			return []byte(s), err
		}})
	}

	// JSON fields, grouped per key so several fields of one value compose.
	edits := map[string][]fieldEdit{}
	var order []string
	addEdit := func(k string, e fieldEdit) {
		if _, ok := edits[k]; !ok {
			order = append(order, k)
		}
		edits[k] = append(edits[k], e)
	}
	for _, spec := range o.JSONFields {
		parts := strings.SplitN(spec, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return nil, nil, fmt.Errorf("--json-field %q: use KEY:FIELD[:SPEC], e.g. S3_KWARGS:aws_secret_access_key:password:40", spec)
		}
		k, field, gspec := parts[0], parts[1], "password:32"
		if len(parts) == 3 {
			gspec = parts[2]
		}
		if gspec == "url-password" {
			addEdit(k, fieldEdit{field: field, source: field + " url-password", value: func(old string) (string, error) {
				return values.ReplaceURLPassword(old, password)
			}})
			continue
		}
		gen, err := values.ParseSpec(gspec)
		if err != nil {
			return nil, nil, fmt.Errorf("--json-field %s:%s: %w", k, field, err)
		}
		v, err := gen.Generate()
		if err != nil {
			return nil, nil, err
		}
		addEdit(k, fieldEdit{field: field, source: field + " " + gen.String(), value: func(string) (string, error) { return string(v), nil }})
	}
	for _, spec := range o.FromFileField {
		kf, path, ok := strings.Cut(spec, "=")
		k, field, ok2 := strings.Cut(kf, ":")
		if !ok || !ok2 || k == "" || field == "" || path == "" {
			return nil, nil, fmt.Errorf("--from-file-field %q: use KEY:FIELD=PATH", spec)
		}
		b, err := readFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--from-file-field %s:%s: %w", k, field, err)
		}
		addEdit(k, fieldEdit{field: field, source: field + " file", value: func(string) (string, error) { return string(b), nil }})
	}
	for _, k := range order {
		fes := edits[k]
		var sources []string
		for _, e := range fes {
			sources = append(sources, e.source)
		}
		changes = append(changes, rotation.Change{Key: k, Source: "json-field " + strings.Join(sources, ", "), Generated: true, Make: func(old []byte, exists bool) ([]byte, error) {
			if !exists {
				return nil, errors.New("is missing: --json-field changes a field of an existing JSON value")
			}
			doc := old
			for _, e := range fes {
				cur, err := values.JSONStringField(doc, e.field)
				if err != nil {
					return nil, err
				}
				nv, err := e.value(cur)
				if err != nil {
					return nil, fmt.Errorf("field %q %w", e.field, err)
				}
				if doc, err = values.SetJSONStringField(doc, e.field, nv); err != nil {
					return nil, err
				}
			}
			return doc, nil
		}})
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
		c := fixed(o.Hashed, "sha256 of a token delivered to "+d.where(), pair.Hash())
		c.Generated = true
		changes = append(changes, c)
	}
	return changes, d, nil
}

// fixed is a change to a value known in advance.
func fixed(key, source string, v []byte) rotation.Change {
	return rotation.Change{Key: key, Source: source, Make: func([]byte, bool) ([]byte, error) { return v, nil }}
}
