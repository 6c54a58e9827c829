package secret

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/model/changes"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// valueSpec turns the value flags into a changes.Spec: flag syntax is
// parsed, value files and standard input are read and generator specs
// checked here, so a bad flag fails before anything is read from the
// cluster, with a message naming the flag.
func valueSpec(o *Options) (changes.Spec, error) {
	var spec changes.Spec
	if len(o.Keys) > 0 && o.Generate == "" {
		return spec, errors.New("--key needs --generate SPEC (" + values.SpecHelp + "), or use --from-file/--from-stdin for values you supply")
	}
	if o.Generate != "" && len(o.Keys) == 0 {
		return spec, errors.New("--generate needs at least one --key")
	}
	if o.Generate != "" {
		gen, err := values.ParseSpec(o.Generate)
		if err != nil {
			return spec, fmt.Errorf("--generate: %w", err)
		}
		for _, k := range o.Keys {
			spec.Generate = append(spec.Generate, changes.Generate{Key: k, Gen: gen})
		}
	}
	for _, f := range o.FromFile {
		k, path, ok := strings.Cut(f, "=")
		if !ok || k == "" || path == "" {
			return spec, fmt.Errorf("--from-file %q: use KEY=PATH", f)
		}
		v, err := readFile(path)
		if err != nil {
			return spec, fmt.Errorf("--from-file %s: %w", k, err)
		}
		spec.Values = append(spec.Values, changes.Value{Key: k, Source: "file", Value: v})
	}
	if o.FromStdin != "" {
		if o.In == nil {
			return spec, errors.New("--from-stdin: no standard input")
		}
		v, err := readAll(o.In)
		if err != nil {
			return spec, fmt.Errorf("--from-stdin %s: %w", o.FromStdin, err)
		}
		if len(v) == 0 {
			return spec, fmt.Errorf("--from-stdin %s: standard input was empty: pipe the new value in", o.FromStdin)
		}
		spec.Values = append(spec.Values, changes.Value{Key: o.FromStdin, Source: "stdin", Value: v})
	}
	for _, k := range o.URLPassword {
		if k == "" {
			return spec, errors.New("--url-password: empty key name")
		}
		spec.URLPassword = append(spec.URLPassword, k)
	}
	for _, f := range o.JSONFields {
		parts := strings.SplitN(f, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return spec, fmt.Errorf("--json-field %q: use KEY:FIELD[:SPEC], e.g. S3_KWARGS:aws_secret_access_key:password:40", f)
		}
		jf := changes.JSONField{Key: parts[0], Field: parts[1]}
		gspec := "password:32"
		if len(parts) == 3 {
			gspec = parts[2]
		}
		if gspec == "url-password" {
			jf.URLPassword = true
		} else {
			gen, err := values.ParseSpec(gspec)
			if err != nil {
				return spec, fmt.Errorf("--json-field %s:%s: %w", jf.Key, jf.Field, err)
			}
			jf.Gen = gen
		}
		spec.JSONFields = append(spec.JSONFields, jf)
	}
	for _, f := range o.FromFileField {
		kf, path, ok := strings.Cut(f, "=")
		k, field, ok2 := strings.Cut(kf, ":")
		if !ok || !ok2 || k == "" || field == "" || path == "" {
			return spec, fmt.Errorf("--from-file-field %q: use KEY:FIELD=PATH", f)
		}
		b, err := readFile(path)
		if err != nil {
			return spec, fmt.Errorf("--from-file-field %s:%s: %w", k, field, err)
		}
		spec.JSONFields = append(spec.JSONFields, changes.JSONField{Key: k, Field: field, Supplied: b})
	}
	if o.PasswordFromFile != "" && !spec.NeedsPassword() {
		return spec, errors.New("--password-from-file is for --url-password or a url-password --json-field")
	}
	if spec.NeedsPassword() {
		if o.PasswordFromFile != "" {
			b, err := readFile(o.PasswordFromFile)
			if err != nil {
				return spec, fmt.Errorf("--password-from-file: %w", err)
			}
			if len(b) == 0 {
				return spec, fmt.Errorf("--password-from-file %s is empty", o.PasswordFromFile)
			}
			spec.Password = changes.Password{Supplied: b, Source: "file"}
		} else {
			gen, err := values.ParseSpec(o.PasswordSpec)
			if err != nil {
				return spec, fmt.Errorf("--password-generate: %w", err)
			}
			spec.Password = changes.Password{Gen: gen}
		}
	}
	return spec, nil
}

// readFile reads a value file, refusing directories and huge files, and
// strips one trailing newline (as editors add it).
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("%s is larger than 1 MiB, more than a Secret can hold", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
	}
	return trimNewline(b), nil
}

func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, errors.New("standard input is larger than 1 MiB, more than a Secret can hold")
	}
	return trimNewline(b), nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
