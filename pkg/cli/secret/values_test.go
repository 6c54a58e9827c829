package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValueSpecErrors: bad value flags fail with one line naming the flag,
// before anything is read from the cluster.
func TestValueSpecErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	tests := []struct {
		name string
		set  func(o *Options)
		want string
	}{
		{"key without generate", func(o *Options) { o.Keys = []string{"k"} }, "--key needs --generate"},
		{"generate without key", func(o *Options) { o.Generate = "hex:16" }, "--generate needs at least one --key"},
		{"bad generator", func(o *Options) { o.Keys, o.Generate = []string{"k"}, "hex:2" }, "--generate"},
		{"from-file syntax", func(o *Options) { o.FromFile = []string{"k"} }, "use KEY=PATH"},
		{"from-file missing", func(o *Options) { o.FromFile = []string{"k=/nonexistent"} }, "--from-file k: reading /nonexistent"},
		{"from-file directory", func(o *Options) { o.FromFile = []string{"k=" + dir} }, "is a directory, not a file"},
		{"no stdin", func(o *Options) { o.FromStdin = "k" }, "no standard input"},
		{"empty stdin", func(o *Options) { o.FromStdin, o.IOStreams.In = "k", strings.NewReader("") }, "standard input was empty"},
		{"password file alone", func(o *Options) { o.PasswordFromFile = "/x" }, "--password-from-file is for --url-password"},
		{"password file empty", func(o *Options) { o.URLPassword, o.PasswordFromFile = []string{"U"}, empty }, "--password-from-file " + empty + " is empty"},
		{"json-field syntax", func(o *Options) { o.JSONFields = []string{"k"} }, "use KEY:FIELD[:SPEC]"},
		{"json-field generator", func(o *Options) { o.JSONFields = []string{"k:f:nope:3"} }, "--json-field k:f:"},
		{"from-file-field syntax", func(o *Options) { o.FromFileField = []string{"k=/x"} }, "use KEY:FIELD=PATH"},
		{"empty url key", func(o *Options) { o.URLPassword = []string{""} }, "--url-password: empty key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Options{PasswordSpec: "password:32"}
			tt.set(o)
			_, err := valueSpec(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line with %q", err, tt.want)
			}
		})
	}
}

// TestValueSpecReadsValues: files and stdin are read once, one trailing
// newline stripped; the spec holds values, not paths.
func TestValueSpecReadsValues(t *testing.T) {
	f := filepath.Join(t.TempDir(), "v")
	os.WriteFile(f, []byte("from-a-file\n"), 0o600)
	o := &Options{FromFile: []string{"api=" + f}, FromStdin: "pw",
		JSONFields: []string{"S3:secret", "OS:hosts:url-password"}, PasswordSpec: "password:20"}
	o.IOStreams.In = strings.NewReader("piped\r\n")
	spec, err := valueSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Values) != 2 || string(spec.Values[0].Value) != "from-a-file" || string(spec.Values[1].Value) != "piped" {
		t.Errorf("values %+v", spec.Values)
	}
	if len(spec.JSONFields) != 2 || spec.JSONFields[0].Gen == nil || spec.JSONFields[0].Gen.String() != "password:32" || !spec.JSONFields[1].URLPassword || spec.Password.Gen == nil {
		t.Errorf("json fields %+v, password %+v", spec.JSONFields, spec.Password)
	}
}
