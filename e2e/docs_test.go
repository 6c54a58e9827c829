//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	kopsversion "k8s.io/kops"
	"k8s.io/kops/util/pkg/vfs"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/e2e/eso"
	"github.com/kube-rotate/kube-rotate/e2e/images"
	"github.com/kube-rotate/kube-rotate/e2e/postgres"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

// docsHeader is the first line of every docs page with commands:
// <!-- docs-test: namespace=diracx fixture=diracx.yaml --> or, for pages
// on kOps, <!-- docs-test: namespace=NS kops=CLUSTER --> (a kOps state
// store with that cluster, in KOPS_STATE_STORE and KOPS_CLUSTER_NAME).
//
// operator=external-secrets runs the real External Secrets operator
// (externalSecretsOperator) before the page's fixture is applied, and
// waits until it has written the Secret of each ExternalSecret in it.
//
// node=real runs the fixture's pods on the real node when there is one
// (realNodeFixture), so a page whose pods could not start on a kubelet
// fails here as it would on kind; without one the fixture runs on kwok.
//
// postgres=DB starts a PostgreSQL server with database DB, runs the page's
// fixtures/PAGE/setup.sql in it, and exports PGHOST, PGPORT, PGUSER and
// PGDATABASE (and psql on PATH) to the page's commands and their hooks.
var docsHeader = regexp.MustCompile(`<!-- docs-test: namespace=(\S+)(?: fixture=(\S+))?(?: kops=(\S+))?(?: operator=(external-secrets))?(?: postgres=(\S+))?(?: node=(real))? -->`)

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
			if m[4] != "" {
				externalSecretsOperator(t)
				t.Cleanup(func() {
					_ = eso.Cleanup(context.Background(), dynamic.NewForConfigOrDie(restConfig), ns, 30*time.Second)
				})
			}
			if m[2] != "" {
				file := filepath.Join("../docs/fixtures", m[2])
				if m[6] != "" {
					if rn, why := findRealNode(t); why == "" {
						file = realNodeFixture(t, file)
						t.Logf("the fixture's pods run on the real node %s", rn.name)
					} else if os.Getenv("E2E_REAL_NODE") == "required" {
						t.Fatalf("node=real: %s, and E2E_REAL_NODE=required", why)
					}
				}
				applyFixture(t, ns, file)
				if m[4] != "" {
					// The fixture's Deployments read the Secrets the operator
					// writes: on a real kubelet their pods stay in
					// CreateContainerConfigError until it has, so the wait
					// for the operator comes before the wait for rollouts.
					// (kwok nodes make them Ready either way.)
					waitExternalSecretsWritten(t, ns)
				}
				waitFixtureRolledOut(t, ns)
				// managedFields times have whole seconds: a page that checks
				// ages against 1s (status.md) needs its objects one second
				// old, which on a fast run they are not yet.
				time.Sleep(time.Second)
			} else if m[4] != "" {
				waitExternalSecretsWritten(t, ns)
			}
			// The page's namespace becomes the test's, on command lines and in
			// the page's files (plans name their namespace).
			nsFlag := regexp.MustCompile(`(-n |--namespace[ =]|namespace: )` + regexp.QuoteMeta(m[1]) + `\b`)
			work := t.TempDir()
			env := []string{"PATH=" + plugins + string(os.PathListSeparator) + os.Getenv("PATH")}
			if db := m[5]; db != "" {
				pg := postgres.Start(t)
				pg.CreateDatabase(t, db)
				setup, err := os.ReadFile(filepath.Join("../docs/fixtures", strings.TrimSuffix(filepath.Base(page), ".md"), "setup.sql"))
				if err != nil {
					t.Fatal(err)
				}
				pg.Exec(t, db, string(setup))
				for _, e := range pg.PsqlEnv() {
					if !strings.HasPrefix(e, "PGDATABASE=") {
						env = append(env, e)
					}
				}
				env[0] = "PATH=" + filepath.Dir(pg.PsqlPath()) + string(os.PathListSeparator) + strings.TrimPrefix(env[0], "PATH=")
				env = append(env, "PGDATABASE="+db)
			}
			if m[3] != "" {
				if m[3] != kopstest.ClusterName {
					t.Fatalf("%s: kops=%s: the docs' kOps cluster is %s", page, m[3], kopstest.ClusterName)
				}
				state := "file://" + filepath.Join(t.TempDir(), "kops-state")
				kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account", "etcd-manager-ca-main", "etcd-manager-ca-events")
				env = append(env, "KOPS_STATE_STORE="+state, "KOPS_CLUSTER_NAME="+m[3])
				env[0] = "PATH=" + kopsStandIn(t) + string(os.PathListSeparator) + strings.TrimPrefix(env[0], "PATH=")
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

// kopsStandIn returns a directory with a `kops` that stands in for the
// cloud: the docs' state store has no cluster behind it, so update,
// rolling-update, validate and export say what they would do and succeed;
// `kops version --short` is the version of the kOps libraries
// kops-rotate is built with. The real kops CLI runs in e2e/kops.
func kopsStandIn(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"case \"$1\" in\n" +
		"  version) echo " + kopsversion.Version + " ;;\n" +
		"  update|rolling-update|validate|export) echo \"(no cloud here) kops $*\" ;;\n" +
		"  *) echo \"kops $1: not played in the docs\" >&2; exit 1 ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "kops"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
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
// It does not wait for them: see waitFixtureRolledOut.
func applyFixture(t *testing.T, ns, file string) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "-n", ns, "-f", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("applying %s: %v\n%s", file, err, out)
	}
}

// realNodeFixture writes a copy of fixture file whose Deployments run on
// the real node: their pods select and tolerate it, and the pause image
// they use becomes the project's (nothing is pulled). Other objects are
// kept as they are.
func realNodeFixture(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if obj == nil {
			continue
		}
		if obj["kind"] == "Deployment" {
			u := unstructured.Unstructured{Object: obj}
			spec, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec")
			var ps corev1.PodSpec
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &ps); err != nil {
				t.Fatalf("%s: deployment/%s: %v", file, u.GetName(), err)
			}
			onRealNode(&ps)
			for i := range ps.Containers {
				if strings.HasPrefix(ps.Containers[i].Image, "registry.k8s.io/pause:") {
					ps.Containers[i].Image, ps.Containers[i].ImagePullPolicy = images.Pause.Ref(), corev1.PullNever
				}
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&ps)
			if err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedMap(u.Object, m, "spec", "template", "spec"); err != nil {
				t.Fatal(err)
			}
		}
		b, err := sigsyaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	path := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(path, []byte(strings.Join(out, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitExternalSecretsWritten waits until the External Secrets operator has
// written the Secret of each ExternalSecret in ns.
func waitExternalSecretsWritten(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	l, err := dynamic.NewForConfigOrDie(restConfig).Resource(externalSecrets).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the External Secrets operator to write the fixture's Secrets", time.Minute, func() bool {
		s, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "reconcile.external-secrets.io/managed=true"})
		return err == nil && len(s.Items) >= len(l.Items)
	})
}

// waitFixtureRolledOut waits until every Deployment in ns has rolled out.
func waitFixtureRolledOut(t *testing.T, ns string) {
	t.Helper()
	deps, err := client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		waitRolledOut(t, ns, d.Name)
	}
}
