//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletion: `kubectl rotate <TAB>` completes verbs and Secret names,
// both from the plugin and through kubectl's plugin completion
// (kubectl_complete-rotate on PATH).
func TestCompletion(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "db-urls", map[string]string{"u": "x"})
	createSecret(t, ns, "diracx-jwks", map[string]string{"jwks.json": `{"keys":[]}`})
	helper, err := filepath.Abs("../plugins/kubectl-rotate")
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not on PATH: the plugin-completion check needs it (.ci/run provides one)")
	}
	complete := func(name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "PATH="+helper+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return string(out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{rotateBin(t), []string{"__complete", ""}, []string{"secret", "status", "apply", "jwk"}},
		{rotateBin(t), []string{"__complete", "secret", "-n", ns, "d"}, []string{"db-urls", "diracx-jwks"}},
		{rotateBin(t), []string{"__complete", "history", "-n", ns, "secret/db"}, []string{"secret/db-urls"}},
		{kubectl, []string{"__complete", "rotate", ""}, []string{"secret", "status"}},
		{kubectl, []string{"__complete", "rotate", "secret", "-n", ns, ""}, []string{"db-urls", "diracx-jwks"}},
	} {
		out := complete(tc.name, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %s: no %q in\n%s", filepath.Base(tc.name), strings.Join(tc.args, " "), w, out)
			}
		}
	}
}
