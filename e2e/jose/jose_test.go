//go:build e2e

package jose_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/jose"
)

// runtime returns Debian's jose and node.
func runtime(t *testing.T) *jose.Runtime {
	t.Helper()
	rt, err := jose.Locate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jose %s (%s), %s", rt.Version, rt.Module, rt.Node)
	return rt
}

// keyRow is one key of `jwk list -o json`, read by this test alone (not
// with pkg/model/jwks' types: the contract is the JSON).
type keyRow struct {
	KID    string   `json:"kid"`
	Kty    string   `json:"kty"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"keyOps"`
	State  string   `json:"state"`
}

type keyList struct {
	Kind   string   `json:"kind"`
	Store  string   `json:"store"`
	Layout string   `json:"layout"`
	Keys   []keyRow `json:"keys"`
}

func (l keyList) kids() []string {
	var out []string
	for _, k := range l.Keys {
		out = append(out, k.KID)
	}
	return out
}

func (l keyList) state(kid string) string {
	for _, k := range l.Keys {
		if k.KID == kid {
			return k.State
		}
	}
	return ""
}

func (l keyList) withState(s string) []string {
	var out []string
	for _, k := range l.Keys {
		if k.State == s {
			out = append(out, k.KID)
		}
	}
	return out
}

// cli runs the real kubectl-rotate on one key-set file.
type cli struct {
	t    *testing.T
	bin  string
	file string
	// flags are added to every command (--layout).
	flags []string
}

func newCLI(t *testing.T, file string, flags []string) *cli {
	t.Helper()
	bin, err := exec.LookPath("kubectl-rotate")
	if err != nil {
		t.Fatal("kubectl-rotate is not on PATH: run `make e2e` (it builds bin/ and puts it on PATH), or put a built kubectl-rotate on PATH")
	}
	return &cli{t: t, bin: bin, file: file, flags: flags}
}

// run runs `kubectl-rotate jwk SUB --file F [flags] args...` and returns
// its standard output; a non-zero exit fails the test. Its output is
// logged only after checking that it holds no private key material.
func (c *cli) run(sub string, args ...string) string {
	c.t.Helper()
	argv := append(append([]string{"jwk", sub, "--file", c.file}, c.flags...), args...)
	cmd := exec.CommandContext(c.t.Context(), c.bin, argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	secrets := privateValues(c.t, c.file)
	for _, s := range secrets {
		if strings.Contains(out.String()+errb.String(), s) {
			c.t.Fatalf("kubectl rotate %s printed private key material (output withheld)", strings.Join(argv, " "))
		}
	}
	if err != nil {
		c.t.Fatalf("kubectl rotate %s: %v\n%s%s", strings.Join(argv, " "), err, out.String(), errb.String())
	}
	c.t.Logf("$ kubectl rotate %s", strings.Join(argv, " "))
	return out.String()
}

// bareCopy is a cli on a copy of the file in a directory of its own:
// the key set without the records kubectl-rotate keeps beside it.
func (c *cli) bareCopy() *cli {
	c.t.Helper()
	b, err := os.ReadFile(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	p := filepath.Join(c.t.TempDir(), filepath.Base(c.file))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return &cli{t: c.t, bin: c.bin, file: p, flags: c.flags}
}

func (c *cli) list() keyList {
	c.t.Helper()
	out := c.run("list", "-o", "json")
	var l keyList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		c.t.Fatalf("jwk list -o json: %v\n%s", err, out)
	}
	if l.Kind != "KeySet" || len(l.Keys) == 0 {
		c.t.Fatalf("jwk list -o json: kind %q, %d keys:\n%s", l.Kind, len(l.Keys), out)
	}
	for _, k := range l.Keys {
		if !slices.Contains([]string{"active", "next", "retiring", "expired"}, k.State) {
			c.t.Errorf("jwk list: kid %s has state %q, not one of active, next, retiring, expired", k.KID, k.State)
		}
	}
	return l
}

// privateValues are the private members of the keys in file (d, RSA's
// primes, oct's k): none may ever appear in the tool's output.
func privateValues(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("%s: not a JSON key set: %v", file, err)
	}
	var out []string
	for _, k := range set.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if s, ok := k[m].(string); ok && len(s) >= 16 {
				out = append(out, s, strings.TrimRight(s, "="))
			}
		}
	}
	return out
}

// issued is a token jose signed at some step of a rotation.
type issued struct {
	step, kid, token string
}

// rotation is one whole rotation of a key set by kubectl-rotate, checked
// at every step by jose with the upstream system's rule.
type rotation struct {
	t      *testing.T
	rt     *jose.Runtime
	cli    *cli
	rule   jose.Rule
	layout string
	tokens []issued
}

