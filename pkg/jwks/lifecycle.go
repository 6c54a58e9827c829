package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Ring is a key set with its layout and the tool's records of its keys.
type Ring struct {
	Set     *Set
	Layout  Layout
	Records Records
	Now     func() time.Time
}

// NewRing wraps a parsed set. layout "" detects it from the set.
func NewRing(s *Set, layout Layout, rec Records) *Ring {
	if layout == "" {
		layout = DetectLayout(s)
	}
	if rec == nil {
		rec = Records{}
	}
	return &Ring{Set: s, Layout: layout, Records: rec, Now: time.Now}
}

// ActiveIndex returns the index of the signing key, or -1 for an empty set.
// DiracX: the first key whose key_ops hold "sign"; Slurm: the last key;
// generic: the key recorded active, else the first.
func (r *Ring) ActiveIndex() int {
	n := len(r.Set.Keys)
	if n == 0 {
		return -1
	}
	switch r.Layout {
	case LayoutDiracX:
		for i, k := range r.Set.Keys {
			if slices.Contains(keyOps(k), "sign") {
				return i
			}
		}
		return 0
	case LayoutSlurm:
		return n - 1
	}
	for i, k := range r.Set.Keys {
		if r.Records[k.KID].State == StateActive {
			return i
		}
	}
	return 0
}

// State returns the state of the key at index i.
func (r *Ring) State(i int) State {
	if i == r.ActiveIndex() {
		return StateActive
	}
	if r.Records[r.Set.Keys[i].KID].State == StateNext {
		return StateNext
	}
	return StateRetiring
}

// Created returns when a key was made and where that comes from:
// "kid" (uuid7), "record", or "" when unknown.
func (r *Ring) Created(k *Key) (time.Time, string) {
	if t, ok := KIDTime(k.KID); ok {
		return t, "kid"
	}
	if c := r.Records[k.KID].Created; c != nil {
		return *c, "record"
	}
	return time.Time{}, ""
}

// Alg names a key algorithm for Add.
type Alg string

// Algorithms Add can generate.
const (
	AlgEdDSA Alg = "EdDSA"
	AlgES256 Alg = "ES256"
	AlgRS256 Alg = "RS256"
	AlgHS256 Alg = "HS256"
)

// KIDScheme says how Add names a key.
type KIDScheme string

// KID schemes.
const (
	KIDUUID7      KIDScheme = "uuid7"
	KIDUUID4      KIDScheme = "uuid4"
	KIDThumbprint KIDScheme = "thumbprint"
)

// AddOptions of Add; zero values take the layout's defaults.
type AddOptions struct {
	Alg    Alg
	Scheme KIDScheme
}

// Defaults returns the algorithm and kid scheme a layout uses.
func (l Layout) Defaults() (Alg, KIDScheme) {
	switch l {
	case LayoutDiracX:
		return AlgEdDSA, KIDUUID7
	case LayoutSlurm:
		return AlgHS256, KIDUUID4
	}
	return AlgEdDSA, KIDUUID7
}

// Add generates a key and publishes it in state next (verifiers learn it
// before anyone signs with it); in an empty set it becomes the signing key.
func (r *Ring) Add(o AddOptions) (*Key, error) {
	defAlg, defScheme := r.Layout.Defaults()
	if o.Alg == "" {
		o.Alg = defAlg
	}
	if o.Scheme == "" {
		o.Scheme = defScheme
	}
	if r.Layout == LayoutSlurm && o.Alg != AlgHS256 {
		return nil, fmt.Errorf("the Slurm layout holds HS256 keys only: use --alg HS256, or --layout generic")
	}
	if r.Layout == LayoutDiracX && o.Alg != AlgEdDSA {
		return nil, fmt.Errorf("the DiracX layout holds Ed25519 keys only: use --alg EdDSA, or --layout generic")
	}
	first := len(r.Set.Keys) == 0
	raw, kid, err := r.newKeyJSON(o, first)
	if err != nil {
		return nil, err
	}
	if r.Set.Find(kid) >= 0 {
		return nil, fmt.Errorf("a key with kid %q exists already", kid)
	}
	k, err := parseKey(r.Set.styled(raw), len(r.Set.Keys))
	if err != nil {
		return nil, fmt.Errorf("generated key does not parse: %w", err)
	}
	now := r.Now().UTC().Truncate(time.Second)
	state := StateNext
	if first {
		state = StateActive
	}
	r.Records[kid] = KeyRecord{State: state, Created: &now}
	at := len(r.Set.Keys) // generic: newest last
	switch {
	case first:
		at = 0
	case r.Layout == LayoutDiracX:
		at = r.ActiveIndex() + 1 // right after the signing key, which stays first
	case r.Layout == LayoutSlurm:
		at = len(r.Set.Keys) - 1 // before the signing key, which stays last
	}
	r.Set.Keys = slices.Insert(r.Set.Keys, at, k)
	return k, nil
}

