// Package ciliumipsec reads a Cilium IPsec key line and makes the next
// one, as Cilium's "Key Rotation" documents it: the same algorithm, the
// same key lengths, the same "+" flag, new random key bytes and the next
// key id (SPI), 1 to 15, wrapping from 15 to 1.
//
// The rules are Cilium's:
//
//   - The line format is the agent's parser, LoadIPSecKeys and parseSPI in
//     pkg/datapath/linux/ipsec/ipsec_linux.go (cilium/cilium, read at
//     commit 001784924625; kOps 1.36 deploys Cilium v1.18): fields split
//     on single spaces; either "<spi>[+] <aead-algo> <aead-key> <icv-len>"
//     (the algorithm's name starts with "rfc", the ICV length is 96, 128
//     or 256) or "<spi>[+] <auth-algo> <auth-key> <enc-algo> <enc-key>";
//     keys are hexadecimal, a "0x" prefix tolerated (decodeIPSecKey); more
//     than five fields are refused.
//   - The SPI is 1 to IPsecMaxKeyVersion, 15
//     (pkg/datapath/linux/linux_defaults/linux_defaults.go); 0 is refused.
//     A trailing "+" asks for per-tunnel keys derived from the secret
//     (GHSA-pwqm-x5x6-5586); it is kept as it was.
//   - Rotation: a new key must carry a new SPI (LoadIPSecKeys refuses
//     "changing IPSec keys requires incrementing the key id"), increasing
//     with a rollover from 15 to 1, and may not change the authentication
//     key length (Documentation/security/network/encryption-ipsec.rst,
//     "Key Rotation", which generates 20 random bytes for
//     rfc4106(gcm(aes)) 128).
//
// Key sizes are the Linux kernel's for the ESP transforms: an RFC 4106
// (GCM), RFC 4543 (GMAC) or RFC 4309 (CCM) AES key is a 16, 24 or 32-byte
// AES key followed by a 4-byte (GCM, GMAC) or 3-byte (CCM) salt; RFC 7539
// ChaCha20-Poly1305 for ESP is a 32-byte key and a 4-byte salt; an HMAC
// key for ESP is the digest's length (RFC 2404 for SHA-1, RFC 4868 for
// SHA-2); a cbc(aes) key is 16, 24 or 32 bytes. A key of another
// algorithm, or of a length its algorithm does not take, is refused: its
// size cannot be told.
//
// The kOps side is the ciliumpassword secret, a YAML document
// "keys: <line>" (ParseSecret, SecretData).
//
// Key bytes are never part of an error, a String or a GoString.
package ciliumipsec

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxSPI is the largest key id Cilium takes (linux_defaults.IPsecMaxKeyVersion).
const MaxSPI = 15

// Form is which of Cilium's two line formats a key uses.
type Form string

const (
	// FormAEAD is "<spi>[+] <aead-algo> <aead-key> <icv-len>".
	FormAEAD Form = "aead"
	// FormAuthEnc is "<spi>[+] <auth-algo> <auth-key> <enc-algo> <enc-key>".
	FormAuthEnc Form = "auth+enc"
)

// Key is one Cilium IPsec key line. Its key bytes are unexported and never
// printed: String and GoString show the SPI, the algorithms and the key
// lengths only; Line is the only way to the secret text.
type Key struct {
	// SPI is the key id, 1 to MaxSPI.
	SPI uint8
	// PerTunnel is the "+" after the SPI.
	PerTunnel bool
	// Form is the line format.
	Form Form
	// AEAD and ICVLen are the AEAD algorithm and ICV length in bits (FormAEAD).
	AEAD   string
	ICVLen int
	// Auth and Enc are the authentication and encryption algorithms (FormAuthEnc).
	Auth, Enc string

	// The key bytes, and which key fields had a "0x" prefix (kept).
	aeadKey, authKey, encKey []byte
	aead0x, auth0x, enc0x    bool
}

// aeadSizes are the key lengths in bytes (cipher key plus salt) of the
// AEAD transforms a key can be generated for.
var aeadSizes = map[string][]int{
	"rfc4106(gcm(aes))":             {20, 28, 36},
	"rfc4543(gcm(aes))":             {20, 28, 36},
	"rfc4309(ccm(aes))":             {19, 27, 35},
	"rfc7539esp(chacha20,poly1305)": {36},
}

// authSizes are the HMAC key lengths for ESP (RFC 2404, RFC 4868).
var authSizes = map[string]int{
	"hmac(sha1)":   20,
	"hmac(sha256)": 32,
	"hmac(sha384)": 48,
	"hmac(sha512)": 64,
}

// encSizes are the encryption key lengths of the ciphers a key can be
// generated for.
var encSizes = map[string][]int{
	"cbc(aes)": {16, 24, 32},
}