// check signs a token by the upstream rule and verifies every token issued
// so far; it returns the kid jose signed with and the tool's key list.
func (r *rotation) check(step string) (string, keyList) {
	r.t.Helper()
	l := r.cli.list()
	if l.Layout != r.layout {
		r.t.Errorf("%s: jwk list reports layout %q, want %q", step, l.Layout, r.layout)
	}
	active := l.withState("active")
	if len(active) != 1 {
		r.t.Errorf("%s: jwk list reports %d active keys %v, want exactly one", step, len(active), active)
	}
	s, err := r.rt.Sign(r.t.Context(), r.cli.file, r.rule)
	if err != nil {
		r.t.Fatalf("%s: %v", step, err)
	}
	switch st := l.state(s.KID); {
	case st == "next":
		r.t.Errorf("%s: by %s's rule jose signs with kid %s (key %d), which jwk list reports as next: a next key must never sign", step, r.rule, s.KID, s.Index)
	case len(active) == 1 && s.KID != active[0]:
		r.t.Errorf("%s: by %s's rule jose signs with kid %s (key %d, %s), but jwk list reports kid %s as active", step, r.rule, s.KID, s.Index, st, active[0])
	}
	// The upstream system has only the set: the same file without the
	// tool's records (FILE.kube-rotate.json) must name the same signer.
	bare := r.cli.bareCopy().list()
	if a := bare.withState("active"); len(a) != 1 || a[0] != s.KID {
		r.t.Errorf("%s: the set alone, without kubectl-rotate's records: jwk list reports layout %q and %v active; by %s's rule jose signs with %s",
			step, bare.Layout, a, r.rule, s.KID)
	}
	r.tokens = append(r.tokens, issued{step: step, kid: s.KID, token: s.Token})
	toks := make([]string, len(r.tokens))
	for i, tok := range r.tokens {
		toks[i] = tok.token
	}
	verdicts, err := r.rt.Verify(r.t.Context(), r.cli.file, r.rule, toks)
	if err != nil {
		r.t.Fatalf("%s: %v", step, err)
	}
	published := l.kids()
	for i, v := range verdicts {
		tok := r.tokens[i]
		switch {
		case v.KID != tok.kid:
			r.t.Errorf("%s: the token signed %s carries kid %q, jose signed with %q", step, tok.step, v.KID, tok.kid)
		case slices.Contains(published, tok.kid) && !v.OK:
			r.t.Errorf("%s: the token signed %s with kid %s (still in the set) no longer verifies: %s", step, tok.step, tok.kid, v.Reason)
		case !slices.Contains(published, tok.kid) && v.OK:
			r.t.Errorf("%s: the token signed %s with kid %s still verifies, but its key was deleted", step, tok.step, tok.kid)
		case !v.OK:
			r.t.Logf("%s: the token signed %s with deleted kid %s is refused: %s", step, tok.step, tok.kid, v.Reason)
		}
	}
	return s.KID, l
}

// startSet is a starting key set of a layout.
type startSet struct {
	name string
	// flags for every command: none (the layout is detected from the
	// keys, as a user would run it) or an explicit --layout.
	flags []string
	make  func(t *testing.T) []byte
	// noSigner: the set has no signing key by the upstream rule; the
	// tool must report none active.
	noSigner bool
}

// TestRotationByUpstreamRules drives kubectl-rotate through a whole
// rotation of key-set files (add, promote, delete) and, at every step,
// has jose sign by the upstream system's own rule: the key it signs with
// must be the one `jwk list` reports active, never a next key; and every
// token issued so far keeps verifying until its key is deleted, then fails.
func TestRotationByUpstreamRules(t *testing.T) {
	rt := runtime(t)
	layouts := []struct {
		layout string
		rule   jose.Rule
		sets   []startSet
	}{
		{"diracx", jose.DiracX, []startSet{
			{name: "pkg-testdata", make: fixture("diracx.json")},
			{name: "no-sign-key-op", make: diracxWithoutSigner, noSigner: true},
		}},
		{"slurm", jose.Slurm, []startSet{
			{name: "pkg-testdata", make: fixture("slurm.json")},
			{name: "schedmd-doc", make: slurmAsDocumented},
			{name: "schedmd-doc-layout-flag", flags: []string{"--layout", "slurm"}, make: slurmAsDocumented},
		}},
	}
	for _, lay := range layouts {
		t.Run(lay.layout, func(t *testing.T) {
			for _, set := range lay.sets {
				t.Run(set.name, func(t *testing.T) {
					file := filepath.Join(t.TempDir(), lay.layout+".jwks")
					if err := os.WriteFile(file, set.make(t), 0o600); err != nil {
						t.Fatal(err)
					}
					r := &rotation{t: t, rt: rt, cli: newCLI(t, file, set.flags), rule: lay.rule, layout: lay.layout}
					if set.noSigner {
						checkNoSigner(r)
						return
					}
					r.rotate()
				})
			}
		})
	}
}