// newKeyJSON generates a key and writes it in the layout's style.
func (r *Ring) newKeyJSON(o AddOptions, signing bool) ([]byte, string, error) {
	if r.Layout == LayoutSlurm {
		// As Charmed HPC writes them: 2048 random bytes, padded std base64.
		secret := make([]byte, 2048)
		if _, err := rand.Read(secret); err != nil {
			return nil, "", err
		}
		kid, err := newKID(o.Scheme, nil)
		if err != nil {
			return nil, "", err
		}
		b, err := json.Marshal(struct {
			Alg string `json:"alg"`
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			K   string `json:"k"`
		}{"HS256", "oct", kid, base64.StdEncoding.EncodeToString(secret)})
		return b, kid, err
	}
	var rawKey any
	var alg jwa.SignatureAlgorithm
	switch o.Alg {
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		rawKey, alg = priv, jwa.EdDSA()
		if r.Layout == LayoutDiracX {
			alg = jwa.EdDSAEd25519()
		}
	case AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, "", err
		}
		rawKey, alg = priv, jwa.ES256()
	case AlgRS256:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, "", err
		}
		rawKey, alg = priv, jwa.RS256()
	case AlgHS256:
		secret := make([]byte, 64)
		if _, err := rand.Read(secret); err != nil {
			return nil, "", err
		}
		rawKey, alg = secret, jwa.HS256()
	default:
		return nil, "", fmt.Errorf("--alg %q is not supported: use EdDSA, ES256, RS256 or HS256", o.Alg)
	}
	key, err := jwk.Import(rawKey)
	if err != nil {
		return nil, "", err
	}
	kid, err := newKID(o.Scheme, key)
	if err != nil {
		return nil, "", err
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, "", err
	}
	if err := key.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, "", err
	}
	if r.Layout == LayoutDiracX {
		ops := jwk.KeyOperationList{jwk.KeyOpVerify}
		if signing {
			ops = jwk.KeyOperationList{jwk.KeyOpSign, jwk.KeyOpVerify}
		}
		if err := key.Set(jwk.KeyOpsKey, ops); err != nil {
			return nil, "", err
		}
	} else if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, "", err
	}
	b, err := json.Marshal(key)
	return b, kid, err
}

func newKID(s KIDScheme, key jwk.Key) (string, error) {
	switch s {
	case KIDUUID7:
		u, err := uuid.NewV7()
		return strings.ReplaceAll(u.String(), "-", ""), err
	case KIDUUID4:
		u, err := uuid.NewRandom()
		return u.String(), err
	case KIDThumbprint:
		if key == nil {
			return "", errors.New("--kid-scheme thumbprint needs an asymmetric or jwx-generated key: use uuid4 or uuid7 for this layout")
		}
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(tp), nil
	}
	return "", fmt.Errorf("--kid-scheme %q is not supported: use uuid7, uuid4 or thumbprint", s)
}

// NewestNext returns the kid of the most recently created next key, or "".
func (r *Ring) NewestNext() string {
	best, bestT := "", time.Time{}
	for i, k := range r.Set.Keys {
		if r.State(i) != StateNext {
			continue
		}
		t, _ := r.Created(k)
		if best == "" || t.After(bestT) {
			best, bestT = k.KID, t
		}
	}
	return best
}

