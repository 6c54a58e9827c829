package ciliumipsec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Test keys: recognisable hex that must never show up in an error or a
// String.
var (
	gcm20  = strings.Repeat("ab", 20)
	gcm36  = strings.Repeat("cd", 36)
	sha256 = strings.Repeat("ef", 32)
	aes16  = strings.Repeat("12", 16)
	ccm19  = strings.Repeat("34", 19)
)

// seq is a deterministic "random" source: 0x00, 0x01, 0x02, ...
type seq struct{ n byte }

func (s *seq) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.n
		s.n++
	}
	return len(p), nil
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		wantSPI    uint8
		wantPrefix string // the new line up to its key
		wantSuffix string // after the key
		keyBytes   []int  // new key lengths, in order
	}{
		{"docs' example, +", "3+ rfc4106(gcm(aes)) " + gcm20 + " 128", 4, "4+ rfc4106(gcm(aes)) ", " 128", []int{20}},
		{"no +: kept without", "3 rfc4106(gcm(aes)) " + gcm20 + " 128", 4, "4 rfc4106(gcm(aes)) ", " 128", []int{20}},
		{"14 -> 15", "14+ rfc4106(gcm(aes)) " + gcm20 + " 128", 15, "15+ rfc4106(gcm(aes)) ", " 128", []int{20}},
		{"15 wraps to 1", "15+ rfc4106(gcm(aes)) " + gcm20 + " 128", 1, "1+ rfc4106(gcm(aes)) ", " 128", []int{20}},
		{"AES-256-GCM keeps 36 bytes", "1+ rfc4106(gcm(aes)) " + gcm36 + " 128", 2, "2+ rfc4106(gcm(aes)) ", " 128", []int{36}},
		{"ICV 96 kept", "7 rfc4106(gcm(aes)) " + gcm20 + " 96", 8, "8 rfc4106(gcm(aes)) ", " 96", []int{20}},
		{"0x prefix kept", "2+ rfc4106(gcm(aes)) 0x" + gcm20 + " 128", 3, "3+ rfc4106(gcm(aes)) 0x", " 128", []int{20}},
		{"CCM keeps 19 bytes", "5+ rfc4309(ccm(aes)) " + ccm19 + " 128", 6, "6+ rfc4309(ccm(aes)) ", " 128", []int{19}},
		{"auth+enc form", "3 hmac(sha256) " + sha256 + " cbc(aes) " + aes16, 4, "4 hmac(sha256) ", "", []int{32, 16}},
		{"auth+enc form, 15+ wraps", "15+ hmac(sha256) " + sha256 + " cbc(aes) " + aes16, 1, "1+ hmac(sha256) ", "", []int{32, 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if k.Line() != tc.line {
				t.Errorf("Line() does not give the line back:\n%s\n%s", k.Line(), tc.line)
			}
			n, err := k.Next(&seq{})
			if err != nil {
				t.Fatal(err)
			}
			if n.SPI != tc.wantSPI || n.PerTunnel != k.PerTunnel || n.AEAD != k.AEAD || n.ICVLen != k.ICVLen || n.Auth != k.Auth || n.Enc != k.Enc {
				t.Errorf("next = %s, from %s", n, k)
			}
			line := n.Line()
			if !strings.HasPrefix(line, tc.wantPrefix) || !strings.HasSuffix(line, tc.wantSuffix) {
				t.Errorf("next line = %q, want %q...%q", line, tc.wantPrefix, tc.wantSuffix)
			}
			// The new key bytes are the generator's, at the old lengths.
			var want []string
			var s seq
			for _, l := range tc.keyBytes {
				b := make([]byte, l)
				s.Read(b)
				want = append(want, fmt.Sprintf("%x", b))
			}
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("next line lacks the %d new key bytes", len(w)/2)
				}
			}
			// What Cilium reads back: the same key.
			back, err := Parse(line)
			if err != nil || back.Line() != line {
				t.Fatalf("the next line does not parse back: %v", err)
			}
			// And the kOps document.
			data, err := n.SecretData()
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != "keys: "+line+"\n" {
				t.Errorf("secret data = %q", data)
			}
		})
	}
}

func TestNextSPI(t *testing.T) {
	for spi := uint8(1); spi <= MaxSPI; spi++ {
		want := spi + 1
		if spi == MaxSPI {
			want = 1
		}
		if got := NextSPI(spi); got != want {
			t.Errorf("NextSPI(%d) = %d, want %d", spi, got, want)
		}
	}
}

