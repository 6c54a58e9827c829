//go:build e2e

package encryption

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

// TestMain lets the test binary play the kops CLI's update and
// rolling-update for kops-rotate (it runs `kops` from PATH): there is no
// cloud here. The rolling update does what a new control-plane instance's
// nodeup does with the encryptionconfig secret: it writes the secret's
// data, byte for byte, mode 0600, to the file kube-apiserver reads
// (nodeup/pkg/model/kube_apiserver.go, /srv/kubernetes/kube-apiserver/encryptionconfig.yaml).
func TestMain(m *testing.M) {
	if file := os.Getenv("KR_E2E_APISERVER_FILE"); file != "" {
		os.Exit(playKops(file, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func playKops(file string, args []string) int {
	if log := os.Getenv("KR_E2E_KOPS_LOG"); log != "" {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, strings.Join(args, " "))
			f.Close()
		}
	}
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	switch {
	case len(args) > 1 && args[0] == "update" && args[1] == "cluster":
		fmt.Println("(played) kops update cluster: the control-plane instances need an update")
		return 0
	case len(args) > 1 && args[0] == "rolling-update" && args[1] == "cluster":
		s, err := kops.Open(context.Background(), flag("--state"), flag("--name"), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		data, _, err := s.EncryptionConfig(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(file, data, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("(played) kops rolling-update cluster: the control plane was replaced; nodeup placed the encryption configuration")
		return 0
	}
	fmt.Fprintf(os.Stderr, "the played kops does not do %q\n", strings.Join(args, " "))
	return 2
}

// TestKopsRotateEncryptionConfig takes a kOps state store's
// encryptionconfig secret (created by the real kops CLI) through the whole
// rotation with `kops-rotate encryption-config run --yes`, each edit
// followed by kops update cluster --yes and a control-plane rolling update,
// on a real kube-apiserver, reading etcd after; then rolls the retire back.
func TestKopsRotateEncryptionConfig(t *testing.T) {
	t.Parallel()
	e, old, _ := newCLIEnv(t, "kops")
	bin, err := exec.LookPath("kops-rotate")
	if err != nil {
		t.Fatal("kops-rotate is not on PATH: run with `make e2e`")
	}
	kcfg, err := clientcmd.LoadFromFile(e.c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	state := e.kops.StateStore
	e.bin, e.args = bin, []string{"--name", kopstest.ClusterName, "--state", state, "--kubeconfig", e.c.Kubeconfig, "--context", kcfg.CurrentContext}
	// kops-rotate finds the played kops first on PATH.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pathDir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(pathDir, "kops")); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "kops.log")
	e.environ = []string{"PATH=" + pathDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"KR_E2E_APISERVER_FILE=" + e.cfgPath, "KR_E2E_KOPS_LOG=" + log}

	want := map[string]string{}
	for _, n := range e.secrets("s", 50) {
		want[n] = old
	}
	e.checkStored(want)

	// Without --yes: the steps, with the kops commands, and no change.
	before := e.doc()
	out := e.mustRun("run")
	if !strings.Contains(out, "kops rolling-update cluster --yes --instance-group-roles control-plane") || !strings.Contains(out, "kops update cluster --yes") {
		t.Errorf("the dry run does not show the kops commands:\n%s", out)
	}
	if string(before) != string(e.doc()) {
		t.Error("the dry run changed the secret")
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("the dry run ran kops")
	}

	e.mustRun("run", "--yes")
	st := e.status()
	if st.Stage != "idle" || st.Key == old || len(st.Providers[0].Keys) != 1 || !strings.Contains(st.RetiredKept, "backups/kops-rotate/") {
		t.Fatalf("after run --yes: %+v", st)
	}
	all(want, st.Key)
	e.checkStored(want)
	e.readBack(want)
	ran, _ := os.ReadFile(log)
	if n := strings.Count(string(ran), "rolling-update cluster --yes --instance-group-roles control-plane"); n != 3 {
		t.Errorf("want 3 control-plane rolling updates (stage, promote, retire), got %d:\n%s", n, ran)
	}
	if n := strings.Count(string(ran), "update cluster --yes --name"); n != 3 {
		t.Errorf("want 3 kops update cluster --yes, got %d:\n%s", n, ran)
	}
	// The real kops still reads the state store and its secrets.
	if out, err := exec.Command(os.Getenv("KOPS"), "get", "secrets", "--name", kopstest.ClusterName, "--state", state).CombinedOutput(); err != nil || !strings.Contains(string(out), "encryptionconfig") {
		t.Errorf("kops get secrets after the rotation: %v\n%s", err, out)
	}

	// Roll the retire back: the old key is back, second.
	e.mustRun("rollback", "--yes")
	if st = e.status(); st.Stage != "promoted" || len(st.Providers[0].Keys) != 2 || st.Providers[0].Keys[1].Name != old {
		t.Fatalf("after the rollback of the retire: %+v", st)
	}
	e.checkStored(want)
	e.readBack(want)
}