// rotate: initial, add, promote, delete the previous signing key.
func (r *rotation) rotate() {
	t := r.t
	first, before := r.check("initially")

	r.cli.run("add", "-o", "json")
	after := r.cli.list()
	var added []string
	for _, kid := range after.kids() {
		if !slices.Contains(before.kids(), kid) {
			added = append(added, kid)
		}
	}
	if len(added) != 1 || len(after.Keys) != len(before.Keys)+1 {
		t.Fatalf("jwk add: kids %v -> %v, want one new key", before.kids(), after.kids())
	}
	next := added[0]
	if st := after.state(next); st != "next" {
		t.Errorf("after add: the new key %s is %q, want next", next, st)
	}
	signer, _ := r.check("after add")
	if signer != first {
		t.Errorf("after add: by %s's rule jose now signs with %s instead of %s: publishing a key must not change who signs", r.rule, signer, first)
	}

	r.cli.run("promote", "-o", "json")
	signer, l := r.check("after promote")
	if signer != next {
		t.Errorf("after promote: by %s's rule jose signs with %s (%s), not with the promoted key %s (%s)", r.rule, signer, l.state(signer), next, l.state(next))
	}
	if st := l.state(first); st != "retiring" {
		t.Errorf("after promote: the previous signing key %s is %q, want retiring", first, st)
	}

	r.cli.run("delete", first, "--force", "-o", "json")
	signer, l = r.check("after delete")
	if slices.Contains(l.kids(), first) {
		t.Errorf("after delete: kid %s is still listed", first)
	}
	if signer != next {
		t.Errorf("after delete: by %s's rule jose signs with %s, not %s", r.rule, signer, next)
	}
	refused := 0
	for _, tok := range r.tokens {
		if tok.kid == first {
			refused++ // check has verified each of them fails
		}
	}
	if refused < 2 {
		t.Errorf("only %d tokens were signed with the deleted key %s, want the ones of the initial and after-add steps", refused, first)
	}
}

// checkNoSigner: jose finds no signing key by the rule, and the tool must
// not report any key as active either.
func checkNoSigner(r *rotation) {
	t := r.t
	l := r.cli.list()
	if l.Layout != r.layout {
		t.Errorf("jwk list reports layout %q, want %q", l.Layout, r.layout)
	}
	_, err := r.rt.Sign(t.Context(), r.cli.file, r.rule)
	if !errors.Is(err, jose.ErrNoSigningKey) {
		t.Errorf("by %s's rule jose should find no signing key; got %v", r.rule, err)
	} else {
		t.Logf("jose: %v", err)
	}
	if a := l.withState("active"); len(a) != 0 {
		t.Errorf("no key can sign by %s's rule, but jwk list reports %v as active", r.rule, a)
	}
}

