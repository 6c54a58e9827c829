package values

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"text/template"
)

// HashedPair is a token whose SHA-256 is stored on one side (the server's
// Secret) while the plaintext is handed to the client once, as DiracX's
// legacy exchange key is.
type HashedPair struct {
	token []byte
}

// DefaultTokenBytes matches Python's secrets.token_bytes() default.
const DefaultTokenBytes = 32

// NewHashedPair generates a token of n random bytes.
func NewHashedPair(n int) (*HashedPair, error) {
	if n < MinRandomBytes || n > maxSize {
		return nil, fmt.Errorf("token size must be between %d and %d bytes", MinRandomBytes, maxSize)
	}
	t := make([]byte, n)
	if _, err := rand.Read(t); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return &HashedPair{token: t}, nil
}

// Hash returns the lowercase hex SHA-256 of the token: the value stored
// server-side.
func (p *HashedPair) Hash() []byte {
	sum := sha256.Sum256(p.token)
	return []byte(hex.EncodeToString(sum[:]))
}

// TokenForms are the encodings of the token a delivery format can use.
type TokenForms struct {
	// Base64URL is padded URL-safe base64, as Python's urlsafe_b64encode.
	Base64URL string
	// Base64URLRaw is unpadded URL-safe base64.
	Base64URLRaw string
	// Base64 is padded standard base64.
	Base64 string
	// Hex is lowercase hex.
	Hex string
}

// ParseDeliveryFormat checks a delivery format, a text/template over
// TokenForms, for example "diracx:legacy:{{.Base64URL}}".
func ParseDeliveryFormat(format string) (*template.Template, error) {
	t, err := template.New("deliver").Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, fmt.Errorf("delivery format: %w", err)
	}
	// Execute once on dummy data so unknown fields fail before any write.
	if err := t.Execute(&bytes.Buffer{}, TokenForms{}); err != nil {
		return nil, fmt.Errorf("delivery format uses an unknown field: use .Base64URL, .Base64URLRaw, .Base64 or .Hex")
	}
	return t, nil
}

// Plaintext renders the client's form of the token with format.
func (p *HashedPair) Plaintext(format *template.Template) ([]byte, error) {
	var b bytes.Buffer
	err := format.Execute(&b, TokenForms{
		Base64URL:    base64.URLEncoding.EncodeToString(p.token),
		Base64URLRaw: base64.RawURLEncoding.EncodeToString(p.token),
		Base64:       base64.StdEncoding.EncodeToString(p.token),
		Hex:          hex.EncodeToString(p.token),
	})
	if err != nil {
		return nil, fmt.Errorf("rendering delivery format: %w", err)
	}
	return b.Bytes(), nil
}