// Parse reads one key line as the Cilium agent does, and checks that a
// next key can be made for it (known algorithm, key lengths it takes).
func Parse(line string) (*Key, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("the Cilium IPsec key line is empty: write `<spi>+ rfc4106(gcm(aes)) <40 hex digits> 128`")
	}
	if strings.ContainsAny(line, "\n\t") {
		return nil, fmt.Errorf("the Cilium IPsec key must be one line of fields separated by single spaces")
	}
	s := strings.Split(line, " ")
	if slices.Contains(s, "") {
		return nil, fmt.Errorf("the Cilium IPsec key has an empty field: Cilium splits it on single spaces; remove the extra spaces")
	}
	if len(s) != 4 && len(s) != 5 {
		return nil, fmt.Errorf("the Cilium IPsec key has %d fields: Cilium takes 4 (`<spi>[+] <aead-algo> <key> <icv-len>`) or 5 (`<spi>[+] <auth-algo> <key> <enc-algo> <key>`)", len(s))
	}
	k := &Key{}
	var err error
	if k.SPI, k.PerTunnel, err = parseSPI(s[0]); err != nil {
		return nil, err
	}
	if len(s) == 4 {
		k.Form, k.AEAD = FormAEAD, s[1]
		if !strings.HasPrefix(k.AEAD, "rfc") {
			return nil, fmt.Errorf("the Cilium IPsec key's AEAD algorithm %q does not start with \"rfc\", which Cilium requires: use rfc4106(gcm(aes))", k.AEAD)
		}
		if k.aeadKey, k.aead0x, err = decodeKey("AEAD key", s[2]); err != nil {
			return nil, err
		}
		if k.ICVLen, err = strconv.Atoi(s[3]); err != nil || (k.ICVLen != 96 && k.ICVLen != 128 && k.ICVLen != 256) {
			return nil, fmt.Errorf("the Cilium IPsec key's ICV length %q is not one Cilium takes: 96, 128 or 256 (128 for rfc4106(gcm(aes)))", s[3])
		}
		sizes, ok := aeadSizes[k.AEAD]
		if !ok {
			return nil, fmt.Errorf("cannot size a new key for AEAD algorithm %q: supported are %s; rotate it by hand", k.AEAD, names(aeadSizes))
		}
		if !slices.Contains(sizes, len(k.aeadKey)) {
			return nil, fmt.Errorf("the Cilium IPsec key for %s is %d bytes, the kernel takes %s (cipher key and salt): fix the key", k.AEAD, len(k.aeadKey), sizeList(sizes))
		}
		return k, nil
	}
	k.Form, k.Auth, k.Enc = FormAuthEnc, s[1], s[3]
	if k.authKey, k.auth0x, err = decodeKey("authentication key", s[2]); err != nil {
		return nil, err
	}
	if k.encKey, k.enc0x, err = decodeKey("encryption key", s[4]); err != nil {
		return nil, err
	}
	size, ok := authSizes[k.Auth]
	if !ok {
		return nil, fmt.Errorf("cannot size a new key for authentication algorithm %q: supported are %s; rotate it by hand", k.Auth, names(authSizes))
	}
	if len(k.authKey) != size {
		return nil, fmt.Errorf("the Cilium IPsec authentication key for %s is %d bytes, not %d (RFC 2404/4868), and Cilium cannot rotate to another authentication key length: rotate it by hand", k.Auth, len(k.authKey), size)
	}
	encs, ok := encSizes[k.Enc]
	if !ok {
		return nil, fmt.Errorf("cannot size a new key for encryption algorithm %q: supported are %s; rotate it by hand", k.Enc, names(encSizes))
	}
	if !slices.Contains(encs, len(k.encKey)) {
		return nil, fmt.Errorf("the Cilium IPsec encryption key for %s is %d bytes, the kernel takes %s: fix the key", k.Enc, len(k.encKey), sizeList(encs))
	}
	return k, nil
}

// parseSPI reads "<spi>[+]": digits only, 1 to MaxSPI.
func parseSPI(f string) (uint8, bool, error) {
	plus := strings.HasSuffix(f, "+")
	digits := strings.TrimSuffix(f, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false, fmt.Errorf("the Cilium IPsec key's first field %q is not a key id: write a number from 1 to %d, optionally followed by +", f, MaxSPI)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > MaxSPI {
		return 0, false, fmt.Errorf("the Cilium IPsec key id %s is out of range: Cilium takes 1 to %d", digits, MaxSPI)
	}
	return uint8(n), plus, nil
}

// decodeKey decodes a hex key field; the error names the field, never
// its text.
func decodeKey(what, f string) ([]byte, bool, error) {
	has0x := strings.HasPrefix(f, "0x")
	b, err := hex.DecodeString(strings.TrimPrefix(f, "0x"))
	if err != nil || len(b) == 0 {
		return nil, false, fmt.Errorf("the Cilium IPsec %s is not hexadecimal (an even number of 0-9a-f digits, optionally 0x-prefixed): generate one with `dd if=/dev/urandom count=20 bs=1 | xxd -p -c 64`", what)
	}
	return b, has0x, nil
}

// NextSPI is the key id after spi: spi+1, and 1 after MaxSPI.
func NextSPI(spi uint8) uint8 {
	if spi >= MaxSPI {
		return 1
	}
	return spi + 1
}

// Next returns the rotated key: the next SPI, the same algorithms, ICV
// length, key lengths and "+" flag, and new key bytes read from rnd
// (crypto/rand.Reader when nil).
func (k *Key) Next(rnd io.Reader) (*Key, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	n := *k
	n.SPI = NextSPI(k.SPI)
	fresh := func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, nil
		}
		b := make([]byte, len(old))
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, fmt.Errorf("generating a %d-byte Cilium IPsec key: %w", len(old), err)
		}
		return b, nil
	}
	var err error
	if n.aeadKey, err = fresh(k.aeadKey); err != nil {
		return nil, err
	}
	if n.authKey, err = fresh(k.authKey); err != nil {
		return nil, err
	}
	if n.encKey, err = fresh(k.encKey); err != nil {
		return nil, err
	}
	return &n, nil
}