// Malformed lines are refused, naming what to fix; no error carries the
// key's hex.
func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"empty", "", "is empty"},
		{"3 fields", "3 rfc4106(gcm(aes)) " + gcm20, "has 3 fields: Cilium takes 4"},
		{"6 fields", "3 hmac(sha256) " + sha256 + " cbc(aes) " + aes16 + " 10.0.0.1", "has 6 fields"},
		{"double space", "3  rfc4106(gcm(aes)) " + gcm20 + " 128", "remove the extra spaces"},
		{"tab", "3\trfc4106(gcm(aes)) " + gcm20 + " 128", "single spaces"},
		{"spi 0", "0 rfc4106(gcm(aes)) " + gcm20 + " 128", "key id 0 is out of range: Cilium takes 1 to 15"},
		{"spi 16", "16+ rfc4106(gcm(aes)) " + gcm20 + " 128", "key id 16 is out of range"},
		{"spi word", "x rfc4106(gcm(aes)) " + gcm20 + " 128", "is not a key id: write a number from 1 to 15"},
		{"spi signed", "+3 rfc4106(gcm(aes)) " + gcm20 + " 128", "is not a key id"},
		{"aead not rfc", "3 gcm(aes) " + gcm20 + " 128", "does not start with \"rfc\""},
		{"bad icv", "3 rfc4106(gcm(aes)) " + gcm20 + " 64", "ICV length \"64\" is not one Cilium takes"},
		{"odd hex", "3 rfc4106(gcm(aes)) " + gcm20 + "a 128", "AEAD key is not hexadecimal"},
		{"not hex", "3 rfc4106(gcm(aes)) zz" + gcm20 + " 128", "AEAD key is not hexadecimal"},
		{"short gcm key", "3 rfc4106(gcm(aes)) " + aes16 + " 128", "is 16 bytes, the kernel takes 20, 28, 36 bytes"},
		{"unknown aead", "3 rfc9999(foo) " + gcm20 + " 128", "cannot size a new key for AEAD algorithm \"rfc9999(foo)\""},
		{"unknown auth", "3 hmac(md5) " + aes16 + " cbc(aes) " + aes16, "cannot size a new key for authentication algorithm \"hmac(md5)\""},
		{"short auth key", "3 hmac(sha256) " + aes16 + " cbc(aes) " + aes16, "is 16 bytes, not 32"},
		{"unknown enc", "3 hmac(sha256) " + sha256 + " cbc(des) " + aes16, "encryption algorithm \"cbc(des)\""},
		{"bad enc size", "3 hmac(sha256) " + sha256 + " cbc(aes) " + ccm19, "is 19 bytes, the kernel takes 16, 24, 32 bytes"},
		{"bad enc hex", "3 hmac(sha256) " + sha256 + " cbc(aes) " + aes16 + "q", "encryption key is not hexadecimal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v, want an error with %q", tc.name, err, tc.want)
			}
			noKey(t, err.Error())
		})
	}
}

func TestParseSecret(t *testing.T) {
	line := "3+ rfc4106(gcm(aes)) " + gcm20 + " 128"
	for _, data := range []string{
		"keys: " + line + "\n",
		"keys: " + line,
		"keys: \"" + line + "\"\n",
		"# made with kops create secret ciliumpassword\nkeys: '" + line + "'\n",
	} {
		k, err := ParseSecret([]byte(data))
		if err != nil || k.Line() != line {
			t.Errorf("ParseSecret(%q): %v", data, err)
		}
	}
	for _, tc := range []struct{ name, data, want string }{
		{"not yaml", "keys: [" + line, "not a YAML document"},
		{"other name", "key: " + line + "\n", "no keys entry"},
		{"two entries", "keys: " + line + "\nextra: 1\n", "2 entries and keys among them"},
		{"not a string", "keys: [" + gcm20 + "]\n", "keys entry is not a string"},
		{"two lines", "keys: |\n  " + line + "\n  " + line + "\n", "has several lines"},
		{"bad line", "keys: 0 rfc4106(gcm(aes)) " + gcm20 + " 128\n", "key id 0 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSecret([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error with %q", err, tc.want)
			}
			noKey(t, err.Error())
		})
	}
}

// String, GoString and every fmt verb show no key bytes.
func TestNoKeyInString(t *testing.T) {
	for _, line := range []string{
		"3+ rfc4106(gcm(aes)) " + gcm20 + " 128",
		"3 hmac(sha256) " + sha256 + " cbc(aes) " + aes16,
	} {
		k, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		n, err := k.Next(&seq{n: 0xab}) // 0xab... would look like gcm20's hex
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []*Key{k, n} {
			hexes := strings.Fields(key.Line())
			for _, s := range []string{key.String(), fmt.Sprint(key), fmt.Sprintf("%v %+v %#v %s", key, key, key, key), fmt.Sprintf("%v", *key), fmt.Sprintf("%+v", *key)} {
				noKey(t, s)
				for _, h := range hexes {
					if len(h) >= 32 && strings.Contains(s, h) {
						t.Errorf("%q shows a key", s)
					}
				}
			}
		}
	}
	if s := (&Key{SPI: 3, PerTunnel: true, Form: FormAEAD, AEAD: "rfc4106(gcm(aes))", ICVLen: 128, aeadKey: make([]byte, 20)}).String(); s != "spi 3+ rfc4106(gcm(aes)) (20-byte key) 128" {
		t.Errorf("String() = %q", s)
	}
}

// A failing random source is an error, not a short key.
func TestNextRandFails(t *testing.T) {
	k, err := Parse("3+ rfc4106(gcm(aes)) " + gcm20 + " 128")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Next(bytes.NewReader(make([]byte, 5))); err == nil || !strings.Contains(err.Error(), "generating a 20-byte Cilium IPsec key") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short random source: %v", err)
	}
	// crypto/rand by default: two keys differ.
	a, _ := k.Next(nil)
	b, _ := k.Next(nil)
	if a.Line() == b.Line() || a.Line() == k.Line() {
		t.Error("crypto/rand keys repeat")
	}
}

func noKey(t *testing.T, s string) {
	t.Helper()
	for _, h := range []string{gcm20, gcm36, sha256, aes16, ccm19, gcm20[:16], sha256[:16], aes16[:16]} {
		if strings.Contains(s, h) {
			t.Errorf("%q contains key hex", s)
		}
	}
}