// Promote makes kid the signing key; the previous signing key keeps
// verifying (retiring). It reports whether anything changed.
func (r *Ring) Promote(kid string) (bool, error) {
	i, err := r.index(kid)
	if err != nil {
		return false, err
	}
	prev := r.ActiveIndex()
	if i == prev {
		return false, nil
	}
	now := r.Now().UTC().Truncate(time.Second)
	oldKey, newKey := r.Set.Keys[prev], r.Set.Keys[i]
	if r.Layout == LayoutDiracX {
		if err := setKeyOps(oldKey, without(keyOps(oldKey), "sign")); err != nil {
			return false, err
		}
		if err := setKeyOps(newKey, union([]string{"sign"}, keyOps(newKey), []string{"verify"})); err != nil {
			return false, err
		}
	}
	r.Set.Keys = slices.Delete(r.Set.Keys, i, i+1)
	if r.Layout == LayoutSlurm {
		r.Set.Keys = append(r.Set.Keys, newKey)
	} else {
		r.Set.Keys = slices.Insert(r.Set.Keys, 0, newKey)
	}
	oldRec := r.Records[oldKey.KID]
	oldRec.State, oldRec.Retired = StateRetiring, &now
	r.Records[oldKey.KID] = oldRec
	newRec := r.Records[newKey.KID]
	newRec.State, newRec.Retired = StateActive, nil
	r.Records[newKey.KID] = newRec
	return true, nil
}

// Retire stops a next key from becoming the signing key; it stays
// published for verification. The signing key cannot be retired.
func (r *Ring) Retire(kid string) (bool, error) {
	i, err := r.index(kid)
	if err != nil {
		return false, err
	}
	switch r.State(i) {
	case StateActive:
		return false, fmt.Errorf("kid %s is the signing key: promote another key first (kubectl rotate jwk promote)", kid)
	case StateRetiring:
		return false, nil
	}
	now := r.Now().UTC().Truncate(time.Second)
	rec := r.Records[kid]
	rec.State, rec.Retired = StateRetiring, &now
	r.Records[kid] = rec
	return true, nil
}

// Delete removes kid. It refuses the signing key, and a retiring key whose
// overlap (time since it stopped signing) is shorter than minOverlap or
// unknown, unless force.
func (r *Ring) Delete(kid string, minOverlap time.Duration, force bool) error {
	i, err := r.index(kid)
	if err != nil {
		return err
	}
	switch r.State(i) {
	case StateActive:
		return fmt.Errorf("kid %s is the signing key: promote another key before deleting it", kid)
	case StateRetiring:
		if force {
			break
		}
		ret := r.Records[kid].Retired
		if ret == nil {
			return fmt.Errorf("kid %s: when it stopped signing is not recorded, so tokens it signed may still be valid; pass --force once they have expired", kid)
		}
		if since := r.Now().Sub(*ret); since < minOverlap {
			return fmt.Errorf("kid %s stopped signing %s ago, less than the %s overlap: tokens it signed may still be in use; wait until %s or pass --force",
				kid, since.Truncate(time.Second), minOverlap, ret.Add(minOverlap).UTC().Format(time.RFC3339))
		}
	}
	r.Set.Keys = slices.Delete(r.Set.Keys, i, i+1)
	delete(r.Records, kid)
	return nil
}

// Prune deletes retiring keys whose overlap has passed olderThan; it
// returns their kids.
func (r *Ring) Prune(olderThan time.Duration) []string {
	var gone []string
	for _, k := range slices.Clone(r.Set.Keys) {
		i := r.Set.Find(k.KID)
		ret := r.Records[k.KID].Retired
		if r.State(i) == StateRetiring && ret != nil && r.Now().Sub(*ret) >= olderThan {
			if r.Delete(k.KID, olderThan, false) == nil {
				gone = append(gone, k.KID)
			}
		}
	}
	return gone
}

func (r *Ring) index(kid string) (int, error) {
	if len(r.Set.Keys) == 0 {
		return -1, errors.New("the key set is empty: add a key first (kubectl rotate jwk add)")
	}
	if i := r.Set.Find(kid); i >= 0 {
		return i, nil
	}
	kids := make([]string, 0, len(r.Set.Keys))
	for _, k := range r.Set.Keys {
		kids = append(kids, k.KID)
	}
	return -1, fmt.Errorf("no key with kid %q (kids: %s)", kid, strings.Join(kids, ", "))
}