// Line is the key line, key bytes included, as Cilium reads it. It is
// the secret: write it only to the state store.
func (k *Key) Line() string {
	hexOf := func(b []byte, with0x bool) string {
		if with0x {
			return "0x" + hex.EncodeToString(b)
		}
		return hex.EncodeToString(b)
	}
	if k.Form == FormAEAD {
		return fmt.Sprintf("%s %s %s %d", k.spiField(), k.AEAD, hexOf(k.aeadKey, k.aead0x), k.ICVLen)
	}
	return fmt.Sprintf("%s %s %s %s %s", k.spiField(), k.Auth, hexOf(k.authKey, k.auth0x), k.Enc, hexOf(k.encKey, k.enc0x))
}

func (k *Key) spiField() string {
	if k.PerTunnel {
		return strconv.Itoa(int(k.SPI)) + "+"
	}
	return strconv.Itoa(int(k.SPI))
}

// String describes the key without its bytes, e.g.
// "spi 3+ rfc4106(gcm(aes)) (20-byte key) 128".
func (k *Key) String() string {
	if k == nil {
		return "<nil>"
	}
	if k.Form == FormAEAD {
		return fmt.Sprintf("spi %s %s (%d-byte key) %d", k.spiField(), k.AEAD, len(k.aeadKey), k.ICVLen)
	}
	return fmt.Sprintf("spi %s %s (%d-byte key) %s (%d-byte key)", k.spiField(), k.Auth, len(k.authKey), k.Enc, len(k.encKey))
}

// GoString is String, so that %#v shows no key bytes either.
func (k *Key) GoString() string { return "ciliumipsec.Key{" + k.String() + "}" }

// SecretKey is the one entry of the ciliumpassword secret's document: the
// file name the cilium-ipsec-keys Secret mounts at /etc/ipsec, where the
// agent reads ipsec-key-file /etc/ipsec/keys (kOps'
// upup/models/cloudup/resources/addons/networking.cilium.io/k8s-1.16-v1.15.yaml.template).
const SecretKey = "keys"

// ParseSecret reads the ciliumpassword secret's data as kOps keeps it: the
// YAML document `kops create secret ciliumpassword -f FILE` stored
// (cmd/kops/create_secret_ciliumpassword.go checks only that it is YAML),
// which kOps pastes, as one indented line, under stringData of the
// cilium-ipsec-keys Secret. So it must be one entry, keys, holding one
// key line.
func ParseSecret(data []byte) (*Key, error) {
	var doc map[string]interface{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// The YAML error can quote the document: not passed on.
		return nil, fmt.Errorf("it is not a YAML document: kops create secret ciliumpassword takes a file `keys: <spi>+ rfc4106(gcm(aes)) <hex> 128`")
	}
	v, ok := doc[SecretKey]
	if !ok || len(doc) != 1 {
		return nil, fmt.Errorf("it has %d entries and %s: it must be the one entry `keys: <key line>` (kOps pastes it under the cilium-ipsec-keys Secret's stringData, and Cilium reads /etc/ipsec/keys)", len(doc), keysState(ok))
	}
	line, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("its keys entry is not a string: write `keys: <spi>+ rfc4106(gcm(aes)) <hex> 128`")
	}
	if strings.Contains(strings.TrimRight(line, "\n"), "\n") {
		return nil, fmt.Errorf("its keys entry has several lines: kOps pastes the secret as one line; keep one key line")
	}
	return Parse(line)
}

func keysState(ok bool) string {
	if ok {
		return "keys among them"
	}
	return "no keys entry"
}

// SecretData is the ciliumpassword secret's data for k: "keys: <line>\n",
// the form kOps' docs write (docs/networking/cilium.md). It is checked to
// read back as k.
func (k *Key) SecretData() ([]byte, error) {
	data := []byte(SecretKey + ": " + k.Line() + "\n")
	back, err := ParseSecret(data)
	if err != nil {
		return nil, fmt.Errorf("the new ciliumpassword document does not read back: %w", err)
	}
	if back.Line() != k.Line() {
		return nil, fmt.Errorf("the new ciliumpassword document reads back as %s, not %s", back, k)
	}
	return data, nil
}

func names[V any](m map[string]V) string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func sizeList(sizes []int) string {
	var out []string
	for _, s := range sizes {
		out = append(out, strconv.Itoa(s))
	}
	return strings.Join(out, ", ") + " bytes"
}
