package changes

import (
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

func gen(t *testing.T, spec string) values.Generator {
	t.Helper()
	g, err := values.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestBuild(t *testing.T) {
	cs, err := Build(Spec{
		Generate:    []Generate{{Key: "token", Gen: gen(t, "hex:16")}},
		Values:      []Value{{Key: "api", Source: "file", Value: []byte("from-a-file")}},
		URLPassword: []string{"A", "B"}, Password: Password{Gen: gen(t, "password:20")},
		JSONFields: []JSONField{{Key: "S3", Field: "secret", Gen: gen(t, "password:12")}, {Key: "OS", Field: "hosts", URLPassword: true},
			{Key: "S3", Field: "id", Supplied: []byte("new-id")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{"A": "postgresql://u:old@db/a", "B": "mysql://u:old@db:3306/b", "S3": `{"id":"x","secret":"old"}`, "OS": `{"hosts":"u:old@os:9200"}`}
	got := map[string]string{}
	for _, c := range cs {
		v, err := c.Make([]byte(old[c.Key]), old[c.Key] != "")
		if err != nil {
			t.Fatalf("%s: %v", c.Key, err)
		}
		got[c.Key] = string(v)
	}
	if len(got["token"]) != 32 || got["api"] != "from-a-file" {
		t.Errorf("token %d chars, api %q", len(got["token"]), got["api"])
	}
	pa, _ := values.URLPassword(got["A"])
	pb, _ := values.URLPassword(got["B"])
	if pa != pb || len(pa) != 20 || !strings.HasPrefix(got["A"], "postgresql://u:") || !strings.HasSuffix(got["B"], "@db:3306/b") {
		t.Errorf("URLs do not share one new password: %d/%d chars", len(pa), len(pb))
	}
	if s, _ := values.JSONStringField([]byte(got["S3"]), "secret"); len(s) != 12 || !strings.Contains(got["S3"], `"id":"new-id"`) {
		t.Errorf("json fields of S3: %d chars, id kept as supplied: %v", len(s), strings.Contains(got["S3"], `"id":"new-id"`))
	}
	if h, _ := values.JSONStringField([]byte(got["OS"]), "hosts"); !strings.Contains(h, pa+"@os:9200") {
		t.Error("the url-password JSON field does not get the URLs' password")
	}
}

// TestBuildErrors: what the core refuses names keys and fields, never flags.
func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"url password without a source", Spec{URLPassword: []string{"A"}}, "url password: no generator and no value given"},
		{"empty url key", Spec{URLPassword: []string{""}, Password: Password{Gen: gen(t, "hex:16")}}, "url password: empty key name"},
		{"json field without a source", Spec{JSONFields: []JSONField{{Key: "S3", Field: "secret"}}}, "key S3 field secret: no generator and no value given"},
	}
	for _, tt := range tests {
		_, err := Build(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v, want %q and no flag", tt.name, err, tt.want)
		}
	}
	// A missing key: the change says what it needs, in the value's terms.
	cs, _ := Build(Spec{URLPassword: []string{"A"}, Password: Password{Gen: gen(t, "hex:16")}})
	if _, err := cs[0].Make(nil, false); err == nil || strings.Contains(err.Error(), "--") {
		t.Errorf("missing URL key: %v", err)
	}
}
