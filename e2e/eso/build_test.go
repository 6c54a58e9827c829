package eso

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestWrapperGoModCopiesReplaces(t *testing.T) {
	upstream := []byte(`module github.com/external-secrets/external-secrets

go 1.25.1

godebug default=go1.24

replace github.com/Masterminds/sprig/v3 => github.com/external-secrets/sprig/v3 v3.3.0

require github.com/Masterminds/sprig/v3 v3.3.0
`)
	got, err := wrapperGoMod(upstream, "v0.20.4")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("wrapper", got, nil)
	if err != nil {
		t.Fatalf("wrapper go.mod does not parse: %v\n%s", err, got)
	}
	if f.Module.Mod.Path != "kuberotate.local/eso-controller" || f.Go.Version != "1.25.1" || len(f.Godebug) != 1 {
		t.Errorf("module/go/godebug lines: %s", got)
	}
	if len(f.Require) != 1 || f.Require[0].Mod.Path != Module || f.Require[0].Mod.Version != "v0.20.4" {
		t.Errorf("require: %s", got)
	}
	if len(f.Replace) != 1 || f.Replace[0].New.Path != "github.com/external-secrets/sprig/v3" || f.Replace[0].New.Version != "v3.3.0" {
		t.Errorf("replace: %s", got)
	}

	local := []byte("module x\n\ngo 1.25\n\nreplace example.com/a => ./a\n")
	if _, err := wrapperGoMod(local, "v9"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a local replace: %v", err)
	}
}

func TestWriteCRDs(t *testing.T) {
	mod := t.TempDir()
	dir := filepath.Join(mod, crdSet)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "resources:\n  - a.yaml\n  - b.yaml\n")
	write("a.yaml", "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: as.example.com\n")
	write("b.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\nspec:\n  conversion:\n    strategy: None\n")
	out := filepath.Join(t.TempDir(), "crds.yaml")
	if err := writeCRDs(mod, out, "v0"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n---\n"); n != 2 || !strings.Contains(string(b), "as.example.com") || !strings.Contains(string(b), "bs.example.com") {
		t.Errorf("bundle:\n%s", b)
	}

	write("b.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\nspec:\n  conversion:\n    strategy: Webhook\n")
	if err := writeCRDs(mod, out, "v0"); err == nil || !strings.Contains(err.Error(), "Webhook") {
		t.Errorf("a conversion webhook: %v", err)
	}
}

// TestModuleCRDs checks the real bundle of DefaultVersion when its module
// is in the module cache already (it is after `bin/e2e-cluster eso`).
func TestModuleCRDs(t *testing.T) {
	info, err := goBuild.ModDownload(t.Context(), t.TempDir(), Module+"@"+DefaultVersion)
	if err != nil {
		t.Skipf("ESO %s not downloadable here: %v", DefaultVersion, err)
	}
	out := filepath.Join(t.TempDir(), "crds.yaml")
	if err := writeCRDs(info.Dir, out, DefaultVersion); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	for _, name := range []string{"externalsecrets.external-secrets.io", "clustersecretstores.external-secrets.io", "pushsecrets.external-secrets.io", "clusterexternalsecrets.external-secrets.io"} {
		if !strings.Contains(string(b), "name: "+name+"\n") {
			t.Errorf("the bundle lacks %s", name)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("ESO", "")
	t.Setenv("ESO_CRDS", "")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "make e2e") || !strings.Contains(err.Error(), "bin/e2e-cluster eso") {
		t.Errorf("unset: %v", err)
	}
	dir := t.TempDir()
	bin, crds := filepath.Join(dir, "external-secrets"), filepath.Join(dir, "crds.yaml")
	for _, p := range []string{bin, crds} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("ESO", bin)
	t.Setenv("ESO_CRDS", crds)
	if b, err := FromEnv(); err != nil || b.Controller != bin || b.CRDs != crds {
		t.Errorf("set: %+v %v", b, err)
	}
	t.Setenv("ESO", "relative/external-secrets")
	if _, err := FromEnv(); err == nil {
		t.Error("a relative path is accepted")
	}
}
