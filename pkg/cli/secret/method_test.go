package secret

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// The recorded method replays how values were made, without values or
// local paths.
func TestMethod(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"generated keys", func(o *Options) { o.Keys, o.Generate = []string{"a", "b"}, "hex:32" }, "--key a --key b --generate hex:32"},
		{"url password", func(o *Options) { o.URLPassword = []string{"DB_A", "DB_B"} }, "--url-password DB_A,DB_B --password-generate password:32"},
		{"password from a file", func(o *Options) { o.URLPassword, o.PasswordFromFile = []string{"DB"}, "/secret/pw" }, "--url-password DB --password-from-file NEW-PASSWORD-FILE"},
		{"files are placeholders", func(o *Options) { o.FromFile = []string{"API_KEY=/home/me/key"} }, "--from-file API_KEY=NEW-VALUE-FILE"},
		{"json field", func(o *Options) { o.JSONFields = []string{"S3:aws_secret_access_key:password:40"} }, "--json-field S3:aws_secret_access_key:password:40"},
		{"hashed with a format", func(o *Options) { o.Hashed, o.DeliverFormat = "HASH", "diracx:legacy:{{.Base64URL}}" },
			`--hashed HASH --deliver file:NEW-TOKEN-FILE --deliver-format 'diracx:legacy:{{.Base64URL}}'`},
	}
	for _, tt := range tests {
		o := NewOptions(genericiooptions.NewTestIOStreamsDiscard())
		tt.set(o)
		if got := o.method(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
