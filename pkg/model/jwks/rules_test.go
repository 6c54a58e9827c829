package jwks

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func octKey(kid, extra string) string {
	k := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(kid+"-", 32))[:32])
	return `{"alg":"HS256","kty":"oct","kid":"` + kid + `","k":"` + k + `"` + extra + `}`
}

func ringOf(t *testing.T, doc string, layout Layout) *Ring {
	t.Helper()
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRing(s, layout, nil)
	r.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	return r
}

// TestSignerRules: the key called active is the one the upstream signs
// with (SchedMD/slurm internal.c; diracx-logic auth/token.py).
func TestSignerRules(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		layout    Layout
		active    int
	}{
		{"slurm: no default, the first signs", `{"keys":[` + octKey("a", "") + `,` + octKey("b", "") + `]}`, LayoutSlurm, 0},
		{"slurm: use default signs wherever it is", `{"keys":[` + octKey("a", "") + `,` + octKey("b", `,"use":"default"`) + `,` + octKey("c", "") + `]}`, LayoutSlurm, 1},
		{"slurm: use compared without case", `{"keys":[` + octKey("a", "") + `,` + octKey("b", `,"use":"DEFAULT"`) + `]}`, LayoutSlurm, 1},
		{"slurm: alg and kty in any case", `{"keys":[{"alg":"hs256","kty":"OCT","kid":"x","k":"MDEyMzQ1Njc4OWFiY2RlZg"}]}`, LayoutSlurm, 0},
		{"diracx: first with sign", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"Ed25519","kid":"0196af4d0ab27b1299dff55b8617991d","key_ops":["verify"]},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"Ed25519","kid":"0196af4d311579728287cb89c24514e9","key_ops":["sign","verify"]}]}`, LayoutDiracX, 1},
		{"diracx: no sign, no signer", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"Ed25519","kid":"0196af4d0ab27b1299dff55b8617991d","key_ops":["verify"]}]}`, LayoutDiracX, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ringOf(t, tt.doc, "")
			if r.Layout != tt.layout {
				t.Fatalf("layout %s, want %s", r.Layout, tt.layout)
			}
			if got := r.ActiveIndex(); got != tt.active {
				t.Errorf("active %d, want %d", got, tt.active)
			}
			for i, row := range r.Rows() {
				if (row.State == StateActive) != (i == tt.active) {
					t.Errorf("key %d state %s", i, row.State)
				}
			}
		})
	}
}

// TestSlurmAddNeverChangesWhoSigns, on the set SchedMD documents: add puts
// the new key last without use; promote moves use:"default" to it and
// keeps the order.
func TestSlurmAddNeverChangesWhoSigns(t *testing.T) {
	s := load(t, "slurm-schedmd.json")
	r := NewRing(s, "", nil)
	signer := s.Keys[r.ActiveIndex()].KID
	k, err := r.Add(AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Keys[len(s.Keys)-1].KID != k.KID || s.Keys[r.ActiveIndex()].KID != signer {
		t.Fatalf("add changed who signs or did not append: active %d", r.ActiveIndex())
	}
	if _, err := r.Promote(k.KID); err != nil {
		t.Fatal(err)
	}
	order := []string{"key-identifier", "key-identifier-2", k.KID}
	for i, kid := range order {
		if s.Keys[i].KID != kid {
			t.Errorf("order changed: key %d is %s, want %s", i, s.Keys[i].KID, kid)
		}
		_, hasUse := membersOf(t, s.Keys[i].Raw)["use"]
		if hasUse != (kid == k.KID) {
			t.Errorf("kid %s has use=%v after promote", kid, hasUse)
		}
	}
	if r.Check() != nil || r.State(1) != StateRetiring || r.Records["key-identifier-2"].Retired == nil {
		t.Errorf("after promote: check %v, old signer %s", r.Check(), r.State(1))
	}
	b, _ := s.Marshal()
	if !strings.Contains(string(b), "\"alg\": \"hs256\"") || !strings.Contains(string(b), `"exp": 4102444800`) {
		t.Error("promote rewrote members of keys it only had to strip use from")
	}
}

// TestRefusals: what Slurm or DiracX would refuse is never written.
func TestRefusals(t *testing.T) {
	two := `{"keys":[` + octKey("a", `,"use":"default"`) + `,` + octKey("b", `,"use":"default"`) + `]}`
	for _, tt := range []struct {
		name string
		doc  string
		lay  Layout
		do   func(r *Ring) error
		want string
	}{
		{"two default keys", two, "", func(r *Ring) error {
			if _, err := r.Add(AddOptions{}); err != nil {
				return err
			}
			return r.Check()
		}, `keys a and b both have "use":"default": Slurm refuses a set with two default keys`},
		{"non-oct into an oct set", `{"keys":[` + octKey("a", `,"use":"sig"`) + `]}`, LayoutGeneric, func(r *Ring) error {
			_, err := r.Add(AddOptions{Alg: AlgES256})
			return err
		}, `a ES256 key would stop Slurm at its next start ("kty field must be oct")`},
		{"empty set, no layout", `{"keys":[]}`, "", func(r *Ring) error {
			_, err := r.Add(AddOptions{})
			return err
		}, "the key set is empty, so its layout cannot be detected: give it with --layout"},
		{"exp no integer", `{"keys":[` + octKey("a", `,"exp":"soon"`) + `]}`, LayoutSlurm, func(r *Ring) error { return r.Check() }, `kid a has an exp that is no integer`},
		{"short k", `{"keys":[{"alg":"HS256","kty":"oct","kid":"a","k":"c2hvcnQ"}]}`, LayoutSlurm, func(r *Ring) error { return r.Check() }, `kid a has a k of 5 bytes`},
		{"promote an expired key", `{"keys":[` + octKey("a", "") + `,` + octKey("b", `,"exp":1000`) + `]}`, "", func(r *Ring) error {
			_, err := r.Promote("b")
			return err
		}, "kid b expired at 1970-01-01T00:16:40Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ringOf(t, tt.doc, tt.lay)
			err := tt.do(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line with %q", err, tt.want)
			}
		})
	}
	// Promote of one of two default keys repairs the set.
	r := ringOf(t, two, "")
	if _, err := r.Promote("b"); err != nil || r.Check() != nil || r.ActiveIndex() != 1 {
		t.Errorf("promote b on two defaults: %v, check %v, active %d", err, r.Check(), r.ActiveIndex())
	}
}

