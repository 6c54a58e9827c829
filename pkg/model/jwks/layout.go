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
	// LayoutDiracX: OKP Ed25519 keys with "alg":"Ed25519" (or "EdDSA")
	// and key_ops, kid a uuid7 in 32 hex digits; the first key whose
	// key_ops hold "sign" signs (the tool keeps it first).
	LayoutDiracX Layout = "diracx"
	// LayoutSlurm: oct HS256 keys (kid free text; new kids are uuid4s,
	// "k" padded standard base64, as Charmed HPC writes them); the key
	// whose use is "default" signs, else the first key.
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

// DetectLayout works out the layout from the keys' members, as each
// system documents its set: DiracX keys carry key_ops and 32-hex kids (or
// an Ed25519 alg); Slurm keys (SchedMD's slurm.jwks) are oct HS256 in any
// case, with free-text kids, no key_ops and at most "use":"default", and
// may carry exp. An empty or mixed set is generic.
func DetectLayout(s *Set) Layout {
	if len(s.Keys) == 0 {
		return LayoutGeneric
	}
	diracx, slurm := true, true
	for _, k := range s.Keys {
		v := viewOf(k)
		if !(v.hasOps && (hex32.MatchString(k.KID) || v.alg == "Ed25519" || v.alg == "EdDSA" && v.kty == "OKP")) {
			diracx = false
		}
		if !v.slurmKey() {
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