// Public returns the public key set verifiers fetch (/.well-known/jwks.json):
// private members removed, symmetric (oct) keys left out entirely.
func (r *Ring) Public() ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range r.Set.Keys {
		if k.JWK.KeyType() == jwa.OctetSeq() {
			continue
		}
		pub, err := jwk.PublicKeyOf(k.JWK)
		if err != nil {
			return nil, fmt.Errorf("kid %s: %w", k.KID, err)
		}
		if err := set.AddKey(pub); err != nil {
			return nil, fmt.Errorf("kid %s: %w", k.KID, err)
		}
	}
	return json.Marshal(set)
}

// Row is one line of `jwk list`: never key material.
type Row struct {
	KID       string     `json:"kid"`
	Kty       string     `json:"kty"`
	Alg       string     `json:"alg,omitempty"`
	Use       string     `json:"use,omitempty"`
	KeyOps    []string   `json:"keyOps,omitempty"`
	State     State      `json:"state"`
	Created   *time.Time `json:"created,omitempty"`
	CreatedBy string     `json:"createdFrom,omitempty"`
	Retired   *time.Time `json:"retired,omitempty"`
}

// Rows lists the keys in set order.
func (r *Ring) Rows() []Row {
	rows := make([]Row, 0, len(r.Set.Keys))
	for i, k := range r.Set.Keys {
		m := members(k)
		row := Row{KID: k.KID, Kty: str(m["kty"]), Alg: str(m["alg"]), Use: str(m["use"]), KeyOps: keyOps(k), State: r.State(i), Retired: r.Records[k.KID].Retired}
		if t, src := r.Created(k); src != "" {
			row.Created, row.CreatedBy = &t, src
		}
		rows = append(rows, row)
	}
	return rows
}

func keyOps(k *Key) []string {
	var ops []string
	_ = json.Unmarshal(members(k)["key_ops"], &ops)
	return ops
}

// setKeyOps rewrites one key's key_ops member and nothing else of it.
func setKeyOps(k *Key, ops []string) error {
	sort.Strings(ops)
	b, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	raw, err := setMember(k.Raw, "key_ops", b)
	if err != nil {
		return fmt.Errorf("kid %s: %w", k.KID, err)
	}
	nk, err := parseKey(raw, 0)
	if err != nil {
		return err
	}
	k.Raw, k.JWK = nk.Raw, nk.JWK
	return nil
}

func without(list []string, s string) []string {
	out := []string{}
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, x := range l {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// Step is what Advance did to a key set.
type Step struct {
	// Added is the kid of a key published as next.
	Added string `json:"added,omitempty"`
	// Promoted is the kid of a next key that became the signing key.
	Promoted string `json:"promoted,omitempty"`
	// Deleted are retiring keys whose overlap had passed.
	Deleted []string `json:"deleted,omitempty"`
}

// Changed reports whether the step changed the set.
func (s Step) Changed() bool { return s.Added != "" || s.Promoted != "" || len(s.Deleted) > 0 }

// String says what the step did, for commit messages and logs.
func (s Step) String() string {
	var parts []string
	if s.Added != "" {
		parts = append(parts, "publish new key "+s.Added+" as next (verifiers learn it before anyone signs with it)")
	}
	if s.Promoted != "" {
		parts = append(parts, "promote key "+s.Promoted+" to signing key")
	}
	if len(s.Deleted) > 0 {
		parts = append(parts, "delete retiring keys past their overlap: "+strings.Join(s.Deleted, ", "))
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, "; ")
}

// Advance takes one unattended step of a rotation, for a key set that is
// deployed between steps (a file kept in a repository, changed through
// pull requests): when the signing key is due, publish a next key, or,
// if one is already published, promote it; and delete retiring keys whose
// overlap (> 0) has passed. One step at a time keeps every deployed set
// safe: verifiers always know a key before anyone signs with it.
func (r *Ring) Advance(signingDue bool, overlap time.Duration, o AddOptions) (Step, error) {
	var st Step
	if overlap > 0 {
		st.Deleted = r.Prune(overlap)
	}
	if !signingDue {
		return st, nil
	}
	if next := r.NewestNext(); next != "" {
		if _, err := r.Promote(next); err != nil {
			return st, err
		}
		st.Promoted = next
		return st, nil
	}
	k, err := r.Add(o)
	if err != nil {
		return st, err
	}
	st.Added = k.KID
	return st, nil
}
