package etcdstore

import "testing"

func TestBucket(t *testing.T) {
	prefixes := []string{"k8s:enc:aescbc:v1:old:", "k8s:enc:aescbc:v1:new:"}
	for _, c := range []struct{ value, want string }{
		{"k8s:enc:aescbc:v1:old:\x00\x01:ciphertext", "k8s:enc:aescbc:v1:old:"},
		{"k8s:enc:aescbc:v1:new:abc", "k8s:enc:aescbc:v1:new:"},
		{"k8s:enc:secretbox:v1:other:abc", "k8s:enc:secretbox:v1:other:"},
		{"k8s\x00\x0a\x0c", Unencrypted},
		{`{"kind":"Secret"}`, Unencrypted},
		{"k8s:enc:short", Unencrypted},
	} {
		if got := bucket([]byte(c.value), prefixes); got != c.want {
			t.Errorf("bucket(%q) = %q, want %q", c.value, got, c.want)
		}
	}
}
