package changes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/values"
)

func TestBuild(t *testing.T) {
	file := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := Build(Spec{Keys: []string{"token"}, Generate: "hex:16", FromFile: []string{"api=" + file},
		URLPassword: []string{"A", "B"}, PasswordSpec: "password:20",
		JSONFields: []string{"S3:secret:password:12", "OS:hosts:url-password"}})
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
	if s, _ := values.JSONStringField([]byte(got["S3"]), "secret"); len(s) != 12 || !strings.Contains(got["S3"], `"id":"x"`) {
		t.Errorf("json field: %d chars", len(s))
	}
	if h, _ := values.JSONStringField([]byte(got["OS"]), "hosts"); !strings.Contains(h, pa+"@os:9200") {
		t.Error("the url-password JSON field does not get the URLs' password")
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Keys: []string{"k"}}, "--key needs --generate"},
		{Spec{Generate: "hex:16"}, "--generate needs at least one --key"},
		{Spec{Keys: []string{"k"}, Generate: "hex:2"}, "--generate"},
		{Spec{FromFile: []string{"k"}}, "use KEY=PATH"},
		{Spec{FromFile: []string{"k=/nonexistent"}}, "/nonexistent"},
		{Spec{FromStdin: "k"}, "no standard input"},
		{Spec{FromStdin: "k", Stdin: strings.NewReader("")}, "standard input was empty"},
		{Spec{PasswordFromFile: "/x"}, "--password-from-file is for --url-password"},
		{Spec{JSONFields: []string{"k"}}, "use KEY:FIELD[:SPEC]"},
	}
	for _, tt := range tests {
		_, err := Build(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.spec, err, tt.want)
		}
	}
}
