// Package jwks manages the lifecycle of signing keys in a JSON Web Key Set
// (RFC 7517) over github.com/lestrrat-go/jwx/v3: add a key that verifiers
// learn before anyone signs with it (next), promote it to the signing key
// (active), keep the previous one for verification (retiring) until the
// overlap has passed, then delete it.
//
// It reads and writes the layouts real systems use (DiracX, Slurm, generic)
// and keeps keys it does not touch exactly as they were: every key is held
// as its original JSON bytes; jwx validates and generates keys, but never
// re-encodes an existing one.
package jwks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// Key is one key of a set: its original JSON and its parsed form.
type Key struct {
	// Raw is the key's JSON exactly as read (or as written for a new key).
	Raw json.RawMessage
	// JWK is the parsed key (private material included, never printed).
	JWK jwk.Key
	// KID is the key ID.
	KID string
}

// Set is a JSON Web Key Set held as raw JSON.
type Set struct {
	// Keys in document order.
	Keys []*Key
	// doc is the original document: its other top-level members and
	// formatting are kept when the set is written back.
	doc []byte
	// How the original "keys" array is laid out: the text after "[",
	// between two keys, and before "]".
	open, sep, close string
}

// Parse reads a JWKS document. Every key must parse with jwx and carry a
// unique kid. Errors name the key by index and kid and never quote key
// material.
func Parse(data []byte) (*Set, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Set{doc: []byte(`{"keys":[]}`), sep: ","}, nil
	}
	raw, ok, err := values.JSONMember(data, "keys")
	if err != nil {
		return nil, fmt.Errorf("the key set %w", err)
	}
	if !ok {
		return nil, errors.New(`the key set has no "keys" member: it is not a JWKS`)
	}
	items, open, sep, closing, err := splitArray(raw)
	if err != nil {
		return nil, err
	}
	s := &Set{doc: append([]byte{}, data...), open: open, sep: sep, close: closing}
	seen := map[string]int{}
	for i, item := range items {
		k, err := parseKey(item, i)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[k.KID]; dup {
			return nil, fmt.Errorf("keys %d and %d have the same kid %q: kids must be unique", j, i, k.KID)
		}
		seen[k.KID] = i
		s.Keys = append(s.Keys, k)
	}
	return s, nil
}

func parseKey(item json.RawMessage, i int) (*Key, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(item, &probe); err != nil {
		return nil, fmt.Errorf("key %d is not a JSON object", i)
	}
	var kid string
	if raw, ok := probe["kid"]; ok {
		if err := json.Unmarshal(raw, &kid); err != nil {
			return nil, fmt.Errorf("key %d: kid is not a string", i)
		}
	}
	key, err := jwk.ParseKey(item)
	if c := canonical(item); err != nil && c != nil {
		// Slurm reads kty and alg without case; jwx does not.
		key, err = jwk.ParseKey(c)
	}
	if err != nil {
		return nil, fmt.Errorf("key %d (kid %q) is not a valid JWK: %s", i, kid, jwxReason(err))
	}
	if kid == "" {
		return nil, fmt.Errorf("key %d has no kid: every key needs one to be selected by verifiers", i)
	}
	return &Key{Raw: append(json.RawMessage{}, item...), JWK: key, KID: kid}, nil
}

// jwxReason keeps the first line of a jwx error; jwx errors name members,
// not values.
func jwxReason(err error) string {
	msg := err.Error()
	if i := bytes.IndexByte([]byte(msg), '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// Find returns the index of kid, or -1.
func (s *Set) Find(kid string) int {
	for i, k := range s.Keys {
		if k.KID == kid {
			return i
		}
	}
	return -1
}

// splitArray returns the items of a JSON array with the text around them.
func splitArray(raw []byte) (items []json.RawMessage, open, sep, closing string, err error) {
	notArray := errors.New(`the key set's "keys" member is not an array`)
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, "", "", "", notArray
	}
	var starts, ends []int
	for dec.More() {
		before := int(dec.InputOffset())
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return nil, "", "", "", notArray
		}
		end := int(dec.InputOffset())
		start := before + bytes.Index(raw[before:end], bytes.TrimSpace(item)[:1])
		starts, ends = append(starts, start), append(ends, end)
		items = append(items, raw[start:end])
	}
	if len(items) == 0 {
		return nil, "", ",", "", nil
	}
	open = string(raw[1:starts[0]])
	closing = string(raw[ends[len(ends)-1] : len(raw)-1])
	if len(items) > 1 {
		sep = string(raw[ends[0]:starts[1]])
	} else if strings.Contains(open, "\n") {
		sep = "," + open
	} else {
		sep = ", "
	}
	return items, open, sep, closing, nil
}

// Marshal writes the set back: the original document with its "keys"
// array rebuilt from the keys' raw JSON in the array's original layout. An
// untouched set is written back byte for byte.
func (s *Set) Marshal() ([]byte, error) {
	var arr bytes.Buffer
	arr.WriteByte('[')
	if len(s.Keys) > 0 {
		arr.WriteString(s.open)
	}
	for i, k := range s.Keys {
		if i > 0 {
			arr.WriteString(s.sep)
		}
		arr.Write(k.Raw)
	}
	if len(s.Keys) > 0 {
		arr.WriteString(s.close)
	}
	arr.WriteByte(']')
	return values.SetJSONMember(s.doc, "keys", arr.Bytes())
}

// styled formats a new key's compact JSON like the keys around it:
// indented one level deeper than the array when the document is indented,
// with Python's ", " and ": " separators when the document uses them.
func (s *Set) styled(compact []byte) []byte {
	if i := strings.LastIndex(s.open, "\n"); i >= 0 {
		prefix := s.open[i+1:]
		var out bytes.Buffer
		if json.Indent(&out, compact, prefix, detectIndent(s.doc)) == nil {
			return out.Bytes()
		}
	}
	if strings.Contains(s.sep, ", ") || bytes.Contains(s.doc, []byte(`": `)) {
		return spaced(compact)
	}
	return compact
}

// spaced adds a space after every ':' and ',' outside strings, as Python's
// json.dumps does by default.
func spaced(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// detectIndent returns the indentation unit of an indented document.
func detectIndent(doc []byte) string {
	for _, line := range bytes.Split(doc, []byte("\n"))[1:] {
		trimmed := bytes.TrimLeft(line, " \t")
		if n := len(line) - len(trimmed); n > 0 && len(trimmed) > 0 {
			return string(line[:n])
		}
	}
	return "  "
}

// setMember replaces one member of a key's JSON, keeping every other byte.
func setMember(raw json.RawMessage, field string, value []byte) (json.RawMessage, error) {
	return values.SetJSONMember(raw, field, value)
}
