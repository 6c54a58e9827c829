package inventory

import (
	"slices"
	"sort"
	"testing"
)

// sorted returns keys sorted (decodeFields reads map keys, in no order).
func sorted(keys []string) []string {
	out := slices.Clone(keys)
	sort.Strings(out)
	return out
}

func TestDataFields(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		writes bool
		keys   []string
		walked bool // scanFields handles it (else encoding/json does)
	}{
		{"kubectl create secret", `{"f:data":{".":{},"f:password":{},"f:username":{}},"f:type":{}}`, true, []string{"password", "username"}, true},
		{"stringData", `{"f:stringData":{"f:token":{}}}`, true, []string{"token"}, true},
		{"both", `{"f:data":{"f:a":{}},"f:stringData":{"f:b":{}}}`, true, []string{"a", "b"}, true},
		{"metadata only", `{"f:metadata":{"f:annotations":{".":{},"f:rotate.kube-rotate.io/rotated-at":{}},"f:labels":{"f:app":{}}}}`, false, nil, true},
		{"empty data", `{"f:data":{}}`, true, nil, true},
		{"empty set", `{}`, false, nil, true},
		{"white space", " {\n \"f:data\" : { \"f:k\" : { } } \n} ", true, []string{"k"}, true},
		{"nested lists", `{"f:metadata":{"f:ownerReferences":{"k:{\"uid\":\"1\"}":{}}},"f:data":{"f:x":{}}}`, true, []string{"x"}, false},
		{"arrays", `{"f:x":[{},[]],"f:data":{"f:y":{}}}`, true, []string{"y"}, true},
		{"escaped key", `{"f:data":{"f:a\u0062":{}}}`, true, []string{"ab"}, false},
		{"repeated data", `{"f:data":{"f:a":{}},"f:data":{"f:b":{}}}`, true, []string{"b"}, false},
		{"data not an object", `{"f:data":[]}`, true, nil, false},
		{"malformed", `{"f:data":{"f:a":{}}`, false, nil, false},
		{"trailing bytes", `{"f:data":{}} x`, false, nil, false},
		{"a number", `{"f:x":1,"f:data":{"f:a":{}}}`, true, []string{"a"}, false},
		{"not ASCII", `{"f:data":{"f:clé":{}}}`, true, []string{"clé"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			writes, keys := dataFields([]byte(c.raw))
			if writes != c.writes || !slices.Equal(sorted(keys), c.keys) {
				t.Errorf("dataFields(%s) = %v %q, want %v %q", c.raw, writes, keys, c.writes, c.keys)
			}
			if _, _, ok := scanFields([]byte(c.raw)); ok != c.walked {
				t.Errorf("scanFields(%s) handled it: %v, want %v", c.raw, ok, c.walked)
			}
		})
	}
}

// FuzzScanFields checks the walk against encoding/json: wherever the walk
// gives an answer, it is encoding/json's.
func FuzzScanFields(f *testing.F) {
	for _, s := range []string{
		`{"f:data":{".":{},"f:password":{}},"f:type":{}}`,
		`{"f:stringData":{"f:token":{}},"f:metadata":{"f:labels":{"f:a":{}}}}`,
		`{"f:x":[{},[]],"f:data":{"f:y":{}}}`,
		`{}`, `{"f:data":{}}`, `[]`, `{"f:data":{"f:a":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		writes, keys, ok := scanFields(raw)
		if !ok {
			return
		}
		w, k := decodeFields(raw)
		if writes != w || !slices.Equal(sorted(keys), sorted(k)) {
			t.Fatalf("scanFields(%q) = %v %q; encoding/json: %v %q", raw, writes, keys, w, k)
		}
	})
}
