package values

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestParseSpecAndGenerate(t *testing.T) {
	tests := []struct {
		spec  string
		match *regexp.Regexp
		check func([]byte) bool
	}{
		{"random:32", regexp.MustCompile(`^[A-Za-z0-9+/]{43}=$`), func(v []byte) bool {
			b, err := base64.StdEncoding.DecodeString(string(v))
			return err == nil && len(b) == 32
		}},
		{"hex:16", regexp.MustCompile(`^[0-9a-f]{32}$`), nil},
		{"base64url:32", regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`), func(v []byte) bool {
			b, err := base64.RawURLEncoding.DecodeString(string(v))
			return err == nil && len(b) == 32
		}},
		{"password:24", regexp.MustCompile(`^[A-Za-z0-9]{24}$`), nil},
		{"uuid", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			g, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if g.String() != tt.spec {
				t.Errorf("String() = %q", g.String())
			}
			a, err := g.Generate()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := g.Generate()
			if !tt.match.Match(a) {
				t.Errorf("value of %s has the wrong shape (len %d)", tt.spec, len(a))
			}
			if tt.check != nil && !tt.check(a) {
				t.Errorf("value of %s does not decode to the requested size", tt.spec)
			}
			if string(a) == string(b) {
				t.Errorf("two values of %s are equal", tt.spec)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", "is unknown"},
		{"rand:32", "is unknown: use random:N"},
		{"random", "needs a size: use random:N"},
		{"random:", "needs a size"},
		{"random:abc", "is not a whole number"},
		{"random:8", "between 16 and 8192 bytes"},
		{"hex:100000", "between 16 and 8192 bytes"},
		{"password:6", "between 12 and 8192 characters"},
		{"uuid:4", "uuid takes no size"},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSpec(%q) = %v, want error containing %q", tt.spec, err, tt.want)
		}
	}
}

func TestPasswordIsUniformEnough(t *testing.T) {
	// 62 symbols over 62,000 draws: each should appear about 1,000 times.
	v, err := Password(62000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	for _, c := range v {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("character %q drawn %d times, want about 1000", c, n)
		}
	}
}

func TestFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("value"))
	want := "sha256:" + hex.EncodeToString(sum[:])[:12]
	if got := Fingerprint([]byte("value")); got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
	if Fingerprint([]byte("a")) == Fingerprint([]byte("b")) {
		t.Error("different values share a fingerprint")
	}
}

func TestReplaceURLPassword(t *testing.T) {
	tests := []struct {
		name, in, pw, want string
	}{
		{"DiracX SQL URL", "mysql+aiomysql://username:password@hostname.invalid:1234/DiracXAuthDB",
			"N3wPassw0rd", "mysql+aiomysql://username:N3wPassw0rd@hostname.invalid:1234/DiracXAuthDB"},
		{"query and fragment kept", "postgresql://app:old@db:5432/app?sslmode=require&x=a@b#frag",
			"n3w", "postgresql://app:n3w@db:5432/app?sslmode=require&x=a@b#frag"},
		{"OpenSearch hosts without scheme", "username:password@hostname.invalid:443/os",
			"n3w", "username:n3w@hostname.invalid:443/os"},
		{"encoded @ in old password", "mysql://u:p%40ss@h/db", "n3w", "mysql://u:n3w@h/db"},
		{"empty old password", "redis://:@cache:6379/0", "n3w", "redis://:n3w@cache:6379/0"},
		{"new password needing escapes", "mysql://u:old@h/db", "a/b@c:d", "mysql://u:a%2Fb%40c%3Ad@h/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceURLPassword(tt.in, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			back, err := URLPassword(got)
			if err != nil || back != tt.pw {
				t.Errorf("URLPassword(result) = %q, %v; want the new password", back, err)
			}
		})
	}
}

func TestReplaceURLPasswordRejectsNonURLs(t *testing.T) {
	for _, in := range []string{
		"just-a-secret-value",
		"mysql://user@host/db",           // user but no password
		"https://host/path@not-userinfo", // @ only in the path
		"",
	} {
		_, err := ReplaceURLPassword(in, "x")
		if err != ErrNoURLPassword {
			t.Errorf("ReplaceURLPassword(%q) = %v, want ErrNoURLPassword", in, err)
		}
		if err != nil && in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}

func TestSetJSONStringField(t *testing.T) {
	tests := []struct {
		name, doc, field, value, want string
	}{
		{"S3 kwargs keep order and spacing",
			`{"endpoint_url": "https://s3.invalid", "aws_access_key_id": "abcedfg", "aws_secret_access_key": "hijklmnop"}`,
			"aws_secret_access_key", "N3W",
			`{"endpoint_url": "https://s3.invalid", "aws_access_key_id": "abcedfg", "aws_secret_access_key": "N3W"}`},
		{"OpenSearch hosts, other types untouched",
			`{"hosts": "username:password@hostname.invalid:443/os", "use_ssl": true, "verify_certs": true}`,
			"hosts", "username:n3w@hostname.invalid:443/os",
			`{"hosts": "username:n3w@hostname.invalid:443/os", "use_ssl": true, "verify_certs": true}`},
		{"compact and nested", `{"a":{"hosts":"x"},"hosts":"old","n":1.50}`, "hosts", "new",
			`{"a":{"hosts":"x"},"hosts":"new","n":1.50}`},
		{"pretty-printed", "{\n  \"k\" :\n    \"old\",\n  \"z\": null\n}\n", "k", "<&>",
			"{\n  \"k\" :\n    \"<&>\",\n  \"z\": null\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetJSONStringField([]byte(tt.doc), tt.field, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			v, err := JSONStringField(got, tt.field)
			if err != nil || v != tt.value {
				t.Errorf("read back %q, %v", v, err)
			}
		})
	}
}

func TestSetJSONStringFieldErrors(t *testing.T) {
	tests := []struct{ name, doc, field, want string }{
		{"not JSON", `hosts=abc`, "hosts", "is not valid JSON"},
		{"array", `["a"]`, "hosts", "is not a JSON object"},
		{"missing field lists fields", `{"a":"1","b":"2"}`, "hosts", `has no field "hosts" (fields: a, b)`},
		{"not a string", `{"hosts":5}`, "hosts", `field "hosts" is not a string`},
		{"duplicate", `{"hosts":"a","hosts":"b"}`, "hosts", "twice"},
		{"trailing data", `{"hosts":"a"} {}`, "hosts", "data after"},
		{"truncated", `{"hosts":"a",`, "hosts", "is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SetJSONStringField([]byte(tt.doc), tt.field, "new")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestHashedPairDiracXLegacyKey(t *testing.T) {
	p, err := NewHashedPair(DefaultTokenBytes)
	if err != nil {
		t.Fatal(err)
	}
	format, err := ParseDeliveryFormat("diracx:legacy:{{.Base64URL}}")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.Plaintext(format)
	if err != nil {
		t.Fatal(err)
	}
	// What DiracX does on receipt: strip the prefix, decode, hash, compare.
	tok, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(string(plain), "diracx:legacy:"))
	if err != nil || len(tok) != 32 {
		t.Fatalf("plaintext does not carry a 32-byte urlsafe-base64 token: %v", err)
	}
	sum := sha256.Sum256(tok)
	if hex.EncodeToString(sum[:]) != string(p.Hash()) {
		t.Error("stored hash is not sha256 of the delivered token")
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(p.Hash()) {
		t.Error("hash is not 64 lowercase hex digits")
	}
}

func TestParseDeliveryFormatErrors(t *testing.T) {
	for _, f := range []string{"{{.Token}}", "{{.Base64URL", "{{.Hex | nosuchfunc}}"} {
		if _, err := ParseDeliveryFormat(f); err == nil {
			t.Errorf("ParseDeliveryFormat(%q) succeeded", f)
		}
	}
	if _, err := NewHashedPair(4); err == nil {
		t.Error("NewHashedPair(4) succeeded; want a minimum size")
	}
}

func TestSetJSONMember(t *testing.T) {
	tests := []struct{ name, doc, field, raw, want string }{
		{"replace array", `{"kid": "a", "key_ops": ["sign", "verify"], "x": "y"}`, "key_ops", `["verify"]`, `{"kid": "a", "key_ops": ["verify"], "x": "y"}`},
		{"append", `{"kid":"a"}`, "use", `"sig"`, `{"kid":"a","use":"sig"}`},
		{"append to pretty", "{\n  \"kid\": \"a\"\n}", "use", `"sig"`, "{\n  \"kid\": \"a\",\"use\":\"sig\"\n}"},
		{"append to empty", `{}`, "use", `"sig"`, `{"use":"sig"}`},
	}
	for _, tt := range tests {
		got, err := SetJSONMember([]byte(tt.doc), tt.field, []byte(tt.raw))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %s, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	raw, ok, err := JSONMember([]byte(`{"a":[1, 2]}`), "a")
	if err != nil || !ok || string(raw) != "[1, 2]" {
		t.Errorf("JSONMember = %s %v %v", raw, ok, err)
	}
	if _, ok, err := JSONMember([]byte(`{"a":1}`), "b"); ok || err != nil {
		t.Errorf("JSONMember(missing) = %v %v", ok, err)
	}
	if _, err := SetJSONMember([]byte(`{"a":1}`), "a", []byte(`{`)); err == nil {
		t.Error("invalid raw accepted")
	}
}

func TestDeleteJSONMember(t *testing.T) {
	tests := []struct{ doc, field, want string }{
		{`{"a":1,"use":"default","b":2}`, "use", `{"a":1,"b":2}`},
		{`{"a": 1, "use": "default"}`, "use", `{"a": 1}`},
		{`{"use": "default", "a": 1}`, "use", `{"a": 1}`},
		{`{"use":"x"}`, "use", `{}`},
		{"{\n  \"a\": 1,\n  \"use\": \"default\",\n  \"b\": 2\n}", "use", "{\n  \"a\": 1,\n  \"b\": 2\n}"},
		{"{\n  \"a\": 1,\n  \"use\": \"default\"\n}", "use", "{\n  \"a\": 1\n}"},
		{`{"a\"use":"x","use":"y"}`, "use", `{"a\"use":"x"}`},
		{`{"a":1}`, "use", `{"a":1}`},
	}
	for _, tt := range tests {
		got, _, err := DeleteJSONMember([]byte(tt.doc), tt.field)
		if err != nil || string(got) != tt.want {
			t.Errorf("DeleteJSONMember(%s, %s) = %s, %v; want %s", tt.doc, tt.field, got, err, tt.want)
		}
		if err == nil && !json.Valid(got) {
			t.Errorf("%s: result is not JSON", tt.doc)
		}
	}
}