func fixture(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "model", "jwks", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// diracxWithoutSigner is pkg/model/jwks/testdata/diracx.json with "sign" taken
// out of the signing key's key_ops.
func diracxWithoutSigner(t *testing.T) []byte {
	t.Helper()
	var set map[string][]map[string]any
	if err := json.Unmarshal(fixture("diracx.json")(t), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set["keys"] {
		var ops []any
		for _, op := range k["key_ops"].([]any) {
			if op != "sign" {
				ops = append(ops, op)
			}
		}
		k["key_ops"] = ops
	}
	return mustJSON(t, set)
}

// slurmAsDocumented is a slurm.jwks written the way SchedMD documents it
// (doc/html/authentication.shtml, "Multiple Key Setup"): free-text kids,
// the "use":"default" key second, an "exp" (here in the future) on the
// other one; plus a lowercase "alg" and both encodings of "k" that Slurm
// accepts (padded base64 and unpadded base64url), 32 random bytes each.
func slurmAsDocumented(t *testing.T) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{"keys": []map[string]any{
		{"alg": "hs256", "kty": "oct", "kid": "key-identifier", "k": base64.StdEncoding.EncodeToString(random(t, 32)),
			"exp": time.Now().Add(30 * 24 * time.Hour).Unix()},
		{"alg": "HS256", "kty": "oct", "kid": "key-identifier-2", "k": base64.RawURLEncoding.EncodeToString(random(t, 32)),
			"use": "default"},
	}})
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRules checks the checker: jose picks signers and refuses tokens the
// way the upstream rules say, on sets made here (no kubectl-rotate), so a
// rotation test that passes is not passing because the rules are lax.
func TestRules(t *testing.T) {
	rt := runtime(t)
	ctx := t.Context()
	dir := t.TempDir()
	write := func(name string, v any) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, mustJSON(t, v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sign := func(file string, rule jose.Rule) jose.Signed {
		t.Helper()
		s, err := rt.Sign(ctx, file, rule)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	verify := func(file string, rule jose.Rule, tokens ...string) []jose.Verdict {
		t.Helper()
		v, err := rt.Verify(ctx, file, rule, tokens)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tamper := func(tok string) string {
		parts := strings.Split(tok, ".")
		// Another first character: the first signature byte changes.
		if parts[2][0] == 'A' {
			parts[2] = "B" + parts[2][1:]
		} else {
			parts[2] = "A" + parts[2][1:]
		}
		return strings.Join(parts, ".")
	}

	t.Run("slurm", func(t *testing.T) {
		a, b, c := random(t, 32), random(t, 32), random(t, 32)
		key := func(kid string, secret []byte, extra ...string) map[string]any {
			k := map[string]any{"alg": "HS256", "kty": "oct", "kid": kid, "k": base64.StdEncoding.EncodeToString(secret)}
			for i := 0; i+1 < len(extra); i += 2 {
				k[extra[i]] = extra[i+1]
			}
			return k
		}
		set := func(keys ...map[string]any) map[string]any { return map[string]any{"keys": keys} }

		if s := sign(write("default.json", set(key("a", a), key("b", b, "use", "DEFAULT"), key("c", c))), jose.Slurm); s.KID != "b" || s.Alg != "HS256" {
			t.Errorf(`"use":"DEFAULT" on the second key: signed with %s (%s), want b (HS256)`, s.KID, s.Alg)
		}
		plain := write("plain.json", set(key("a", a), key("b", b), key("c", c)))
		s := sign(plain, jose.Slurm)
		if s.KID != "a" || s.Index != 0 {
			t.Errorf("no default key: signed with %s (key %d), want the first, a", s.KID, s.Index)
		}
		// The same bytes as unpadded base64url, a lowercase alg: the token verifies.
		url := key("a", nil)
		url["k"], url["alg"] = base64.RawURLEncoding.EncodeToString(a), "hs256"
		if v := verify(write("url.json", set(url, key("b", b))), jose.Slurm, s.Token); !v[0].OK {
			t.Errorf("k as base64url, alg hs256: %+v", v[0])
		}
		expired := key("a", a)
		expired["exp"] = time.Now().Add(-time.Minute).Unix()
		notYet := key("a", a)
		notYet["exp"] = time.Now().Add(time.Hour).Unix()
		for _, tc := range []struct {
			name, file, token, want string
		}{
			{"tampered", plain, tamper(s.Token), "signature verification failed"},
			{"key gone", write("gone.json", set(key("b", b), key("c", c))), s.Token, "could not find kid=a"},
			{"key expired", write("expired.json", set(expired, key("b", b))), s.Token, "expired key kid=a"},
			{"other secret", write("other.json", set(key("a", c))), s.Token, "signature verification failed"},
			{"key exp ahead", write("ahead.json", set(notYet)), s.Token, ""},
		} {
			v := verify(tc.file, jose.Slurm, tc.token)[0]
			if tc.want == "" && !v.OK || tc.want != "" && (v.OK || !strings.Contains(v.Reason, tc.want)) {
				t.Errorf("%s: %+v, want %q", tc.name, v, tc.want)
			}
		}
		for _, tc := range []struct {
			name string
			keys []map[string]any
			want string
		}{
			{"two defaults", []map[string]any{key("a", a, "use", "default"), key("b", b, "use", "Default")}, "multiple default keys"},
			{"short k", []map[string]any{key("a", a[:15])}, "lacks sufficient entropy"},
			{"duplicate kid", []map[string]any{key("a", a), key("a", b)}, "kid fields must be unique"},
			{"RS256", []map[string]any{key("a", a, "alg", "RS256")}, "alg field must be HS256"},
		} {
			_, err := rt.Sign(ctx, write("bad.json", set(tc.keys...)), jose.Slurm)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(a)) {
				t.Errorf("%s: %v, want an error with %q (and no key material)", tc.name, err, tc.want)
			}
		}
	})

	t.Run("diracx", func(t *testing.T) {
		var set map[string][]map[string]any
		if err := json.Unmarshal(fixture("diracx.json")(t), &set); err != nil {
			t.Fatal(err)
		}
		keys := set["keys"]
		first, second := keys[0]["kid"].(string), keys[1]["kid"].(string)
		orig := write("diracx.json", set)
		s := sign(orig, jose.DiracX)
		if s.KID != first || s.Alg != "Ed25519" {
			t.Errorf("fixture: signed with %s (%s), want %s (Ed25519)", s.KID, s.Alg, first)
		}
		// "sign" on the second key only: the rule follows key_ops, not order.
		keys[0]["key_ops"], keys[1]["key_ops"] = []string{"verify"}, []string{"sign", "verify"}
		keys[1]["alg"] = "EdDSA"
		swapped := write("swapped.json", set)
		s2 := sign(swapped, jose.DiracX)
		if s2.KID != second || s2.Index != 1 || s2.Alg != "EdDSA" {
			t.Errorf("sign on the second key: signed with %s (key %d, %s), want %s (key 1, EdDSA)", s2.KID, s2.Index, s2.Alg, second)
		}
		if v := verify(swapped, jose.DiracX, s.Token, s2.Token); !v[0].OK || !v[1].OK {
			t.Errorf("both keys keep verifying: %+v", v)
		}
		keys[0]["key_ops"] = []string{"encrypt"}
		noVerify := write("noverify.json", set)
		v := verify(noVerify, jose.DiracX, s.Token, tamper(s2.Token))
		if v[0].OK || !strings.Contains(v[0].Reason, `lack "verify"`) {
			t.Errorf("key_ops without verify: %+v", v[0])
		}
		if v[1].OK || !strings.Contains(v[1].Reason, "signature verification failed") {
			t.Errorf("tampered: %+v", v[1])
		}
		keys[1]["key_ops"] = []string{"verify"}
		if _, err := rt.Sign(ctx, write("nosign.json", set), jose.DiracX); !errors.Is(err, jose.ErrNoSigningKey) {
			t.Errorf("no key with sign: %v, want ErrNoSigningKey", err)
		}
		if v := verify(write("one.json", map[string]any{"keys": keys[1:]}), jose.DiracX, s.Token)[0]; v.OK || !strings.Contains(v.Reason, "no key for kid") {
			t.Errorf("deleted key: %+v", v)
		}
	})

	// jose 4 has no JWS alg "Ed25519" (RFC 9864), the alg of DiracX's keys
	// and tokens: it signs and verifies them as "EdDSA" (see the package doc).
	t.Run("diracx-ed25519", func(t *testing.T) {
		var set map[string][]map[string]any
		if err := json.Unmarshal(fixture("diracx.json")(t), &set); err != nil {
			t.Fatal(err)
		}
		key := set["keys"][0]
		kid := key["kid"].(string)
		orig := write("diracx.json", set)
		if s := sign(orig, jose.DiracX); s.Alg != "Ed25519" || s.HeaderAlg != "EdDSA" {
			t.Errorf("key alg Ed25519: alg %q, header alg %q, want Ed25519 and EdDSA", s.Alg, s.HeaderAlg)
		}
		// Tokens signed here, not by jose, with the fixture's private key.
		seed, err := base64.RawURLEncoding.DecodeString(key["d"].(string))
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("the fixture's first key has no Ed25519 seed (%v)", err)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		token := func(alg string) string {
			h := base64.RawURLEncoding.EncodeToString(mustJSON(t, map[string]any{"alg": alg, "kid": kid}))
			p := base64.RawURLEncoding.EncodeToString(mustJSON(t, map[string]any{"sub": "e2e", "exp": time.Now().Add(time.Hour).Unix()}))
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(h+"."+p)))
		}
		v := verify(orig, jose.DiracX, token("EdDSA"), token("Ed25519"), token("RS256"))
		if !v[0].OK {
			t.Errorf("header alg EdDSA for a key with alg Ed25519: %+v", v[0])
		}
		if v[1].OK || !strings.Contains(v[1].Reason, `no JWS alg "Ed25519"`) {
			t.Errorf("header alg Ed25519 (as DiracX signs): %+v, want a refusal saying jose 4 cannot check it", v[1])
		}
		if v[2].OK || !strings.Contains(v[2].Reason, "is not the key's alg") {
			t.Errorf("header alg RS256 for an Ed25519 key: %+v", v[2])
		}
		set["keys"][1]["crv"] = "Ed448"
		if _, err := rt.Sign(ctx, write("ed448.json", set), jose.DiracX); err == nil || !strings.Contains(err.Error(), "crv Ed25519") {
			t.Errorf("alg Ed25519 on a key with crv Ed448: %v, want a refusal", err)
		}
	})
}
