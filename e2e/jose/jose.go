// Package jose checks key sets with an independent JOSE implementation:
// panva's jose (https://github.com/panva/jose), the npm package as Debian
// packages it (node-jose), run by Node.js, signs and verifies JWTs with a
// JWKS file the way each upstream system does (testdata/jwks.mjs holds the
// rules and names their sources). A key set kube-rotate writes is thereby
// judged by code kube-rotate did not write.
//
// # Install
//
// Nothing is downloaded: jose comes from Debian's archive, which CI reaches
// (the npm registry it does not):
//
//	apt-get install --no-install-recommends node-jose nodejs
//
// (nodejs only where no node is on PATH: any Node.js 18 or newer does;
// bookworm's is 18). node-jose installs the module in ModuleDir,
// /usr/share/nodejs/jose. Locate reads its package.json, requires jose
// Major.x (bookworm's node-jose 4.11.4-1 is jose 4.11.4), and takes the ES
// module entry point its "exports" name for "import"
// (dist/node/esm/index.js). jwks.mjs is run with node --input-type=module
// --eval and imports that file by its file URL, so there is no
// node_modules, NODE_PATH, cache directory or copy of the script. If the
// package is missing, Locate fails with ErrNotInstalled.
//
// # Ed25519 and EdDSA (RFC 9864)
//
// DiracX's keys have "alg":"Ed25519", and DiracX puts the signing key's alg
// in a token's header. "Ed25519" is RFC 9864's fully specified name for
// EdDSA (RFC 8037) over the Ed25519 curve; jose 4 implements only the
// polymorphic "EdDSA" (Ed25519 or Ed448 keys). So jwks.mjs, for a key whose
// alg is "Ed25519":
//
//   - checks the key is kty OKP, crv Ed25519, and has jose import, sign and
//     verify with it as "EdDSA" (the same signature algorithm);
//   - signs tokens whose header says "alg":"EdDSA", not "Ed25519": jose 4
//     refuses to sign a header alg it does not implement, and the header is
//     part of what is signed. This is the one difference from DiracX's own
//     tokens, whose header says "Ed25519". Signed.Alg stays the alg DiracX
//     puts in the header (the key's, "Ed25519"); Signed.HeaderAlg is the
//     token's ("EdDSA");
//   - verifies, as joserfc's key.check_alg, only a token whose header alg is
//     the key's, taking both spellings, "Ed25519" and "EdDSA", as equal for a
//     key on Ed25519 whose alg is either. A token whose header says
//     "Ed25519" (one DiracX signed) is refused with a reason saying jose 4
//     cannot check it; the tokens these tests verify are all jose's.
//
// Keys with "alg":"EdDSA", "RS256" and Slurm's "HS256" go to jose as they
// are.
//
// # Moving to a newer jose
//
// jose's version is node-jose's: a newer jose comes with a newer Debian
// package (a newer Debian release, or backports), which CI's .ci/run
// installs with apt-get. With it installed here:
//
//  1. If its major version is not Major, set Major, and read jose's
//     release notes for changes to importJWK, to the key inputs of SignJWT,
//     jwtVerify and flattenedVerify, and to the "EdDSA" and "HS256"
//     algorithms. jose 6 implements "Ed25519" itself: the mapping above
//     (joseAlg and the header check in jwks.mjs) can then go, and tokens
//     carry DiracX's header alg.
//  2. Run go test ./e2e/jose/ (pins_test.go checks the installed package)
//     and go test -tags e2e ./e2e/jose/.
package jose

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const (
	// ModuleDir is where Debian's node-jose installs jose.
	ModuleDir = "/usr/share/nodejs/jose"
	// Major is the major version of jose that jwks.mjs is written for.
	Major = 4
	// MinNode is the oldest Node.js major version supported (Debian
	// bookworm's nodejs is 18).
	MinNode = 18
)

