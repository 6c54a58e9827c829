package jwks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

func load(t *testing.T, name string) *Set {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// membersOf returns each member's raw bytes, with insignificant whitespace
// between tokens removed (the document may be re-indented; member values
// must not change).
func membersOf(t *testing.T, raw []byte) map[string]string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range m {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			t.Fatal(err)
		}
		out[k] = b.String()
	}
	return out
}

func reparse(t *testing.T, s *Set) *Set {
	t.Helper()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatalf("written set does not parse: %v\n%s", err, b)
	}
	return out
}

func TestLayoutsAndRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		file   string
		layout Layout
		active string
	}{
		{"diracx.json", LayoutDiracX, "0196af4d311579728287cb89c24514e9"},
		// No key has "use":"default": Slurm signs with the first.
		{"slurm.json", LayoutSlurm, "1f0e3dad-9990-4b2c-8a3e-2f1c0b6a7d15"},
		{"slurm-schedmd.json", LayoutSlurm, "key-identifier-2"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			orig, _ := os.ReadFile("testdata/" + tt.file)
			s := load(t, tt.file)
			r := NewRing(s, "", nil)
			if r.Layout != tt.layout {
				t.Fatalf("layout %s, want %s", r.Layout, tt.layout)
			}
			if got := s.Keys[r.ActiveIndex()].KID; got != tt.active {
				t.Errorf("active kid %s, want %s", got, tt.active)
			}
			out, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(orig) {
				t.Errorf("untouched set is not written back byte for byte:\n%s\nwant\n%s", out, orig)
			}
		})
	}
}