func TestSlurmExpiry(t *testing.T) {
	r := ringOf(t, `{"keys":[`+octKey("a", `,"exp":"4102444800"`)+`,`+octKey("b", `,"exp":1700000000`)+`,`+octKey("c", "")+`]}`, "")
	rows := r.Rows()
	if rows[0].State != StateActive || rows[0].Expires == nil || rows[0].Expires.Year() != 2100 {
		t.Errorf("key a: %+v", rows[0])
	}
	if rows[1].State != StateExpired {
		t.Errorf("key b past exp: state %s", rows[1].State)
	}
	if err := r.Delete("b", 24*time.Hour, false); err != nil {
		t.Errorf("an expired key needs no overlap: %v", err)
	}
	r = ringOf(t, `{"keys":[`+octKey("a", `,"exp":1700000000`)+`]}`, "")
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0], "the signing key a expired at 2023-11-14T22:13:20Z: Slurm rejects every token it signs") {
		t.Errorf("warnings %q", w)
	}
}

func TestDiracXAlgAndWarnings(t *testing.T) {
	s := load(t, "diracx.json")
	// The set's signing key says EdDSA (DiracX before v0.0.14).
	edd, err := setMember(s.Keys[0].Raw, "alg", []byte(`"EdDSA"`))
	if err != nil {
		t.Fatal(err)
	}
	s.Keys[0], _ = parseKey(edd, 0)
	r := NewRing(s, "", nil)
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0], `has "alg":"EdDSA": DiracX v0.0.14 and later reject it`) {
		t.Errorf("warnings %q", w)
	}
	k, err := r.Add(AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := membersOf(t, k.Raw)["alg"]; got != `"EdDSA"` {
		t.Errorf("new key alg %s, want the signing key's EdDSA", got)
	}
	k, err = r.Add(AddOptions{Alg: AlgEd25519})
	if err != nil || membersOf(t, k.Raw)["alg"] != `"Ed25519"` {
		t.Errorf("--alg Ed25519: %v", err)
	}
	// No key signs: none active, promote makes one.
	r = ringOf(t, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","alg":"Ed25519","kid":"0196af4d0ab27b1299dff55b8617991d","key_ops":["verify"]}]}`, "")
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0], `no key has "sign" in key_ops: DiracX issues no token`) {
		t.Errorf("warnings %q", w)
	}
	if _, err := r.Promote("0196af4d0ab27b1299dff55b8617991d"); err != nil || r.ActiveIndex() != 0 {
		t.Errorf("promote without a signer: %v", err)
	}
}

// TestToolNamesTheCommands: the commands a message suggests use the name
// the caller runs as (kubectl-rotate when run directly), else kubectl rotate.
func TestToolNamesTheCommands(t *testing.T) {
	for _, tt := range []struct{ tool, want string }{
		{"", "(kubectl rotate jwk promote)"},
		{"kubectl-rotate", "(kubectl-rotate jwk promote)"},
	} {
		r := ringOf(t, `{"keys":[`+octKey("a", "")+`]}`, "")
		r.Tool = tt.tool
		_, err := r.Retire("a")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tool %q: retire of the signing key: %v, want %s", tt.tool, err, tt.want)
		}
	}
}
