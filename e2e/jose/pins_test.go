package jose

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModule checks how Locate reads a jose package directory, on made-up
// ones. Needs neither node nor node-jose.
func TestModule(t *testing.T) {
	pkg := func(t *testing.T, json string, entry bool) string {
		t.Helper()
		dir := t.TempDir()
		if json != "" {
			if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(json), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if entry {
			p := filepath.Join(dir, "dist", "node", "esm", "index.js")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	const exports = `"exports": {".": {"import": "./dist/node/esm/index.js", "require": "./dist/node/cjs/index.js"}}`

	dir := pkg(t, `{"name": "jose", "version": "4.11.4", `+exports+`}`, true)
	v, entry, err := module(dir)
	if err != nil || v != "4.11.4" || entry != "file://"+filepath.ToSlash(dir)+"/dist/node/esm/index.js" {
		t.Errorf("jose 4.11.4: %q %q %v", v, entry, err)
	}

	_, _, err = module(pkg(t, "", false))
	if !errors.Is(err, ErrNotInstalled) || strings.Contains(err.Error(), "\n") ||
		err.Error() != "npm's jose is not installed: apt-get install node-jose (Debian's package of panva/jose)" {
		t.Errorf("no package.json: %v", err)
	}
	for _, tc := range []struct {
		name, json string
		entry      bool
		want       string
	}{
		{"jose 6", `{"name": "jose", "version": "6.2.18", ` + exports + `}`, true, "written for jose 4.x"},
		{"jose 40", `{"name": "jose", "version": "40.0.0", ` + exports + `}`, true, "written for jose 4.x"},
		{"other package", `{"name": "node-jose", "version": "4.11.4", ` + exports + `}`, true, `is package "node-jose"`},
		{"no exports", `{"name": "jose", "version": "4.11.4"}`, true, "no ES module entry point"},
		{"entry outside", `{"name": "jose", "version": "4.11.4", "exports": {".": {"import": "./../x.js"}}}`, true, "no ES module entry point"},
		{"entry missing", `{"name": "jose", "version": "4.11.4", ` + exports + `}`, false, "4.11.4's entry point"},
		{"not JSON", `{`, true, "package.json"},
	} {
		if _, _, err := module(pkg(t, tc.json, tc.entry)); err == nil || errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