func TestDiracXAddPromoteKeepsOtherKeysIntact(t *testing.T) {
	s := load(t, "diracx.json")
	before := []map[string]string{membersOf(t, s.Keys[0].Raw), membersOf(t, s.Keys[1].Raw)}
	r := NewRing(s, "", nil)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	k, err := r.Add(AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s = reparse(t, s)
	r.Set = s
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(k.KID) {
		t.Errorf("new kid %q is not uuid7 hex", k.KID)
	}
	if _, ok := KIDTime(k.KID); !ok {
		t.Error("new kid carries no time")
	}
	m := membersOf(t, s.Keys[1].Raw)
	if s.Keys[1].KID != k.KID || m["alg"] != `"Ed25519"` || m["key_ops"] != `["verify"]` || m["kty"] != `"OKP"` {
		t.Errorf("new key: position %d, members %v", s.Find(k.KID), keysOf(m))
	}
	if r.State(1) != StateNext || r.ActiveIndex() != 0 {
		t.Errorf("after add: state %s, active %d", r.State(1), r.ActiveIndex())
	}
	if got := membersOf(t, s.Keys[0].Raw); !equal(got, before[0]) || !equal(membersOf(t, s.Keys[2].Raw), before[1]) {
		t.Error("add changed an existing key")
	}

	if changed, err := r.Promote(r.NewestNext()); err != nil || !changed {
		t.Fatal(changed, err)
	}
	s = reparse(t, s)
	r.Set = s
	if s.Keys[0].KID != k.KID || membersOf(t, s.Keys[0].Raw)["key_ops"] != `["sign","verify"]` {
		t.Errorf("promoted key not first with sign: %v", s.Keys[0].KID)
	}
	old := membersOf(t, s.Keys[1].Raw)
	if old["key_ops"] != `["verify"]` {
		t.Errorf("old signing key still signs: %s", old["key_ops"])
	}
	delete(old, "key_ops")
	delete(before[0], "key_ops")
	if !equal(old, before[0]) {
		t.Error("promote changed more than key_ops of the old signing key")
	}
	if !equal(membersOf(t, s.Keys[2].Raw), before[1]) || membersOf(t, s.Keys[2].Raw)["x-operator-note"] != `"kept as is"` {
		t.Error("promote changed an untouched key or dropped an unknown member")
	}
	if changed, _ := r.Promote(k.KID); changed {
		t.Error("promoting the signing key again changed something")
	}
}

func TestSlurmAddPromoteKeepsFormat(t *testing.T) {
	s := load(t, "slurm.json")
	r := NewRing(s, "", nil)
	k, err := r.Add(AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Keys) != 3 || s.Keys[2].KID != k.KID || r.State(2) != StateNext || r.ActiveIndex() != 0 {
		t.Fatalf("new Slurm key must go last, and the first key keep signing")
	}
	if _, hasUse := membersOf(t, k.Raw)["use"]; hasUse {
		t.Error("a new Slurm key must have no use: it would sign at once")
	}
	m := membersOf(t, k.Raw)
	var kv string
	_ = json.Unmarshal([]byte(m["k"]), &kv)
	secret, err := base64.StdEncoding.DecodeString(kv)
	if err != nil || len(secret) != 2048 || !strings.HasSuffix(kv, "=") && len(kv)%4 != 0 {
		t.Errorf("k is not padded standard base64 of 2048 bytes")
	}
	if !regexp.MustCompile(`^"[0-9a-f]{8}-[0-9a-f]{4}-4`).MatchString(m["kid"]) || m["alg"] != `"HS256"` || m["kty"] != `"oct"` {
		t.Errorf("new Slurm key members: %v", keysOf(m))
	}
	if _, err := r.Promote(k.KID); err != nil {
		t.Fatal(err)
	}
	if s.Keys[2].KID != k.KID || membersOf(t, s.Keys[2].Raw)["use"] != `"default"` || r.ActiveIndex() != 2 {
		t.Error(`promoted Slurm key must stay last and carry "use":"default"`)
	}
	orig := load(t, "slurm.json")
	for i, o := range orig.Keys {
		if got := s.Keys[i]; string(got.Raw) != string(o.Raw) {
			t.Errorf("kid %s changed or moved", o.KID)
		}
	}
	if _, err := r.Add(AddOptions{Alg: AlgES256}); err == nil || !strings.Contains(err.Error(), "HS256 keys only") {
		t.Errorf("ES256 in the Slurm layout: %v", err)
	}
}

func TestDeleteGuards(t *testing.T) {
	s := load(t, "diracx.json")
	r := NewRing(s, "", nil)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	active, retired := "0196af4d311579728287cb89c24514e9", "0196af4d0ab27b1299dff55b8617991d"
	tests := []struct {
		kid   string
		force bool
		want  string
	}{
		{active, true, "is the signing key"},
		{retired, false, "when it stopped signing is not recorded"},
		{"nope", false, `no key with kid "nope" (kids: ` + active + ", " + retired + ")"},
	}
	for _, tt := range tests {
		if err := r.Delete(tt.kid, 24*time.Hour, tt.force); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Delete(%s) = %v, want %q", tt.kid, err, tt.want)
		}
	}
	k, _ := r.Add(AddOptions{})
	if _, err := r.Promote(k.KID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if err := r.Delete(active, 24*time.Hour, false); err == nil || !strings.Contains(err.Error(), "stopped signing 2h0m0s ago, less than the 24h0m0s overlap") {
		t.Errorf("delete within overlap: %v", err)
	}
	now = now.Add(23 * time.Hour)
	if gone := r.Prune(24 * time.Hour); len(gone) != 1 || gone[0] != active {
		t.Errorf("prune after the overlap removed %v", gone)
	}
	if err := r.Delete(retired, 24*time.Hour, true); err != nil {
		t.Errorf("--force: %v", err)
	}
	if len(s.Keys) != 1 || s.Keys[0].KID != k.KID {
		t.Errorf("left %d keys", len(s.Keys))
	}
	if _, err := r.Retire(k.KID); err == nil {
		t.Error("retired the signing key")
	}
}

func TestPublicHasNoSecrets(t *testing.T) {
	for _, file := range []string{"diracx.json", "slurm.json"} {
		r := NewRing(load(t, file), "", nil)
		pub, err := r.Public()
		if err != nil {
			t.Fatal(err)
		}
		for _, member := range []string{`"d"`, `"k"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
			if strings.Contains(string(pub), member) {
				t.Errorf("%s: public set has private member %s", file, member)
			}
		}
		set, err := jwk.Parse(pub)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"diracx.json": 2, "slurm.json": 0}[file]
		if set.Len() != want {
			t.Errorf("%s: public set has %d keys, want %d (oct keys left out)", file, set.Len(), want)
		}
	}
}

func TestBadSets(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"malformed", `{"keys": [`, "is not valid JSON"},
		{"no keys", `{"k": []}`, `has no "keys" member`},
		{"keys not array", `{"keys": {}}`, "is not an array"},
		{"bad key", `{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a"}, {"kty": "RSA", "kid": "bad-rsa"}]}`, `key 0 (kid "a") is not a valid JWK`},
		{"no kid", `{"keys": [{"kty": "oct", "k": "AAAA"}]}`, "key 0 has no kid"},
		{"duplicate", `{"keys": [{"kty": "oct", "k": "AAAA", "kid": "x"}, {"kty": "oct", "k": "BBBB", "kid": "x"}]}`, `keys 0 and 1 have the same kid "x"`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "AAAA") {
			t.Errorf("%s: error quotes key material", tt.name)
		}
	}
	r := NewRing(&Set{doc: []byte(`{"keys":[]}`), sep: ","}, "", nil)
	if _, err := r.Promote("x"); err == nil || !strings.Contains(err.Error(), "the key set is empty") {
		t.Errorf("promote on empty set: %v", err)
	}
}

// TestTokenContinuity signs a token with the signing key before and after
// each step and checks, with the set verifiers would see at that step,
// that current tokens verify and the old key's tokens verify until that
// key is deleted, and fail after.
func TestTokenContinuity(t *testing.T) {
	for _, tt := range []struct {
		alg    Alg
		layout Layout
	}{{AlgEdDSA, LayoutDiracX}, {AlgEdDSA, LayoutGeneric}, {AlgES256, LayoutGeneric}, {AlgRS256, LayoutGeneric}, {AlgHS256, LayoutSlurm}} {
		t.Run(string(tt.alg)+"/"+string(tt.layout), func(t *testing.T) {
			r := NewRing(&Set{doc: []byte(`{"keys":[]}`), sep: ","}, tt.layout, nil)
			now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			r.Now = func() time.Time { return now }
			first, err := r.Add(AddOptions{Alg: tt.alg})
			if err != nil {
				t.Fatal(err)
			}
			oldToken := sign(t, r)
			verifies := func(step, token string, want bool) {
				t.Helper()
				set := verifierSet(t, r)
				_, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true))
				if (err == nil) != want {
					t.Errorf("%s: verification = %v, want ok=%v", step, err, want)
				}
			}
			next, err := r.Add(AddOptions{Alg: tt.alg})
			if err != nil {
				t.Fatal(err)
			}
			verifies("after add", oldToken, true)
			if tok := sign(t, r); !strings.Contains(headerKID(t, tok), first.KID) {
				t.Error("after add, the new key signs already")
			}
			if _, err := r.Promote(next.KID); err != nil {
				t.Fatal(err)
			}
			newToken := sign(t, r)
			if !strings.Contains(headerKID(t, newToken), next.KID) {
				t.Error("after promote, the promoted key does not sign")
			}
			verifies("after promote, old token", oldToken, true)
			verifies("after promote, new token", newToken, true)
			now = now.Add(25 * time.Hour)
			if err := r.Delete(first.KID, 24*time.Hour, false); err != nil {
				t.Fatal(err)
			}
			verifies("after delete, old token", oldToken, false)
			verifies("after delete, new token", newToken, true)
		})
	}
}

// sign signs a token with the ring's signing key.
func sign(t *testing.T, r *Ring) string {
	t.Helper()
	k := r.Set.Keys[r.ActiveIndex()].JWK
	alg, ok := k.Algorithm()
	if !ok {
		t.Fatal("signing key has no alg")
	}
	sa, _ := jwa.LookupSignatureAlgorithm(alg.String())
	tok, _ := jwt.NewBuilder().Issuer("test").IssuedAt(time.Now()).Build()
	b, err := jwt.Sign(tok, jwt.WithKey(sa, k))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// verifierSet is what verifiers load: the public set, or for symmetric
// keys (which have no public form) the set itself. Slurm looks a token's
// kid up in its file and ignores "use", which jwx would enforce
// ("default" is no "sig"): its keys go in without use.
func verifierSet(t *testing.T, r *Ring) jwk.Set {
	t.Helper()
	if r.Layout == LayoutSlurm {
		set := jwk.NewSet()
		for _, k := range r.Set.Keys {
			raw, _, err := values.DeleteJSONMember(k.Raw, "use")
			if err != nil {
				t.Fatal(err)
			}
			key, err := jwk.ParseKey(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := set.AddKey(key); err != nil {
				t.Fatal(err)
			}
		}
		return set
	}
	b, err := r.Public()
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(token, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func FuzzParseAndEdit(f *testing.F) {
	for _, name := range []string{"diracx.json", "slurm.json"} {
		b, _ := os.ReadFile("testdata/" + name)
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"x","key_ops":["sign"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		r := NewRing(s, "", nil)
		_ = r.Rows()
		_, _ = r.Public()
		if len(s.Keys) > 0 {
			_, _ = r.Promote(s.Keys[len(s.Keys)-1].KID)
			_, _ = r.Retire(s.Keys[0].KID)
			_ = r.Delete(s.Keys[0].KID, time.Hour, true)
		}
		if _, err := s.Marshal(); err != nil {
			return
		}
	})
}

// Advance, run once per deploy, walks a key set through the rotation one
// safe step at a time.
func TestAdvanceOneStepPerRun(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r := NewRing(load(t, "diracx.json"), "", nil)
	r.Now = func() time.Time { return now }
	oldSigning := r.Set.Keys[r.ActiveIndex()].KID
	n := len(r.Set.Keys)
	steps := []struct {
		name        string
		due         bool
		after       time.Duration
		check       func(Step) bool
		activeIsOld bool
	}{
		{"not due: nothing", false, 0, func(s Step) bool { return !s.Changed() }, true},
		{"due: publish next", true, 0, func(s Step) bool { return s.Added != "" && s.Promoted == "" }, true},
		{"still due: promote it", true, time.Hour, func(s Step) bool { return s.Promoted != "" && s.Added == "" }, false},
		{"overlap not passed: keep retiring", false, 12 * time.Hour, func(s Step) bool { return !s.Changed() }, false},
		{"overlap passed: delete", false, 48 * time.Hour, func(s Step) bool { return len(s.Deleted) == 1 && s.Deleted[0] == oldSigning }, false},
	}
	for _, st := range steps {
		now = now.Add(st.after)
		got, err := r.Advance(st.due, 24*time.Hour, AddOptions{})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !st.check(got) {
			t.Fatalf("%s: step %+v", st.name, got)
		}
		if isOld := r.Set.Keys[r.ActiveIndex()].KID == oldSigning; isOld != st.activeIsOld {
			t.Fatalf("%s: signing key is the old one: %v", st.name, isOld)
		}
	}
	if len(r.Set.Keys) != n {
		t.Errorf("%d keys after a full rotation, want %d (one added, one deleted)", len(r.Set.Keys), n)
	}
}
