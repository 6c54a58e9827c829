package planspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// JobTemplate is a batch/v1 JobSpec written in the plan. Reading it is
// strict like the rest of the plan: a field JobSpec does not have, or a
// value of the wrong shape, is an error naming its line.
type JobTemplate struct {
	batchv1.JobSpec
}

// maxTemplateNodes bounds the YAML nodes (aliases expanded) of one
// template, so a file of nested aliases cannot exhaust memory, and
// maxTemplateDepth its nesting (a JobSpec is about 15 levels deep).
const (
	maxTemplateNodes = 100000
	maxTemplateDepth = 64
)

var jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// UnmarshalYAML checks every field of the template against JobSpec (by
// its JSON names, case-sensitively), then decodes it as Kubernetes does,
// through JSON.
func (t *JobTemplate) UnmarshalYAML(n *yaml.Node) error {
	w := &walker{budget: maxTemplateNodes}
	v, err := w.value(n, reflect.TypeOf(batchv1.JobSpec{}), "template")
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: the job template cannot be read: %v", n.Line, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var spec batchv1.JobSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("line %d: the job template is not a batch/v1 JobSpec: %s", n.Line, strings.TrimPrefix(err.Error(), "json: "))
	}
	t.JobSpec = spec
	return nil
}

// walker turns a YAML node into the generic value encoding/json would
// read, checking field names against a Go type on the way.
type walker struct {
	budget, depth int
}

// enter counts a node against the template's limits.
func (w *walker) enter(n *yaml.Node) error {
	w.budget--
	w.depth++
	if w.budget < 0 {
		return fmt.Errorf("line %d: the job template is too large (over %d YAML nodes, aliases expanded)", n.Line, maxTemplateNodes)
	}
	if w.depth > maxTemplateDepth {
		return fmt.Errorf("line %d: the job template nests deeper than %d levels", n.Line, maxTemplateDepth)
	}
	return nil
}

func (w *walker) value(n *yaml.Node, t reflect.Type, path string) (any, error) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: %s: unknown alias", n.Line, path)
		}
		n = n.Alias
	}
	defer func() { w.depth-- }()
	if err := w.enter(n); err != nil {
		return nil, err
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("line %d: %s: expected one value", n.Line, path)
		}
		return w.value(n.Content[0], t, path)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Types that read their own JSON (Quantity, IntOrString, Time, ...)
	// and interfaces take any shape: JSON decoding checks them.
	if t == nil || t.Kind() == reflect.Interface {
		return w.generic(n, path)
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		v, err := w.generic(n, path)
		if err != nil {
			return nil, err
		}
		// Decode it here too, so a bad value (cpu: lots) names its line.
		b, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(b, reflect.New(t).Interface())
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %s", n.Line, path, strings.TrimPrefix(err.Error(), "json: "))
		}
		return v, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: %s must be a mapping of fields", n.Line, path)
		}
		fields := jsonFields(t)
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: %s: keys must be plain field names (no merge keys or complex keys)", k.Line, path)
			}
			ft, ok := fields[k.Value]
			if !ok {
				return nil, fmt.Errorf("line %d: unknown field %q in %s (%s): check its spelling and case against the Kubernetes type %s", k.Line, k.Value, path, t.Name(), t.Name())
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: %s: field %q is given twice", k.Line, path, k.Value)
			}
			x, err := w.value(v, ft, path+"."+k.Value)
			if err != nil {
				return nil, err
			}
			out[k.Value] = x
		}
		return out, nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: %s must be a mapping", n.Line, path)
		}
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: %s: keys must be plain strings (no merge keys or complex keys)", k.Line, path)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: %s: key %q is given twice", k.Line, path, k.Value)
			}
			x, err := w.value(v, t.Elem(), path+"."+k.Value)
			if err != nil {
				return nil, err
			}
			out[k.Value] = x
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // []byte: base64 text
			return w.scalarString(n, path)
		}
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("line %d: %s must be a list", n.Line, path)
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			x, err := w.value(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case reflect.String:
		return w.scalarString(n, path)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			return nil, fmt.Errorf("line %d: %s must be true or false", n.Line, path)
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %s must be true or false", n.Line, path)
		}
		return b, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return nil, fmt.Errorf("line %d: %s must be a whole number", n.Line, path)
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %s must be a whole number that fits in 64 bits", n.Line, path)
		}
		return i, nil
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			return nil, fmt.Errorf("line %d: %s must be a number", n.Line, path)
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("line %d: %s must be a finite number", n.Line, path)
		}
		return f, nil
	}
	return w.generic(n, path)
}

// scalarString reads any scalar as a string, as a Kubernetes author
// expects of `value: 5432` or `args: [1]`.
func (w *walker) scalarString(n *yaml.Node, path string) (any, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("line %d: %s must be a single value (quote it if it is meant as text)", n.Line, path)
	}
	return n.Value, nil
}

// generic converts a node without a Go type to check against.
func (w *walker) generic(n *yaml.Node, path string) (any, error) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: %s: unknown alias", n.Line, path)
		}
		n = n.Alias
	}
	defer func() { w.depth-- }()
	if err := w.enter(n); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: %s: keys must be plain strings (no merge keys or complex keys)", k.Line, path)
			}
			x, err := w.generic(v, path+"."+k.Value)
			if err != nil {
				return nil, err
			}
			out[k.Value] = x
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			x, err := w.generic(c, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, nil
			}
		case "!!int":
			var i int64
			if err := n.Decode(&i); err == nil {
				return i, nil
			}
			var u uint64
			if err := n.Decode(&u); err == nil {
				return u, nil
			}
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, nil
			}
			return nil, fmt.Errorf("line %d: %s must be a finite number", n.Line, path)
		case "!!timestamp":
			var ts time.Time
			if err := n.Decode(&ts); err == nil {
				return ts.UTC().Format(time.RFC3339), nil
			}
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: %s: unexpected YAML node", n.Line, path)
}

// jsonFields maps the JSON names of t's fields (inline and embedded
// structs' included) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			m[name] = f.Type
		}
	}
	add(t)
	fieldCache.Store(t, m)
	return m
}

// fieldCache holds jsonFields' answers: map[reflect.Type]map[string]reflect.Type.
var fieldCache sync.Map
