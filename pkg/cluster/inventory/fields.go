package inventory

import "strings"

// scanFields is dataFields in one walk over a FieldsV1 set, such as
// {"f:data":{".":{},"f:password":{}},"f:metadata":{"f:labels":{...}},"f:type":{}}:
// whether a top-level member is f:data or f:stringData, and the names of
// the members under those that start with "f:". ok is false for what the
// walk leaves to encoding/json: malformed JSON, a string with an escape, a
// top-level member repeated (encoding/json keeps the last), or f:data or
// f:stringData not an object.
func scanFields(raw []byte) (writes bool, keys []string, ok bool) {
	sc := fieldsScanner{b: raw}
	if !sc.byte('{') {
		return false, nil, false
	}
	var seenData, seenStringData bool
	if sc.byte('}') {
		return false, nil, sc.end()
	}
	for {
		name, ok := sc.str()
		if !ok || !sc.byte(':') {
			return false, nil, false
		}
		switch name {
		case "f:data", "f:stringData":
			if (name == "f:data" && seenData) || (name == "f:stringData" && seenStringData) {
				return false, nil, false
			}
			seenData = seenData || name == "f:data"
			seenStringData = seenStringData || name == "f:stringData"
			writes = true
			if keys, ok = sc.memberNames(keys); !ok {
				return false, nil, false
			}
		default:
			if !sc.skipValue(0) {
				return false, nil, false
			}
		}
		if sc.byte('}') {
			return writes, keys, sc.end()
		}
		if !sc.byte(',') {
			return false, nil, false
		}
	}
}

// fieldsScanner walks JSON bytes; every method skips leading white space.
type fieldsScanner struct {
	b []byte
	i int
}

// maxDepth bounds skipValue's recursion (FieldsV1 sets are shallow).
const maxDepth = 64

func (s *fieldsScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (s *fieldsScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *fieldsScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes (what
// encoding/json would decode differently, an escape or a byte that is not
// ASCII, is left to it; control characters are refused, as JSON does).
func (s *fieldsScanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
		s.i++
	}
	return "", false
}

// memberNames reads an object and appends the names of its members that
// start with "f:", without the prefix.
func (s *fieldsScanner) memberNames(keys []string) ([]string, bool) {
	if !s.byte('{') {
		return nil, false
	}
	if s.byte('}') {
		return keys, true
	}
	for {
		name, ok := s.str()
		if !ok || !s.byte(':') || !s.skipValue(1) {
			return nil, false
		}
		if rest, ok := strings.CutPrefix(name, "f:"); ok {
			keys = append(keys, rest)
		}
		if s.byte('}') {
			return keys, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// skipValue skips one JSON value.
func (s *fieldsScanner) skipValue(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		if s.byte('}') {
			return true
		}
		for {
			if _, ok := s.str(); !ok || !s.byte(':') || !s.skipValue(depth+1) {
				return false
			}
			if s.byte('}') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case '[':
		s.i++
		if s.byte(']') {
			return true
		}
		for {
			if !s.skipValue(depth + 1) {
				return false
			}
			if s.byte(']') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case '"':
		_, ok := s.str()
		return ok
	default:
		// A literal or a number: FieldsV1 sets hold none; leave them to
		// encoding/json.
		return false
	}
}
