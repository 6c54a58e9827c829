package jwk_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeduration "k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
	"github.com/kube-rotate/kube-rotate/pkg/cli/jwk"
)

// The DiracX key set of pkg/model/jwks/testdata: an active key and a retiring
// one, both Ed25519, kids uuid7 (their creation time).
const (
	activeKID   = "0196af4d311579728287cb89c24514e9"
	retiringKID = "0196af4d0ab27b1299dff55b8617991d"
	store       = "secret/diracx-jwks key jwks.json"
)

var (
	activeCreated   = time.Date(2025, 5, 8, 9, 49, 53, 813e6, time.UTC)
	retiringCreated = time.Date(2025, 5, 8, 9, 49, 43, 986e6, time.UTC)
)

func fixture(t *testing.T) (*fakeAPI, []byte) {
	t.Helper()
	set, err := os.ReadFile("../../model/jwks/testdata/diracx.json")
	if err != nil {
		t.Fatal(err)
	}
	a := newFakeAPI(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "diracx-jwks", Namespace: "ns", UID: "u-jwks", ResourceVersion: "1"}, Data: map[string][]byte{"jwks.json": set}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", UID: "u-other", ResourceVersion: "1"}, Data: map[string][]byte{"token": []byte("x")}})
	return a, set
}

// privateMembers returns the private and symmetric key members (d, p, q,
// dp, dq, qi, k) of every key in a JWKS.
func privateMembers(t *testing.T, set []byte) []string {
	t.Helper()
	var s struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(set, &s); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range s.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if v, ok := k[m].(string); ok && v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// run runs `kubectl rotate jwk ARGS` and fails the test if private key
// material of the set (before or after the run) is in the output.
func run(t *testing.T, a *fakeAPI, args ...string) cmdtest.Result {
	t.Helper()
	before := a.SecretData(t, "diracx-jwks")["jwks.json"]
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return jwk.NewCmdJWK(a.TF, s) }, "", args...)
	after := a.SecretData(t, "diracx-jwks")["jwks.json"]
	for _, v := range append(privateMembers(t, before), privateMembers(t, after)...) {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("jwk %s printed private key material", strings.Join(args, " "))
		}
	}
	return r
}

// Placeholders for what a run makes anew, as long as what they stand
// for so that table columns stay aligned.
const (
	newKIDMark  = "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN"
	newTimeMark = "YYYY-MM-DDTHH:MM:SSZ"
)

var kidAdded = regexp.MustCompile(`key ([0-9a-f]{32}) (?:added|published)`)

