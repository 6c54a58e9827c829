package jwks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// The rules by which each upstream system reads a key set. They are the
// upstreams' rules, not the tool's: a key the tool calls active is the key
// the system signs with.
//
// Slurm (SchedMD/slurm src/plugins/auth/slurm/internal.c, _build_key_list
// and _read_keys_file): every key needs a unique free-text kid, kty "oct"
// and alg "HS256" (both compared without case), and a k of at least 16
// bytes in base64 or base64url. The key whose use is "default" (without
// case) signs; two such keys are fatal ("multiple default keys defined");
// with none, the FIRST key of the file signs. A key's optional exp (Unix
// time; a number or a numeric string) makes its tokens rejected after it.
// Verifiers look a token's kid up in their own file.
//
// DiracX (diracx-logic src/diracx/logic/auth/token.py, create_token): the
// first key whose key_ops hold "sign" signs, and the token header carries
// that key's alg; with no such key DiracX issues no token ("No signing key
// found in JWKS"). DiracX v0.0.14 and later accept the algs RS256 and
// Ed25519 only (diracx-core settings.py), earlier releases EdDSA.

// view is what the rules read from one key's members.
type view struct {
	kty, alg, use string
	hasUse        bool
	ops           []string
	hasOps        bool
	exp           *time.Time
	expErr        bool
	k             string
}

func viewOf(k *Key) view {
	m := members(k)
	v := view{kty: str(m["kty"]), alg: str(m["alg"]), use: str(m["use"]), k: str(m["k"])}
	_, v.hasUse = m["use"]
	if raw, ok := m["key_ops"]; ok {
		v.hasOps = true
		_ = json.Unmarshal(raw, &v.ops)
	}
	if raw, ok := m["exp"]; ok {
		if t, err := parseExp(raw); err == nil {
			v.exp = &t
		} else {
			v.expErr = true
		}
	}
	return v
}

// parseExp reads Slurm's exp: an integer, or a string holding one
// (data_get_int_converted).
func parseExp(raw json.RawMessage) (time.Time, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, fmt.Errorf("not a number")
		}
		n = json.Number(strings.TrimSpace(s))
	}
	sec, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an integer")
	}
	return time.Unix(sec, 0).UTC(), nil
}

// slurmKey reports whether a key is one Slurm can load: kty oct and alg
// HS256 in any case, no key_ops, use absent or "default".
func (v view) slurmKey() bool {
	return strings.EqualFold(v.kty, "oct") && strings.EqualFold(v.alg, "HS256") && !v.hasOps &&
		(!v.hasUse || strings.EqualFold(v.use, "default"))
}

// octHS256 reports whether a key is a symmetric HS256 key.
func (v view) octHS256() bool {
	return strings.EqualFold(v.kty, "oct") && strings.EqualFold(v.alg, "HS256")
}

// isDefault reports whether Slurm takes the key as its default (signing) key.
func (v view) isDefault() bool { return v.hasUse && strings.EqualFold(v.use, "default") }

// canSign reports whether DiracX may sign with the key.
func (v view) canSign() bool { return slices.Contains(v.ops, "sign") }

// allOctHS256 reports whether a non-empty set holds only oct/HS256 keys:
// a set Slurm could read, where any other key type is fatal to it.
func (s *Set) allOctHS256() bool {
	if len(s.Keys) == 0 {
		return false
	}
	for _, k := range s.Keys {
		if !viewOf(k).octHS256() {
			return false
		}
	}
	return true
}

// slurmSigner returns the index of the key Slurm signs with: the use
// "default" key, else the first; -1 for an empty set.
func (s *Set) slurmSigner() int {
	for i, k := range s.Keys {
		if viewOf(k).isDefault() {
			return i
		}
	}
	if len(s.Keys) == 0 {
		return -1
	}
	return 0
}

// diracxSigner returns the index of the first key whose key_ops hold
// "sign", or -1: then DiracX has no signing key.
func (s *Set) diracxSigner() int {
	for i, k := range s.Keys {
		if viewOf(k).canSign() {
			return i
		}
	}
	return -1
}

