//go:build e2e

package jose

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestInstalledModule checks the jose installed in ModuleDir (the e2e
// suite needs it; .ci/run installs it): it is jose Major.x, and it is Debian's node-jose of that version.
func TestInstalledModule(t *testing.T) {
	if len(jwksScript) == 0 {
		t.Fatal("testdata/jwks.mjs is not embedded")
	}
	if bytes.Contains(jwksScript, []byte("from 'jose'")) {
		t.Error("testdata/jwks.mjs imports the bare 'jose': nothing resolves it, import the request's file URL")
	}
	if _, err := os.Stat(filepath.Join(ModuleDir, "package.json")); errors.Is(err, os.ErrNotExist) {
		t.Fatal(ErrNotInstalled)
	}
	v, _, err := module(ModuleDir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, strconv.Itoa(Major)+".") {
		t.Errorf("%s is jose %s, want %d.x", ModuleDir, v, Major)
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Logf("jose %s in %s (no dpkg-query to check it is node-jose's)", v, ModuleDir)
		return
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "node-jose").Output()
	if err != nil {
		t.Fatalf("%s holds jose %s, but dpkg knows no node-jose (%v): install it with apt-get install node-jose", ModuleDir, v, err)
	}
	deb := strings.TrimSpace(string(out))
	// Debian's version is [epoch:]upstream-revision.
	upstream := deb
	if _, after, ok := strings.Cut(upstream, ":"); ok {
		upstream = after
	}
	if i := strings.LastIndex(upstream, "-"); i >= 0 {
		upstream = upstream[:i]
	}
	if upstream != v {
		t.Errorf("node-jose %s is installed, but %s/package.json says jose %s", deb, ModuleDir, v)
	}
	t.Logf("node-jose %s: jose %s in %s", deb, v, ModuleDir)
}
