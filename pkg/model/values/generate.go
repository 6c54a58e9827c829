// Package values makes and edits secret values: random generators, the
// password part of connection URLs, one field of a JSON document, hashed
// token pairs, and the short fingerprints that records show instead of
// values. Nothing in this package prints or logs a value, and no error it
// returns contains one.
package values

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Generator makes new random values.
type Generator interface {
	// Generate returns a new value.
	Generate() ([]byte, error)
	// String returns the spec the generator was parsed from.
	String() string
}

// Minimum sizes: fewer random bytes than this are guessable.
const (
	MinRandomBytes    = 16
	MinPasswordLength = 12
	maxSize           = 8192
)

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// SpecHelp lists the accepted generator specs, for flag help and errors.
const SpecHelp = "random:N (N random bytes, standard base64), hex:N (N random bytes, hex), base64url:N (N random bytes, unpadded base64url), password:N (N alphanumeric characters) or uuid"

// ParseSpec parses a generator spec such as random:32 or password:24.
func ParseSpec(spec string) (Generator, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	switch kind {
	case "uuid":
		if hasArg {
			return nil, fmt.Errorf("generator %q: uuid takes no size: use uuid", spec)
		}
		return uuidGen{}, nil
	case "random", "hex", "base64url", "password":
	default:
		return nil, fmt.Errorf("generator %q is unknown: use %s", spec, SpecHelp)
	}
	if !hasArg || arg == "" {
		return nil, fmt.Errorf("generator %q needs a size: use %s:N, for example %s:32", spec, kind, kind)
	}
	n, err := strconv.Atoi(arg)
	if err != nil {
		return nil, fmt.Errorf("generator %q: size %q is not a whole number", spec, arg)
	}
	min := MinRandomBytes
	unit := "bytes"
	if kind == "password" {
		min, unit = MinPasswordLength, "characters"
	}
	if n < min || n > maxSize {
		return nil, fmt.Errorf("generator %q: size must be between %d and %d %s", spec, min, maxSize, unit)
	}
	return sizedGen{kind: kind, n: n}, nil
}

type sizedGen struct {
	kind string
	n    int
}

func (g sizedGen) String() string { return g.kind + ":" + strconv.Itoa(g.n) }

func (g sizedGen) Generate() ([]byte, error) {
	if g.kind == "password" {
		return Password(g.n)
	}
	b := make([]byte, g.n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	switch g.kind {
	case "hex":
		return []byte(hex.EncodeToString(b)), nil
	case "base64url":
		return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
	default:
		return []byte(base64.StdEncoding.EncodeToString(b)), nil
	}
}

type uuidGen struct{}

func (uuidGen) String() string { return "uuid" }

func (uuidGen) Generate() ([]byte, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("generating uuid: %w", err)
	}
	return []byte(u.String()), nil
}

// Password returns n characters drawn uniformly from [A-Za-z0-9]. The
// alphabet needs no escaping in URLs, JSON, shells or YAML.
func Password(n int) ([]byte, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphanumeric)))
	for i := range out {
		j, err := rand.Int(rand.Reader, max)
		if err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
		out[i] = alphanumeric[j.Int64()]
	}
	return out, nil
}
