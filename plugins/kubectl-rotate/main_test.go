package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// When kubectl runs this test binary under the plugin's name, act as the
// plugin: kubectl's real plugin dispatch is then tested without a separate
// build of the binary.
func TestMain(m *testing.M) {
	if os.Getenv("KUBE_ROTATE_TEST_AS_PLUGIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKubectlPluginDispatch checks what a user checks after installing:
// `kubectl plugin list` finds kubectl-rotate on PATH and `kubectl rotate`
// runs it.
func TestKubectlPluginDispatch(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not on PATH: install it (it is needed to test plugin dispatch)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "kubectl-rotate")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBE_ROTATE_TEST_AS_PLUGIN=1",
		"KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	if out := run("plugin", "list", "--name-only"); !strings.Contains(out, "kubectl-rotate") {
		t.Errorf("kubectl plugin list does not find kubectl-rotate:\n%s", out)
	}
	help := run("rotate", "--help")
	for _, want := range []string{`Use "kubectl rotate [command] --help"`, "--kubeconfig", "version"} {
		if !strings.Contains(help, want) {
			t.Errorf("kubectl rotate --help lacks %q:\n%s", want, help)
		}
	}
	var v struct {
		Version  string `json:"version"`
		Platform string `json:"platform"`
	}
	if err := json.Unmarshal([]byte(run("rotate", "version", "-o", "json")), &v); err != nil || v.Version == "" || v.Platform == "" {
		t.Errorf("kubectl rotate version -o json = %+v, %v", v, err)
	}
}
