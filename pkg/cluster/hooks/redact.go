package hooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Redacted replaces every value Redact finds.
const Redacted = "[REDACTED]"

// minEncoded is the shortest value whose encoded forms are redacted too:
// the encodings of shorter values are too common in ordinary text.
const minEncoded = 4

// Redact replaces in s each of values with [REDACTED]: the raw value and,
// for values of 4 bytes or more, its base64 (standard and URL alphabets,
// padded or not), url.QueryEscape, url.PathEscape and JSON string forms,
// and the value without surrounding white space. Longer forms are
// replaced first, so a value that contains another leaves nothing behind.
func Redact(s string, values ...[]byte) string {
	return newRedactor(values).replace(s)
}

type redactor struct {
	rep *strings.Replacer
	// longest is the length of the longest form.
	longest int
	forms   []string
}

func newRedactor(values [][]byte) *redactor {
	seen := map[string]bool{}
	var forms []string
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	for _, v := range values {
		if len(v) == 0 {
			continue
		}
		add(string(v))
		if len(v) < minEncoded {
			continue
		}
		variants := [][]byte{v}
		if t := bytes.TrimSpace(v); len(t) >= minEncoded && len(t) != len(v) {
			add(string(t))
			variants = append(variants, t)
		}
		for _, w := range variants {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				add(enc.EncodeToString(w))
			}
			add(url.QueryEscape(string(w)))
			add(url.PathEscape(string(w)))
			for _, html := range []bool{true, false} {
				add(jsonString(w, html))
			}
		}
	}
	// Longest first: strings.Replacer tries the old strings in argument
	// order at each position.
	sort.Slice(forms, func(i, j int) bool {
		if len(forms[i]) != len(forms[j]) {
			return len(forms[i]) > len(forms[j])
		}
		return forms[i] < forms[j]
	})
	r := &redactor{forms: forms}
	args := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		args = append(args, f, Redacted)
		if len(f) > r.longest {
			r.longest = len(f)
		}
	}
	if len(args) > 0 {
		r.rep = strings.NewReplacer(args...)
	}
	return r
}

// jsonString is v as it appears inside a JSON string (without quotes).
func jsonString(v []byte, escapeHTML bool) string {
	if !utf8.Valid(v) {
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(string(v)); err != nil {
		return ""
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
}

func (r *redactor) replace(s string) string {
	if r.rep == nil || s == "" {
		return s
	}
	return r.rep.Replace(s)
}

// tail redacts the tail of an output and keeps its last limit bytes. b is
// the last bytes of the output; truncated says that earlier bytes were
// dropped, so b may start in the middle of a value: that partial value is
// dropped too.
func (r *redactor) tail(b []byte, truncated bool, limit int) string {
	s := string(b)
	if truncated && r.longest > 1 {
		// A value cut by the truncation ends before longest-1; a whole
		// value that starts before that point is kept (and redacted).
		cut := min(r.longest-1, len(s))
		for moved := true; moved; {
			moved = false
			for _, f := range r.forms {
				for from := 0; from < cut; {
					i := strings.Index(s[from:], f)
					if i < 0 || from+i >= cut {
						break
					}
					if start := from + i; start+len(f) > cut {
						cut, moved = start, true
						break
					}
					from += i + 1
				}
			}
		}
		s = s[cut:]
	}
	s = r.replace(s)
	if len(s) > limit {
		cut := len(s) - limit
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		s = s[cut:]
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max   int
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// bytes returns the kept tail and whether earlier output was dropped.
func (t *tailBuffer) bytes() ([]byte, bool) {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return b, t.total > int64(len(b))
}

// newTail is a buffer big enough for the last limit bytes after redaction.
func (r *redactor) newTail(limit int) *tailBuffer {
	return &tailBuffer{max: limit + r.longest}
}
