package values

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// jsonField locates the value of a top-level field of a JSON object and
// returns the byte offsets of that value in doc.
func jsonField(doc []byte, field string) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return 0, 0, fmt.Errorf("is not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return 0, 0, fmt.Errorf("is not a JSON object")
	}
	start, end = -1, -1
	var names []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return 0, 0, fmt.Errorf("is not valid JSON")
		}
		name, _ := kt.(string)
		before := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, fmt.Errorf("is not valid JSON")
		}
		after := dec.InputOffset()
		names = append(names, name)
		if name != field {
			continue
		}
		if start >= 0 {
			return 0, 0, fmt.Errorf("has the field %q twice", field)
		}
		// doc[before:after] is optional space, the colon, space, the value.
		lead := bytes.IndexFunc(doc[before:after], func(r rune) bool {
			return r != ':' && r != ' ' && r != '\t' && r != '\n' && r != '\r'
		})
		start, end = int(before)+lead, int(after)
	}
	if _, err := dec.Token(); err != nil {
		return 0, 0, fmt.Errorf("is not valid JSON")
	}
	if _, err := dec.Token(); err == nil {
		return 0, 0, fmt.Errorf("has data after the JSON object")
	}
	if start < 0 {
		return 0, 0, fmt.Errorf("has no field %q (fields: %s)", field, strings.Join(names, ", "))
	}
	return start, end, nil
}

// JSONStringField returns the string value of a top-level field.
func JSONStringField(doc []byte, field string) (string, error) {
	start, end, err := jsonField(doc, field)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(doc[start:end], &s); err != nil {
		return "", fmt.Errorf("field %q is not a string", field)
	}
	return s, nil
}

// SetJSONStringField returns doc with the top-level field set to the
// string value. Only that value's bytes change: other fields, their order
// and the document's spacing are kept.
func SetJSONStringField(doc []byte, field, value string) ([]byte, error) {
	start, end, err := jsonField(doc, field)
	if err != nil {
		return nil, err
	}
	var current string
	if err := json.Unmarshal(doc[start:end], &current); err != nil {
		return nil, fmt.Errorf("field %q is not a string", field)
	}
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(value); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(doc)+len(value))
	out = append(out, doc[:start]...)
	out = append(out, bytes.TrimRight(enc.Bytes(), "\n")...)
	out = append(out, doc[end:]...)
	return out, nil
}

// JSONMember returns the raw bytes of a top-level member's value, and
// whether the member exists.
func JSONMember(doc []byte, field string) ([]byte, bool, error) {
	start, end, err := jsonField(doc, field)
	if err != nil {
		if strings.Contains(err.Error(), "has no field") {
			return nil, false, nil
		}
		return nil, false, err
	}
	return doc[start:end], true, nil
}

// SetJSONMember returns doc with a top-level member's value replaced by
// raw (valid JSON), or the member appended when absent. Every other byte of
// doc is kept.
func SetJSONMember(doc []byte, field string, raw []byte) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("new value of %q is not valid JSON", field)
	}
	start, end, err := jsonField(doc, field)
	if err == nil {
		out := make([]byte, 0, len(doc)+len(raw))
		out = append(out, doc[:start]...)
		out = append(out, raw...)
		return append(out, doc[end:]...), nil
	}
	if !strings.Contains(err.Error(), "has no field") {
		return nil, err
	}
	// Append before the closing brace.
	closing := bytes.LastIndexByte(doc, '}')
	name, _ := json.Marshal(field)
	member := append(append(append([]byte{}, name...), ':'), raw...)
	// Insert after the last member (or the opening brace), keeping the
	// whitespace before the closing brace.
	at := len(bytes.TrimRight(doc[:closing], " \t\r\n"))
	out := make([]byte, 0, len(doc)+len(member)+2)
	out = append(out, doc[:at]...)
	if doc[at-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, doc[at:]...), nil
}

// DeleteJSONMember returns doc without a top-level member, and whether it
// was there. The member's separating comma goes with it; every other byte
// of doc is kept.
func DeleteJSONMember(doc []byte, field string) ([]byte, bool, error) {
	start, end, err := jsonField(doc, field)
	if err != nil {
		if strings.Contains(err.Error(), "has no field") {
			return doc, false, nil
		}
		return nil, false, err
	}
	// The member starts at its name: the last quote-delimited string
	// before the value's colon.
	colon := bytes.LastIndexByte(doc[:start], ':')
	nameEnd := bytes.LastIndexByte(doc[:colon], '"')
	nameStart := nameEnd - 1
	for nameStart > 0 {
		if doc[nameStart] == '"' {
			// An escaped quote is preceded by an odd number of backslashes.
			n := 0
			for j := nameStart - 1; j >= 0 && doc[j] == '\\'; j-- {
				n++
			}
			if n%2 == 0 {
				break
			}
		}
		nameStart--
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	before := nameStart
	for before > 0 && isSpace(doc[before-1]) {
		before--
	}
	after := end
	for after < len(doc) && isSpace(doc[after]) {
		after++
	}
	out := make([]byte, 0, len(doc))
	switch {
	case doc[after] == ',':
		// Not the last member: drop it, its comma and the space after.
		after++
		for after < len(doc) && isSpace(doc[after]) {
			after++
		}
		out = append(out, doc[:nameStart]...)
		out = append(out, doc[after:]...)
	case doc[before-1] == ',':
		// The last member: drop the comma before it.
		out = append(out, doc[:before-1]...)
		out = append(out, doc[end:]...)
	default:
		// The only member.
		out = append(out, doc[:before]...)
		out = append(out, doc[end:]...)
	}
	return out, true, nil
}
