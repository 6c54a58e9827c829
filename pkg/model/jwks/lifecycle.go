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

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// Ring is a key set with its layout and the tool's records of its keys.
type Ring struct {
	Set     *Set
	Layout  Layout
	Records Records
	Now     func() time.Time
	// Tool is the name kubectl-rotate runs as (display.KubectlRotate of the
	// caller's context), for the commands messages suggest; "" is
	// display.DefaultKubectlRotate.
	Tool string
	// explicit: the layout was given, not detected.
	explicit bool
}

func (r *Ring) tool() string {
	if r.Tool == "" {
		return display.DefaultKubectlRotate
	}
	return r.Tool
}

// NewRing wraps a parsed set. layout "" detects it from the set.
func NewRing(s *Set, layout Layout, rec Records) *Ring {
	explicit := layout != ""
	if layout == "" {
		layout = DetectLayout(s)
	}
	if rec == nil {
		rec = Records{}
	}
	return &Ring{Set: s, Layout: layout, Records: rec, Now: time.Now, explicit: explicit}
}

// ActiveIndex returns the index of the signing key by the upstream's own
// rule (see rules.go), or -1 when no key signs:
// DiracX: the first key whose key_ops hold "sign", else none;
// Slurm: the key whose use is "default", else the first;
// generic: the key recorded active, else the first.
func (r *Ring) ActiveIndex() int {
	switch r.Layout {
	case LayoutDiracX:
		return r.Set.diracxSigner()
	case LayoutSlurm:
		return r.Set.slurmSigner()
	}
	if len(r.Set.Keys) == 0 {
		return -1
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
	k := r.Set.Keys[i]
	switch {
	case i == r.ActiveIndex():
		return StateActive
	case r.expired(k):
		return StateExpired
	case r.Records[k.KID].State == StateNext:
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

// Algorithms Add can generate. Ed25519 and EdDSA make the same kind of key
// (OKP Ed25519) and differ in the alg written: DiracX v0.0.14 and later
// accept Ed25519 only.
const (
	AlgEdDSA   Alg = "EdDSA"
	AlgEd25519 Alg = "Ed25519"
	AlgES256   Alg = "ES256"
	AlgRS256   Alg = "RS256"
	AlgHS256   Alg = "HS256"
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
		return AlgEd25519, KIDUUID7
	case LayoutSlurm:
		return AlgHS256, KIDUUID4
	}
	return AlgEdDSA, KIDUUID7
}

// ErrEmptyUnknownLayout: a key cannot be added to an empty set whose layout
// was not given, since nothing in it says which system reads it.
var ErrEmptyUnknownLayout = errors.New("the key set is empty, so its layout cannot be detected: give it with --layout diracx, slurm or generic (jwks.layout in a plan)")

// Add generates a key and publishes it in state next: verifiers learn it
// before anyone signs with it, and who signs does not change. In an empty
// set (layout given) it becomes the signing key.
//
// Slurm: appended last without use, so the use "default" key, else the
// first key, keeps signing. DiracX: key_ops ["verify"], right after the
// signing key, with the signing key's alg (EdDSA or Ed25519) unless
// o.Alg says otherwise. Generic: appended last.
func (r *Ring) Add(o AddOptions) (*Key, error) {
	first := len(r.Set.Keys) == 0
	if first && !r.explicit {
		return nil, ErrEmptyUnknownLayout
	}
	defAlg, defScheme := r.Layout.Defaults()
	if r.Layout == LayoutDiracX {
		if i := r.ActiveIndex(); i >= 0 && viewOf(r.Set.Keys[i]).alg == string(AlgEdDSA) {
			defAlg = AlgEdDSA
		}
	}
	if o.Alg == "" {
		o.Alg = defAlg
	}
	if o.Scheme == "" {
		o.Scheme = defScheme
	}
	if r.Layout == LayoutSlurm && o.Alg != AlgHS256 {
		return nil, fmt.Errorf("the Slurm layout holds HS256 keys only: use --alg HS256, or --layout generic")
	}
	if o.Alg != AlgHS256 && r.Set.allOctHS256() {
		return nil, fmt.Errorf("every key of this set is oct/HS256, as Slurm reads them: a %s key would stop Slurm at its next start (\"kty field must be oct\"); use --alg HS256, or keep %s keys in another set", o.Alg, o.Alg)
	}
	if r.Layout == LayoutDiracX && o.Alg != AlgEd25519 && o.Alg != AlgEdDSA {
		return nil, fmt.Errorf("the DiracX layout holds Ed25519 keys only: use --alg Ed25519 (or EdDSA for DiracX before v0.0.14), or --layout generic")
	}
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
	at := len(r.Set.Keys) // Slurm and generic: newest last
	if r.Layout == LayoutDiracX {
		at = r.ActiveIndex() + 1 // right after the signing key (first, or none)
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
	case AlgEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		rawKey, alg = priv, jwa.EdDSAEd25519()
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
		return nil, "", o.Check()
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
	return "", AddOptions{Scheme: s}.Check()
}

// Check refuses an algorithm or kid scheme Add cannot make ("" is the
// layout's default), so that a command can refuse it before reading a set.
func (o AddOptions) Check() error {
	switch o.Alg {
	case "", AlgEdDSA, AlgEd25519, AlgES256, AlgRS256, AlgHS256:
	default:
		return fmt.Errorf("--alg %q is not supported: use Ed25519, EdDSA, ES256, RS256 or HS256", o.Alg)
	}
	switch o.Scheme {
	case "", KIDUUID7, KIDUUID4, KIDThumbprint:
	default:
		return fmt.Errorf("--kid-scheme %q is not supported: use uuid7, uuid4 or thumbprint", o.Scheme)
	}
	return nil
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
//
// Slurm: "use":"default" on kid and no use on any other key, the order
// kept (Charmed HPC keeps the last key when it cleans up). DiracX: "sign"
// moves to kid's key_ops and kid moves first. Generic: kid moves first.
func (r *Ring) Promote(kid string) (bool, error) {
	i, err := r.index(kid)
	if err != nil {
		return false, err
	}
	newKey := r.Set.Keys[i]
	if r.expired(newKey) {
		return false, fmt.Errorf("kid %s expired at %s: Slurm rejects its tokens; add a new key and promote that", kid, r.Expires(newKey).Format(time.RFC3339))
	}
	prev := r.ActiveIndex()
	if i == prev && (r.Layout != LayoutSlurm || r.onlyDefault(i)) {
		return false, nil
	}
	var oldKey *Key
	if prev >= 0 && prev != i {
		oldKey = r.Set.Keys[prev]
	}
	now := r.Now().UTC().Truncate(time.Second)
	switch r.Layout {
	case LayoutSlurm:
		for j, k := range r.Set.Keys {
			if j == i {
				err = setRaw(k, func(raw json.RawMessage) (json.RawMessage, error) { return setMember(raw, "use", []byte(`"default"`)) })
			} else {
				err = setRaw(k, func(raw json.RawMessage) (json.RawMessage, error) {
					out, _, err := values.DeleteJSONMember(raw, "use")
					return out, err
				})
			}
			if err != nil {
				return false, err
			}
		}
	case LayoutDiracX:
		if prev >= 0 {
			if err := setKeyOps(r.Set.Keys[prev], without(keyOps(r.Set.Keys[prev]), "sign")); err != nil {
				return false, err
			}
		}
		if err := setKeyOps(newKey, union([]string{"sign"}, keyOps(newKey), []string{"verify"})); err != nil {
			return false, err
		}
		fallthrough
	default:
		r.Set.Keys = slices.Delete(r.Set.Keys, i, i+1)
		r.Set.Keys = slices.Insert(r.Set.Keys, 0, newKey)
	}
	if oldKey != nil {
		oldRec := r.Records[oldKey.KID]
		oldRec.State, oldRec.Retired = StateRetiring, &now
		r.Records[oldKey.KID] = oldRec
	}
	newRec := r.Records[newKey.KID]
	newRec.State, newRec.Retired = StateActive, nil
	r.Records[newKey.KID] = newRec
	return true, nil
}

// onlyDefault reports whether the key at i is the one and only key with a
// use member, and that use is "default": Promote has nothing to change.
func (r *Ring) onlyDefault(i int) bool {
	for j, k := range r.Set.Keys {
		v := viewOf(k)
		if (j == i) != v.hasUse || (j == i && !v.isDefault()) {
			return false
		}
	}
	return true
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
		return false, fmt.Errorf("kid %s is the signing key: promote another key first (%s jwk promote)", kid, r.tool())
	case StateRetiring, StateExpired:
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
// unknown, unless force. An expired key (Slurm's exp has passed) goes
// without an overlap: Slurm rejects its tokens already.
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

// Prune deletes retiring keys whose overlap has passed olderThan, and
// expired keys; it returns their kids.
func (r *Ring) Prune(olderThan time.Duration) []string {
	var gone []string
	for _, k := range slices.Clone(r.Set.Keys) {
		i := r.Set.Find(k.KID)
		ret := r.Records[k.KID].Retired
		st := r.State(i)
		if st == StateExpired || st == StateRetiring && ret != nil && r.Now().Sub(*ret) >= olderThan {
			if r.Delete(k.KID, olderThan, false) == nil {
				gone = append(gone, k.KID)
			}
		}
	}
	return gone
}

func (r *Ring) index(kid string) (int, error) {
	if len(r.Set.Keys) == 0 {
		return -1, fmt.Errorf("the key set is empty: add a key first (%s jwk add)", r.tool())
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

// Row is one key as `jwk list` shows it: a KeySet record's key.
type Row = v1alpha1.KeyRow

// Rows lists the keys in set order.
func (r *Ring) Rows() []Row {
	rows := make([]Row, 0, len(r.Set.Keys))
	for i, k := range r.Set.Keys {
		m := members(k)
		row := Row{KID: k.KID, Kty: str(m["kty"]), Alg: str(m["alg"]), Use: str(m["use"]), KeyOps: keyOps(k), State: r.State(i),
			Retired: v1alpha1.TimePtr(r.Records[k.KID].Retired), Expires: v1alpha1.TimePtr(r.Expires(k))}
		if t, src := r.Created(k); src != "" {
			row.Created, row.CreatedBy = v1alpha1.TimePtr(&t), src
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
	return setRaw(k, func(raw json.RawMessage) (json.RawMessage, error) { return setMember(raw, "key_ops", b) })
}

// setRaw rewrites one key's JSON with edit and parses it again.
func setRaw(k *Key, edit func(json.RawMessage) (json.RawMessage, error)) error {
	raw, err := edit(k.Raw)
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
