// Package jose checks key sets with an independent JOSE implementation:
// npm's jose (https://github.com/panva/jose), run by Node.js, signs and
// verifies JWTs with a JWKS file the way each upstream system does
// (testdata/jwks.mjs holds the rules and names their sources). A key set
// kube-rotate writes is thereby judged by code kube-rotate did not write.
//
// # Install
//
// Ensure installs the pinned jose once, outside the repository, into
// $KUBE_ROTATE_CACHE/npm/jose-<Version>/, else
// <user cache dir>/kube-rotate/npm/jose-<Version>/ (~/.cache/kube-rotate on
// Linux, as for the e2e cluster's binaries). It runs
// `npm ci --ignore-scripts --no-audit --no-fund` on the committed
// testdata/package.json and testdata/package-lock.json (which holds jose's
// integrity hash, checked by npm) in a temporary directory, then renames it
// into place, so an interrupted install is never trusted; concurrent
// installers are serialised with a lock file. Later runs only check the
// directory's stamp. It needs node (20 or newer) and, to install, npm, both
// on PATH.
//
// # Refreshing the pinned jose
//
//  1. Set Version below and the "jose" dependency in testdata/package.json
//     to the new version (an exact version, no range).
//  2. In e2e/jose/testdata, regenerate the lock file:
//     npm install --package-lock-only --omit-lockfile-registry-resolved --ignore-scripts --no-audit --no-fund
//     (--omit-lockfile-registry-resolved keeps registry addresses out of it:
//     npm ci fetches from whatever registry npm is configured with and
//     checks the integrity hash).
//  3. Compare the lock file's "integrity" with `npm view jose@<version>
//     dist.integrity`, read the release notes for changes to JWK import or
//     to the "Ed25519"/"EdDSA" and "HS256" algorithms, and run
//     `go test -tags e2e ./e2e/jose/`. The new version installs into its
//     own jose-<version> directory; the old one can be deleted.
//
// pins_test.go checks that Version, package.json and the lock file agree.
package jose

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Version is the pinned version of npm's jose.
const Version = "6.2.18"

var (
	//go:embed testdata/package.json
	packageJSON []byte
	//go:embed testdata/package-lock.json
	packageLock []byte
	//go:embed testdata/jwks.mjs
	jwksScript []byte
)

// stampFile marks a complete install; it holds the lock file's SHA-256.
const stampFile = ".kube-rotate-install"

// Runtime is an installed jose and the node that runs scripts with it.
type Runtime struct {
	// Node is the node binary.
	Node string
	// Dir is the install directory: Dir/node_modules/jose is jose.
	Dir string
}

var (
	mu     sync.Mutex
	cached *Runtime
)

// CacheDir returns the directory jose Version is installed in.
func CacheDir() (string, error) {
	root := os.Getenv("KUBE_ROTATE_CACHE")
	if root == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding a cache directory (set KUBE_ROTATE_CACHE): %w", err)
		}
		root = filepath.Join(d, "kube-rotate")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(root, "npm", "jose-"+Version), nil
}

// Ensure returns the installed jose, installing it first if the cache does
// not hold it; logf (may be nil) is told when an install starts. Within a
// process the result is remembered.
func Ensure(ctx context.Context, logf func(format string, args ...any)) (*Runtime, error) {
	mu.Lock()
	defer mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := checkPins(); err != nil {
		return nil, err
	}
	node, err := findNode(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if !installed(dir) {
		if err := install(ctx, dir, logf); err != nil {
			return nil, err
		}
	}
	cached = &Runtime{Node: node, Dir: dir}
	return cached, nil
}

// checkPins makes sure the embedded package.json and lock file pin Version.
func checkPins() error {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(packageJSON, &pkg); err != nil {
		return fmt.Errorf("jose: testdata/package.json: %w", err)
	}
	if v := pkg.Dependencies["jose"]; v != Version {
		return fmt.Errorf("jose: testdata/package.json pins jose %q, jose.Version is %q: see the package doc, Refreshing the pinned jose", v, Version)
	}
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(packageLock, &lock); err != nil {
		return fmt.Errorf("jose: testdata/package-lock.json: %w", err)
	}
	p, ok := lock.Packages["node_modules/jose"]
	if !ok || p.Version != Version || !strings.HasPrefix(p.Integrity, "sha512-") {
		return fmt.Errorf("jose: testdata/package-lock.json does not lock jose %s with a sha512 integrity hash (it has %q %q): regenerate it, see the package doc", Version, p.Version, p.Integrity)
	}
	return nil
}

func findNode(ctx context.Context) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", errors.New("jose: node is not on PATH: install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)")
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("jose: %s --version: %w", node, err)
	}
	v := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if err != nil || major < 20 {
		return "", fmt.Errorf("jose: %s is Node.js %s: jose %s needs Node.js 20 or newer (WebCrypto Ed25519)", node, v, Version)
	}
	return node, nil
}