// stable replaces the kid of the key the run added and its creation
// time (which must be within [start, end]) by placeholders, and fills in
// the ages of the fixture's keys.
func stable(t *testing.T, out string, start, end time.Time) string {
	t.Helper()
	if m := kidAdded.FindStringSubmatch(out); m != nil {
		out = strings.ReplaceAll(out, m[1], newKIDMark)
	}
	out = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`).ReplaceAllStringFunc(out, func(ts string) string {
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatal(err)
		}
		if at.Equal(activeCreated) || at.Equal(retiringCreated) || at.Equal(activeCreated.Truncate(time.Second)) || at.Equal(retiringCreated.Truncate(time.Second)) {
			return ts
		}
		if at.Before(start.Add(-time.Second)) || at.After(end.Add(time.Second)) {
			t.Errorf("time %s is neither a fixture key's creation nor the run's", ts)
		}
		return newTimeMark
	})
	// The new key's age is a second or so, depending on the machine.
	return regexp.MustCompile(`(`+newTimeMark+` \(kid\)\s+)\d+s\n`).ReplaceAllString(out, "${1}<new-age>\n")
}

// ages are the AGE column of the fixture's keys, now.
func ages() (active, retiring string) {
	return kubeduration.HumanDuration(time.Since(activeCreated)), kubeduration.HumanDuration(time.Since(retiringCreated))
}

func TestJWKFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no store", []string{"list"}, "error: give exactly one of --secret NAME or --file PATH"},
		{"two stores", []string{"list", "--secret", "diracx-jwks", "--file", "jwks.json"}, "error: give exactly one of --secret NAME or --file PATH"},
		{"bad layout", []string{"list", "--secret", "diracx-jwks", "--layout", "keycloak"}, `error: --layout "keycloak" is not known: use diracx, slurm or generic`},
		{"bad output", []string{"list", "--secret", "diracx-jwks", "-o", "wide"}, `error: --output "wide" is not supported: use json or yaml`},
		{"list has no dry-run", []string{"list", "--secret", "diracx-jwks", "--dry-run=client"}, "error: unknown flag: --dry-run"},
		{"public has no -o", []string{"public", "--secret", "diracx-jwks", "-o", "json"}, "error: unknown shorthand flag: 'o' in -o"},
		{"retire without a kid", []string{"retire", "--secret", "diracx-jwks"}, "error: name the key: kubectl rotate jwk retire KID"},
		{"delete without a kid", []string{"delete", "--secret", "diracx-jwks"}, "error: name the key: kubectl rotate jwk delete KID"},
		{"promote two kids", []string{"promote", "--secret", "diracx-jwks", activeKID, retiringKID}, "error: accepts at most 1 arg(s), received 2"},
		{"list takes no kid", []string{"list", "--secret", "diracx-jwks", activeKID}, "error: accepts at most 0 arg(s), received 1"},
		{"server dry run of a file", []string{"add", "--file", "jwks.json", "--dry-run=server"}, "error: --dry-run=server needs a Secret: use --dry-run=client with --file"},
		{"bad dry-run", []string{"add", "--secret", "diracx-jwks", "--dry-run=maybe"}, `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		{"bad restart", []string{"rotate", "--secret", "diracx-jwks", "--restart", "later"}, `error: --restart "later" is not supported: use rollout or none`},
		{"bad min-overlap", []string{"delete", "--secret", "diracx-jwks", retiringKID, "--min-overlap", "soon"},
			`error: invalid argument "soon" for "--min-overlap" flag: duration "soon": use forms like 90d, 12h, 30m or 1d12h`},
		{"bad alg", []string{"add", "--secret", "diracx-jwks", "--layout", "generic", "--alg", "RS1"}, "error: " + `--alg "RS1" is not supported: use Ed25519, EdDSA, ES256, RS256 or HS256`},
		{"alg the layout refuses", []string{"add", "--secret", "diracx-jwks", "--alg", "ES256"},
			"error: " + store + ": the DiracX layout holds Ed25519 keys only: use --alg Ed25519 (or EdDSA for DiracX before v0.0.14), or --layout generic"},
		{"bad kid scheme", []string{"add", "--secret", "diracx-jwks", "--kid-scheme", "serial"}, "error: " + `--kid-scheme "serial" is not supported: use uuid7, uuid4 or thumbprint`},
		{"missing secret", []string{"list", "--secret", "nope"}, "error: secret/nope not found in namespace ns: check the name and -n/--namespace"},
		{"secret without the key", []string{"list", "--secret", "other"}, `error: secret/other has no key "jwks.json" (keys: token): pass --key with the key holding the JWKS`},
		{"unknown kid", []string{"promote", "--secret", "diracx-jwks", "0196af4d000000000000000000000000"},
			"error: " + store + `: no key with kid "0196af4d000000000000000000000000" (kids: ` + activeKID + ", " + retiringKID + ")"},
		{"no next key", []string{"promote", "--secret", "diracx-jwks"}, "error: " + store + " has no next key to promote: add one first (kubectl rotate jwk add), or name a KID"},
		{"retire the signing key", []string{"retire", "--secret", "diracx-jwks", activeKID},
			"error: " + store + ": kid " + activeKID + " is the signing key: promote another key first (kubectl rotate jwk promote)"},
		{"delete the signing key", []string{"delete", "--secret", "diracx-jwks", activeKID, "--force"}, "error: " + store + ": kid " + activeKID + " is the signing key: promote another key before deleting it"},
		{"delete inside the overlap", []string{"delete", "--secret", "diracx-jwks", retiringKID},
			"error: " + store + ": kid " + retiringKID + ": when it stopped signing is not recorded, so tokens it signed may still be valid; pass --force once they have expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, set := fixture(t)
			r := run(t, a, tt.args...)
			cmdtest.CheckFatal(t, r, tt.want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("a rejected command wrote %q", w)
			}
			if !bytes.Equal(a.SecretData(t, "diracx-jwks")["jwks.json"], set) {
				t.Error("the key set changed")
			}
		})
	}
}

