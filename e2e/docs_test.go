//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/kopskeys/kopskeystest"
)

// docsHeader is the first line of every docs page with commands:
// <!-- docs-test: namespace=diracx fixture=diracx.yaml --> or, for pages
// on kOps, <!-- docs-test: namespace=NS kops=CLUSTER --> (a kOps state
// store with that cluster, in KOPS_STATE_STORE and KOPS_CLUSTER_NAME).
var docsHeader = regexp.MustCompile(`<!-- docs-test: namespace=(\S+)(?: fixture=(\S+))?(?: kops=(\S+))? -->`)

// TestDocsCommands runs every command of every docs page, in order, as a
// user would type it (through kubectl's plugin dispatch), against the
// page's fixture in a fresh namespace. A line ending in "# exit N" must
// exit N; every other command must succeed.
func TestDocsCommands(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	runbooks, _ := filepath.Glob("../docs/runbooks/*.md")
	pages = append(pages, runbooks...)
	plugins, _ := filepath.Abs("../plugins/kubectl-rotate")
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		cmds := shellCommands(string(b))
		if len(cmds) == 0 {
			continue
		}
		t.Run(filepath.Base(page), func(t *testing.T) {
			m := docsHeader.FindStringSubmatch(string(b))
			if m == nil {
				t.Fatalf("%s shows commands but has no <!-- docs-test: namespace=NS [fixture=F] --> line", page)
			}
			ns := newNamespace(t)
			if m[2] != "" {
				applyFixture(t, ns, filepath.Join("../docs/fixtures", m[2]))
			}
			// The page's namespace becomes the test's, on command lines and in
			// the page's files (plans name their namespace).
			nsFlag := regexp.MustCompile(`(-n |--namespace[ =]|namespace: )` + regexp.QuoteMeta(m[1]) + `\b`)
			work := t.TempDir()
			env := []string{"PATH=" + plugins + string(os.PathListSeparator) + os.Getenv("PATH")}
			if m[3] != "" {
				if m[3] != kopskeystest.ClusterName {
					t.Fatalf("%s: kops=%s: the docs' kOps cluster is %s", page, m[3], kopskeystest.ClusterName)
				}
				state := "file://" + filepath.Join(t.TempDir(), "kops-state")
				kopskeystest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account", "etcd-manager-ca-main", "etcd-manager-ca-events")
				env = append(env, "KOPS_STATE_STORE="+state, "KOPS_CLUSTER_NAME="+m[3])
			}
			if files, _ := filepath.Glob(filepath.Join("../docs/fixtures", strings.TrimSuffix(filepath.Base(page), ".md"), "*")); len(files) > 0 {
				for _, f := range files {
					data, _ := os.ReadFile(f)
					mode := os.FileMode(0o600)
					if fi, err := os.Stat(f); err == nil && fi.Mode()&0o100 != 0 {
						mode = 0o700 // hook scripts stay executable
					}
					data = nsFlag.ReplaceAll(data, []byte("${1}"+ns))
					os.WriteFile(filepath.Join(work, filepath.Base(f)), data, mode)
				}
			}
			for _, c := range cmds {
				line := nsFlag.ReplaceAllString(c.line, "${1}"+ns)
				cmd := exec.Command("bash", "-o", "pipefail", "-c", line)
				cmd.Dir = work
				cmd.Env = append(os.Environ(), env...)
				out, _ := cmd.CombinedOutput()
				code := cmd.ProcessState.ExitCode()
				t.Logf("$ %s\n%s(exit %d)", c.line, out, code)
				if code != c.exit {
					t.Fatalf("%s: `%s` exited %d, the page says %d", page, c.line, code, c.exit)
				}
			}
		})
	}
}

type docCommand struct {
	line string
	exit int
}

var exitComment = regexp.MustCompile(`\s+# exit (\d+)$`)

// shellCommands returns the command lines of ```sh blocks (comments and
// blank lines dropped; a trailing "# exit N" sets the expected code).
func shellCommands(md string) []docCommand {
	var out []docCommand
	in := false
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
			continue
		case strings.HasPrefix(l, "```"):
			in = false
			continue
		}
		l = strings.TrimSpace(l)
		if !in || l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := docCommand{line: l}
		if m := exitComment.FindStringSubmatch(l); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
			c.line = strings.TrimSpace(exitComment.ReplaceAllString(l, ""))
		} else if i := strings.Index(l, "  # "); i > 0 {
			c.line = strings.TrimSpace(l[:i])
		}
		out = append(out, c)
	}
	return out
}

// applyFixture creates a page's objects in ns with kubectl (namespace set).
func applyFixture(t *testing.T, ns, file string) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "-n", ns, "-f", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("applying %s: %v\n%s", file, err, out)
	}
	deps, err := client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		waitRolledOut(t, ns, d.Name)
	}
}
