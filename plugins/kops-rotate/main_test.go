package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// When kubectl runs this test binary under the plugin's name, act as the
// plugin (see TestKubectlPluginDispatch).
func TestMain(m *testing.M) {
	if os.Getenv("KUBE_ROTATE_TEST_AS_PLUGIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKubectlPluginDispatch checks both ways of calling the binary: as
// kops-rotate and, linked as kubectl-kops_rotate the way krew links it,
// through `kubectl kops-rotate`.
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
	for _, name := range []string{"kubectl-kops_rotate", "kops-rotate"} {
		if err := os.Symlink(self, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBE_ROTATE_TEST_AS_PLUGIN=1")
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{"kubectl plugin list", kubectl, []string{"plugin", "list", "--name-only"}, "kubectl-kops_rotate"},
		{"through kubectl", kubectl, []string{"kops-rotate", "--help"}, `Use "kubectl kops-rotate [command] --help"`},
		{"called directly", filepath.Join(dir, "kops-rotate"), []string{"--help"}, `Use "kops-rotate [command] --help"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.bin, tt.args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tt.bin, strings.Join(tt.args, " "), err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}