// ErrNotInstalled is returned by Locate when ModuleDir holds no jose.
var ErrNotInstalled = errors.New("npm's jose is not installed: apt-get install node-jose (Debian's package of panva/jose)")

//go:embed testdata/jwks.mjs
var jwksScript []byte

// Runtime is the installed jose and the node that runs scripts with it.
type Runtime struct {
	// Node is the node binary.
	Node string
	// Module is jose's directory (ModuleDir).
	Module string
	// Version is jose's version, from its package.json.
	Version string
	// entry is the file URL of jose's ES module entry point.
	entry string
}

var (
	mu     sync.Mutex
	cached *Runtime
)

// Locate returns the installed jose and node. Within a process the result
// is remembered.
func Locate(ctx context.Context) (*Runtime, error) {
	mu.Lock()
	defer mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	version, entry, err := module(ModuleDir)
	if err != nil {
		return nil, err
	}
	node, err := findNode(ctx)
	if err != nil {
		return nil, err
	}
	cached = &Runtime{Node: node, Module: ModuleDir, Version: version, entry: entry}
	return cached, nil
}

// module reads the package.json of the jose in dir: it returns jose's
// version and the file URL of its ES module entry point. No package.json is
// ErrNotInstalled.
func module(dir string) (version, entry string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", ErrNotInstalled
	}
	if err != nil {
		return "", "", fmt.Errorf("jose: %w", err)
	}
	var pkg struct {
		Name    string                     `json:"name"`
		Version string                     `json:"version"`
		Exports map[string]json.RawMessage `json:"exports"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", "", fmt.Errorf("jose: %s/package.json: %w", dir, err)
	}
	if pkg.Name != "jose" {
		return "", "", fmt.Errorf("jose: %s/package.json is package %q, not jose: reinstall node-jose", dir, pkg.Name)
	}
	if major, _, _ := strings.Cut(pkg.Version, "."); major != strconv.Itoa(Major) {
		return "", "", fmt.Errorf("jose: %s holds jose %s, jwks.mjs is written for jose %d.x: see the package doc, Moving to a newer jose", dir, pkg.Version, Major)
	}
	var dot struct {
		Import string `json:"import"`
	}
	if err := json.Unmarshal(pkg.Exports["."], &dot); err != nil || !strings.HasPrefix(dot.Import, "./") || strings.Contains(dot.Import, "..") {
		return "", "", fmt.Errorf("jose: %s/package.json names no ES module entry point (exports \".\" import): reinstall node-jose", dir)
	}
	path := filepath.Join(dir, filepath.FromSlash(dot.Import))
	if _, err := os.Stat(path); err != nil {
		return "", "", fmt.Errorf("jose: jose %s's entry point: %w: reinstall node-jose", pkg.Version, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("jose: %w", err)
	}
	return pkg.Version, (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

func findNode(ctx context.Context) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("jose: node is not on PATH: install Node.js %d or newer (Debian: apt-get install nodejs)", MinNode)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("jose: %s --version: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if err != nil || major < MinNode {
		return "", fmt.Errorf("jose: %s is Node.js %s: e2e/jose needs Node.js %d or newer", node, v, MinNode)
	}
	return node, nil
}

// ExitError is a script that ran and exited non-zero.
type ExitError struct {
	// Script is the script's name.
	Script string
	// Code is its exit code.
	Code int
	// Stderr is what it printed there, trimmed.
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("node %s: exit %d: %s", e.Script, e.Code, e.Stderr)
}

// Run runs the node program src, an ES module named name (in messages),
// with node --input-type=module --eval: nothing is written to disk, and
// src imports jose by the file URL it is given (see jwks.mjs). args are
// the program's process.argv[1:]; stdin is its standard input; its standard
// output is returned.
func (r *Runtime) Run(ctx context.Context, name string, src, stdin []byte, args ...string) ([]byte, error) {
	argv := append([]string{"--input-type=module", "--eval", string(src), "--"}, args...)
	cmd := exec.CommandContext(ctx, r.Node, argv...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &ExitError{Script: name, Code: ee.ExitCode(), Stderr: strings.TrimSpace(errb.String())}
	}
	if err != nil {
		return nil, fmt.Errorf("jose: running node %s: %w", name, err)
	}
	return out.Bytes(), nil
}

// Rule names an upstream system's rule for picking the signing key.
type Rule string

// The rules testdata/jwks.mjs implements.
const (
	// DiracX: the first key whose key_ops hold "sign"; header alg is the
	// key's alg (diracx-logic auth/token.py create_token).
	DiracX Rule = "diracx"
	// Slurm: the key whose use is "default" (case-insensitive), else the
	// first; HS256 (src/plugins/auth/slurm/internal.c).
	Slurm Rule = "slurm"
)

// ErrNoSigningKey is returned (wrapped) by Sign when the rule finds no
// signing key in the set.
var ErrNoSigningKey = errors.New("no signing key")

// exitNoSigningKey is jwks.mjs's exit code for ErrNoSigningKey.
const exitNoSigningKey = 3

// Signed is a JWT jose signed with the key the rule picked.
type Signed struct {
	// KID is the signing key's kid (also in the token's header).
	KID string `json:"kid"`
	// Index is the signing key's position in the set.
	Index int `json:"index"`
	// Alg is the alg the rule's system puts in the header: DiracX's is
	// the key's alg, Slurm's HS256.
	Alg string `json:"alg"`
	// HeaderAlg is the alg in the token's header, as jose wrote it: Alg,
	// but "EdDSA" where Alg is "Ed25519", which jose 4 does not implement
	// (see the package doc).
	HeaderAlg string `json:"header_alg"`
	// Token is the compact JWT.
	Token string `json:"token"`
}

// Verdict is what verification made of one token.
type Verdict struct {
	// KID is the kid in the token's header.
	KID string `json:"kid"`
	// OK is true if the token verified.
	OK bool `json:"ok"`
	// Reason says why it did not.
	Reason string `json:"reason,omitempty"`
}

type request struct {
	Op     string   `json:"op"`
	Jose   string   `json:"jose"`
	Rule   Rule     `json:"rule"`
	JWKS   string   `json:"jwks"`
	Tokens []string `json:"tokens,omitempty"`
}

func (r *Runtime) jwks(ctx context.Context, op string, req request, v any) error {
	req.Op, req.Jose = op, r.entry
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("jose: %w", err)
	}
	out, err := r.Run(ctx, "jwks.mjs", jwksScript, in)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && ee.Code == exitNoSigningKey {
			return fmt.Errorf("jose %s by the %s rule: %w (%s)", op, req.Rule, ErrNoSigningKey, ee.Stderr)
		}
		return fmt.Errorf("jose %s by the %s rule: %w", op, req.Rule, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("jose %s by the %s rule: reading its output: %w", op, req.Rule, err)
	}
	return nil
}

// Sign signs a JWT (expiring in the future) with the key of the JWKS file
// that rule picks, as that system would sign.
func (r *Runtime) Sign(ctx context.Context, jwksFile string, rule Rule) (Signed, error) {
	var s Signed
	err := r.jwks(ctx, "sign", request{Rule: rule, JWKS: jwksFile}, &s)
	return s, err
}

// Verify verifies each token against the JWKS file as rule's system
// would: the key whose kid is in the token's header, with that system's
// checks.
func (r *Runtime) Verify(ctx context.Context, jwksFile string, rule Rule, tokens []string) ([]Verdict, error) {
	var out struct {
		Results []Verdict `json:"results"`
	}
	if err := r.jwks(ctx, "verify", request{Rule: rule, JWKS: jwksFile, Tokens: tokens}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(tokens) {
		return nil, fmt.Errorf("jose verify by the %s rule: %d results for %d tokens", rule, len(out.Results), len(tokens))
	}
	return out.Results, nil
}