func lockHash() string {
	sum := sha256.Sum256(packageLock)
	return hex.EncodeToString(sum[:])
}

// installed reports whether dir holds a complete install of this lock file.
func installed(dir string) bool {
	stamp, err := os.ReadFile(filepath.Join(dir, stampFile))
	if err != nil || strings.TrimSpace(string(stamp)) != lockHash() {
		return false
	}
	v, err := installedVersion(dir)
	return err == nil && v == Version
}

func installedVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "jose", "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("node_modules/jose/package.json: %w", err)
	}
	return pkg.Version, nil
}

// install runs npm ci in a temporary directory beside dir and renames it
// to dir, holding a lock so that concurrent installers take turns.
func install(ctx context.Context, dir string, logf func(string, ...any)) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("jose: npm is not on PATH, and jose %s is not installed in %s yet: install npm (Debian: apt-get install npm)", Version, dir)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("jose: creating %s: %w", parent, err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if installed(dir) { // another process installed it while we waited
		return nil
	}
	logf("installing npm jose %s into %s (first time only)", Version, dir)
	tmp, err := os.MkdirTemp(parent, ".jose-"+Version+"-*")
	if err != nil {
		return fmt.Errorf("jose: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return fmt.Errorf("jose: %w", err)
	}
	for name, b := range map[string][]byte{"package.json": packageJSON, "package-lock.json": packageLock} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return fmt.Errorf("jose: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("jose: npm ci in %s: %w\n%s", tmp, err, strings.TrimSpace(out.String()))
	}
	if v, err := installedVersion(tmp); err != nil || v != Version {
		return fmt.Errorf("jose: npm ci installed jose %q, want %s (%v)", v, Version, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, stampFile), []byte(lockHash()+"\n"), 0o644); err != nil {
		return fmt.Errorf("jose: %w", err)
	}
	// A stale or broken install (another lock file, an interrupted old
	// layout) is moved aside first: rename does not replace a directory.
	if _, err := os.Lstat(dir); err == nil {
		old := tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("jose: moving the stale install %s aside: %w", dir, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("jose: %w", err)
	}
	return nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jose: opening lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("jose: locking %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
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

// Run runs the node program src (an ES module, named name) with jose
// resolvable: it is written into Dir/scripts under a name holding its
// hash, since ES modules resolve packages from their own location (node
// ignores NODE_PATH for them; NODE_PATH is set for CommonJS scripts).
// stdin is the program's standard input; its standard output is returned.
func (r *Runtime) Run(ctx context.Context, name string, src, stdin []byte, args ...string) ([]byte, error) {
	path, err := r.script(name, src)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, r.Node, append([]string{path}, args...)...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(r.Dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &ExitError{Script: name, Code: ee.ExitCode(), Stderr: strings.TrimSpace(errb.String())}
	}
	if err != nil {
		return nil, fmt.Errorf("jose: running node %s: %w", name, err)
	}
	return out.Bytes(), nil
}

func (r *Runtime) script(name string, src []byte) (string, error) {
	sum := sha256.Sum256(src)
	ext := filepath.Ext(name)
	dir := filepath.Join(r.Dir, "scripts")
	path := filepath.Join(dir, strings.TrimSuffix(filepath.Base(name), ext)+"-"+hex.EncodeToString(sum[:6])+ext)
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, src) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("jose: %w", err)
	}
	f, err := os.CreateTemp(dir, ".script-*")
	if err != nil {
		return "", fmt.Errorf("jose: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		f.Close()
		return "", fmt.Errorf("jose: %w", err)
	}
	if _, err := f.Write(src); err != nil {
		f.Close()
		return "", fmt.Errorf("jose: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("jose: writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("jose: %w", err)
	}
	return path, nil
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
	// Alg is the header's alg.
	Alg string `json:"alg"`
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
	Rule   Rule     `json:"rule"`
	JWKS   string   `json:"jwks"`
	Tokens []string `json:"tokens,omitempty"`
}

func (r *Runtime) jwks(ctx context.Context, op string, req request, v any) error {
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("jose: %w", err)
	}
	out, err := r.Run(ctx, "jwks.mjs", jwksScript, in, op)
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