func TestJWKList(t *testing.T) {
	tests := []struct{ name, format, want string }{
		{"table", "", `KID                                TYPE          USE           STATE      CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active     2025-05-08T09:49:53Z (kid)   <active-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`},
		{"json", "json", `{
    "kind": "KeySet",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "store": "secret/diracx-jwks key jwks.json",
    "layout": "diracx",
    "keys": [
        {
            "kid": "0196af4d311579728287cb89c24514e9",
            "kty": "OKP",
            "alg": "Ed25519",
            "keyOps": [
                "sign",
                "verify"
            ],
            "state": "active",
            "created": "2025-05-08T09:49:53Z",
            "createdFrom": "kid"
        },
        {
            "kid": "0196af4d0ab27b1299dff55b8617991d",
            "kty": "OKP",
            "alg": "Ed25519",
            "keyOps": [
                "verify"
            ],
            "state": "retiring",
            "created": "2025-05-08T09:49:43Z",
            "createdFrom": "kid"
        }
    ]
}
`},
		{"yaml", "yaml", `apiVersion: rotate.kube-rotate.io/v1alpha1
keys:
- alg: Ed25519
  created: "2025-05-08T09:49:53Z"
  createdFrom: kid
  keyOps:
  - sign
  - verify
  kid: 0196af4d311579728287cb89c24514e9
  kty: OKP
  state: active
- alg: Ed25519
  created: "2025-05-08T09:49:43Z"
  createdFrom: kid
  keyOps:
  - verify
  kid: 0196af4d0ab27b1299dff55b8617991d
  kty: OKP
  state: retiring
kind: KeySet
layout: diracx
store: secret/diracx-jwks key jwks.json
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := fixture(t)
			args := []string{"list", "--secret", "diracx-jwks"}
			if tt.format != "" {
				args = append(args, "-o", tt.format)
			}
			r := run(t, a, args...)
			active, retiring := ages()
			want := strings.NewReplacer("<active-age>", active, "<retiring-age>", retiring).Replace(tt.want)
			if r.Code != 0 || r.Out != want || r.ErrOut != "" {
				t.Errorf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("list wrote %q", w)
			}
		})
	}
}

// public prints the set without private members, on one line.
func TestJWKPublic(t *testing.T) {
	a, _ := fixture(t)
	r := run(t, a, "public", "--secret", "diracx-jwks")
	want := `{"keys":[{"alg":"Ed25519","crv":"Ed25519","key_ops":["sign","verify"],"kid":"0196af4d311579728287cb89c24514e9","kty":"OKP","x":"sEnEQU76x6mUK129dQ7tLcYtwqVQo4QfdNflDLrgT6E"},` +
		`{"alg":"Ed25519","crv":"Ed25519","key_ops":["verify"],"kid":"0196af4d0ab27b1299dff55b8617991d","kty":"OKP","x":"Ds4XvnZcxCf5fLwvyoCfcRZDAuHDSkotroZYqmaa0K4","x-operator-note":"kept as is"}]}` + "\n"
	if r.Code != 0 || r.Out != want || r.ErrOut != "" {
		t.Errorf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
	}
}

// add publishes a new key as next; a client dry run writes nothing, a
// server dry run sends the write with dryRun=All.
func TestJWKAdd(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   string
		writes string
	}{
		{"dry-run client", []string{"--dry-run=client"}, `secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN added (next)
(dry run: secret/diracx-jwks key jwks.json was not changed)
KID                                TYPE          USE           STATE      CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active     2025-05-08T09:49:53Z (kid)   <active-age>
NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN   OKP/Ed25519   verify        next       YYYY-MM-DDTHH:MM:SSZ (kid)   <new-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`, ""},
		{"dry-run server", []string{"--dry-run=server"}, `secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN added (next)
(dry run: secret/diracx-jwks key jwks.json was not changed)
KID                                TYPE          USE           STATE      CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active     2025-05-08T09:49:53Z (kid)   <active-age>
NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN   OKP/Ed25519   verify        next       YYYY-MM-DDTHH:MM:SSZ (kid)   <new-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`, "update secrets ns/diracx-jwks (dry run)"},
		{"real", nil, `secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN added (next)
KID                                TYPE          USE           STATE      CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active     2025-05-08T09:49:53Z (kid)   <active-age>
NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN   OKP/Ed25519   verify        next       YYYY-MM-DDTHH:MM:SSZ (kid)   <new-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`, "update secrets ns/diracx-jwks"},
		{"json", []string{"-o", "json"}, `{
    "kind": "KeySet",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "store": "secret/diracx-jwks key jwks.json",
    "layout": "diracx",
    "changed": [
        "secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN added (next)"
    ],
    "keys": [
        {
            "kid": "0196af4d311579728287cb89c24514e9",
            "kty": "OKP",
            "alg": "Ed25519",
            "keyOps": [
                "sign",
                "verify"
            ],
            "state": "active",
            "created": "2025-05-08T09:49:53Z",
            "createdFrom": "kid"
        },
        {
            "kid": "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
            "kty": "OKP",
            "alg": "Ed25519",
            "keyOps": [
                "verify"
            ],
            "state": "next",
            "created": "YYYY-MM-DDTHH:MM:SSZ",
            "createdFrom": "kid"
        },
        {
            "kid": "0196af4d0ab27b1299dff55b8617991d",
            "kty": "OKP",
            "alg": "Ed25519",
            "keyOps": [
                "verify"
            ],
            "state": "retiring",
            "created": "2025-05-08T09:49:43Z",
            "createdFrom": "kid"
        }
    ]
}
`, "update secrets ns/diracx-jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, set := fixture(t)
			start := time.Now()
			r := run(t, a, append([]string{"add", "--secret", "diracx-jwks"}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			active, retiring := ages()
			want := strings.NewReplacer("<active-age>", active, "<retiring-age>", retiring).Replace(tt.want)
			if got := stable(t, r.Out, start, time.Now()); got != want || r.ErrOut != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q", got, want, r.ErrOut)
			}
			if got := strings.Join(a.Writes(), "; "); got != tt.writes {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			stored := a.SecretData(t, "diracx-jwks")["jwks.json"]
			if tt.writes == "update secrets ns/diracx-jwks" {
				if n := len(privateMembers(t, stored)); n != 3 {
					t.Errorf("the stored set has %d private keys, want 3", n)
				}
			} else if !bytes.Equal(stored, set) {
				t.Error("a dry run changed the key set")
			}
		})
	}
}

// delete --force drops a retiring key at once; its dry runs write
// nothing (client) or send the write with dryRun=All (server).
func TestJWKDelete(t *testing.T) {
	deleted := store + ": key " + retiringKID + " deleted\n"
	dry := "(dry run: " + store + " was not changed)\n"
	after := `KID                                TYPE          USE           STATE    CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active   2025-05-08T09:49:53Z (kid)   <active-age>
`
	tests := []struct {
		name, dryRun, want, writes string
	}{
		{"dry-run client", "--dry-run=client", deleted + dry + after, ""},
		{"dry-run server", "--dry-run=server", deleted + dry + after, "update secrets ns/diracx-jwks (dry run)"},
		{"real", "--dry-run=none", deleted + after, "update secrets ns/diracx-jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, set := fixture(t)
			r := run(t, a, "delete", "--secret", "diracx-jwks", retiringKID, "--force", tt.dryRun)
			active, _ := ages()
			want := strings.ReplaceAll(tt.want, "<active-age>", active)
			if r.Code != 0 || r.Out != want || r.ErrOut != "" {
				t.Errorf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
			}
			if got := strings.Join(a.Writes(), "; "); got != tt.writes {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			stored := a.SecretData(t, "diracx-jwks")["jwks.json"]
			if tt.dryRun == "--dry-run=none" {
				if strings.Contains(string(stored), retiringKID) || !strings.Contains(string(stored), activeKID) {
					t.Error("the stored set still has the deleted key, or lost the signing key")
				}
			} else if !bytes.Equal(stored, set) {
				t.Error("a dry run changed the key set")
			}
		})
	}
}

// rotate on a Secret: a dry run lists the steps and writes nothing; a run
// without restarts publishes, promotes, and leaves no journal behind.
func TestJWKRotate(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   string
		writes string
	}{
		{"dry-run client", []string{"--dry-run=client"}, `Plan (dry run) on cluster localhost:8080 (server http://localhost:8080)
step 1 of 4 (publish): publish a new key as next in secret/diracx-jwks key jwks.json (verify only: who signs does not change)
step 2 of 4 (restart-verifiers): restart the workloads reading secret/diracx-jwks key jwks.json (they learn the new key) and wait until they are healthy
step 3 of 4 (promote): promote the new key to signing key (the previous one keeps verifying)
step 4 of 4 (restart-signers): restart the workloads reading secret/diracx-jwks key jwks.json (they sign with the new key) and wait until they are healthy
(dry run: secret/diracx-jwks key jwks.json was not changed)
KID                                TYPE          USE           STATE      CREATED                      AGE
0196af4d311579728287cb89c24514e9   OKP/Ed25519   sign,verify   active     2025-05-08T09:49:53Z (kid)   <active-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`, ""},
		{"no restarts", []string{"--restart=none"}, `secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN published as next
secret/diracx-jwks key jwks.json: key NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN is now the signing key
added NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN
promoted NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN
KID                                TYPE          USE           STATE      CREATED                      AGE
NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN   OKP/Ed25519   sign,verify   active     YYYY-MM-DDTHH:MM:SSZ (kid)   <new-age>
0196af4d311579728287cb89c24514e9   OKP/Ed25519   verify        retiring   2025-05-08T09:49:53Z (kid)   <active-age>
0196af4d0ab27b1299dff55b8617991d   OKP/Ed25519   verify        retiring   2025-05-08T09:49:43Z (kid)   <retiring-age>
`, "update secrets ns/diracx-jwks; create configmaps ns/kube-rotate-jwk-diracx-jwks-jwks.json; update secrets ns/diracx-jwks; update configmaps ns/kube-rotate-jwk-diracx-jwks-jwks.json; delete configmaps ns/kube-rotate-jwk-diracx-jwks-jwks.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, set := fixture(t)
			start := time.Now()
			r := run(t, a, append([]string{"rotate", "--secret", "diracx-jwks"}, tt.args...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			active, retiring := ages()
			want := strings.NewReplacer("<active-age>", active, "<retiring-age>", retiring).Replace(tt.want)
			if got := stable(t, r.Out, start, time.Now()); got != want || r.ErrOut != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr %q", got, want, r.ErrOut)
			}
			if got := strings.Join(a.Writes(), "; "); got != tt.writes {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			if tt.writes == "" && !bytes.Equal(a.SecretData(t, "diracx-jwks")["jwks.json"], set) {
				t.Error("a dry run changed the key set")
			}
		})
	}
}

// ---- test harness (the same in every pkg/cli/<verb> test file) ----

// fakeAPI is the shared fake API server (pkg/cli/internal/cmdtest), with
// this file's helpers as methods.
type fakeAPI struct{ *cmdtest.FakeAPI }

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	return &fakeAPI{cmdtest.NewFakeAPI(t, objs...)}
}