// Check returns why the system the set is for would refuse it, or nil. The
// tool never writes a set Check refuses. Slurm: two "use":"default" keys,
// an exp that is no integer, a k shorter than 16 bytes.
func (r *Ring) Check() error {
	if r.Layout != LayoutSlurm {
		return nil
	}
	var defaults []string
	for _, k := range r.Set.Keys {
		v := viewOf(k)
		if v.isDefault() {
			defaults = append(defaults, k.KID)
		}
		if v.expErr {
			return fmt.Errorf("kid %s has an exp that is no integer: Slurm refuses the set (\"invalid value for exp\"); make exp a Unix time or remove it", k.KID)
		}
		if n := decodedLen(v.k); n >= 0 && n < 16 {
			return fmt.Errorf("kid %s has a k of %d bytes: Slurm refuses keys under 16 bytes (\"key lacks sufficient entropy\"); delete it or add a longer key", k.KID, n)
		}
	}
	if len(defaults) > 1 {
		return fmt.Errorf("keys %s both have \"use\":\"default\": Slurm refuses a set with two default keys (\"multiple default keys defined\"); `%s jwk promote KID` keeps it on KID only",
			strings.Join(defaults, " and "), r.tool())
	}
	return nil
}

// decodedLen is the length of a base64 or base64url value, padded or not;
// -1 when it is neither.
func decodedLen(k string) int {
	k = strings.TrimRight(strings.NewReplacer("-", "+", "_", "/").Replace(k), "=")
	b, err := base64.RawStdEncoding.DecodeString(k)
	if err != nil {
		return -1
	}
	return len(b)
}

// Expires returns a Slurm key's exp, or nil (no exp, or not a Slurm set).
func (r *Ring) Expires(k *Key) *time.Time {
	if r.Layout != LayoutSlurm {
		return nil
	}
	return viewOf(k).exp
}

func (r *Ring) expired(k *Key) bool {
	exp := r.Expires(k)
	return exp != nil && !r.Now().Before(*exp)
}

// Warnings says what the system would make of the set that a reader should
// know: a set it refuses, a signing key it rejects, no signing key at all.
// Never key material.
func (r *Ring) Warnings() []string {
	var w []string
	if err := r.Check(); err != nil {
		w = append(w, err.Error())
	}
	active := r.ActiveIndex()
	switch r.Layout {
	case LayoutSlurm:
		if active >= 0 && r.expired(r.Set.Keys[active]) {
			k := r.Set.Keys[active]
			w = append(w, fmt.Sprintf("the signing key %s expired at %s: Slurm rejects every token it signs; add a key and promote it now",
				k.KID, r.Expires(k).Format(time.RFC3339)))
		}
	case LayoutDiracX:
		if active < 0 && len(r.Set.Keys) > 0 {
			msg := "no key has \"sign\" in key_ops: DiracX issues no token (\"No signing key found in JWKS\"); "
			if next := r.NewestNext(); next != "" {
				msg += "`" + r.tool() + " jwk promote` makes the newest next key " + next + " the signing key"
			} else {
				msg += "`" + r.tool() + " jwk promote KID` makes KID the signing key (sign added to its key_ops, the key moved first)"
			}
			w = append(w, msg)
		} else if active >= 0 && viewOf(r.Set.Keys[active]).alg == jwa.EdDSA().String() {
			w = append(w, fmt.Sprintf("the signing key %s has \"alg\":\"EdDSA\": DiracX v0.0.14 and later reject it (they accept Ed25519 and RS256); `%s jwk add --alg Ed25519`, then promote that key",
				r.Set.Keys[active].KID, r.tool()))
		}
	}
	return w
}

// canonical returns a key's JSON with kty and alg spelled as jwx expects
// when they differ from a known name only in case (Slurm compares both
// without case), so that jwx can parse the key; nil when nothing differs.
// The key's own bytes are kept as they are: only jwx sees this copy.
func canonical(item json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return nil
	}
	out, changed := item, false
	fix := func(field string, known []string) {
		got := str(m[field])
		if got == "" || slices.Contains(known, got) {
			return
		}
		for _, name := range known {
			if strings.EqualFold(got, name) {
				b, _ := json.Marshal(name)
				if v, err := setMember(out, field, b); err == nil {
					out, changed = v, true
				}
				return
			}
		}
	}
	var ktys, algs []string
	for _, t := range jwa.KeyTypes() {
		ktys = append(ktys, t.String())
	}
	for _, a := range jwa.SignatureAlgorithms() {
		algs = append(algs, a.String())
	}
	fix("kty", ktys)
	fix("alg", algs)
	if !changed {
		return nil
	}
	return out
}
