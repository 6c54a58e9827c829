package jwks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Layout is how a system arranges its key set.
type Layout string

// Known layouts.
const (
	// LayoutDiracX: OKP Ed25519 keys with "alg":"Ed25519" and key_ops, kid
	// a uuid7 in 32 hex digits; the signing key is first and is the only
	// one whose key_ops hold "sign".
	LayoutDiracX Layout = "diracx"
	// LayoutSlurm: oct HS256 keys, kid a uuid4, "k" in padded standard
	// base64; the newest (signing) key is last.
	LayoutSlurm Layout = "slurm"
	// LayoutGeneric: "use":"sig", RFC 7638 or uuid kids; the signing key
	// is first.
	LayoutGeneric Layout = "generic"
)

// ParseLayout parses --layout.
func ParseLayout(s string) (Layout, error) {
	switch Layout(s) {
	case LayoutDiracX, LayoutSlurm, LayoutGeneric:
		return Layout(s), nil
	}
	return "", fmt.Errorf("--layout %q is not known: use diracx, slurm or generic", s)
}

var (
	hex32   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	dashed  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	members = func(k *Key) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		_ = json.Unmarshal(k.Raw, &m)
		return m
	}
)

// DetectLayout works out the layout from the keys' members: DiracX keys
// carry key_ops and 32-hex kids (or "alg":"Ed25519"); Slurm keys are oct
// HS256 with dashed uuid kids and neither use nor key_ops. An empty or
// mixed set is generic.
func DetectLayout(s *Set) Layout {
	if len(s.Keys) == 0 {
		return LayoutGeneric
	}
	diracx, slurm := true, true
	for _, k := range s.Keys {
		m := members(k)
		alg := str(m["alg"])
		_, hasOps := m["key_ops"]
		_, hasUse := m["use"]
		if !(hasOps && (hex32.MatchString(k.KID) || alg == "Ed25519")) {
			diracx = false
		}
		if !(str(m["kty"]) == "oct" && alg == "HS256" && dashed.MatchString(k.KID) && !hasOps && !hasUse) {
			slurm = false
		}
	}
	switch {
	case diracx:
		return LayoutDiracX
	case slurm:
		return LayoutSlurm
	}
	return LayoutGeneric
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// KIDTime returns the creation time carried by a uuid7 kid (32 hex digits
// or dashed), and false for any other kid.
func KIDTime(kid string) (time.Time, bool) {
	if !hex32.MatchString(kid) && !dashed.MatchString(kid) {
		return time.Time{}, false
	}
	u, err := uuid.Parse(kid)
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	sec, nsec := u.Time().UnixTime()
	return time.Unix(sec, nsec).UTC(), true
}
