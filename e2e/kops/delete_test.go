//go:build e2e

package kops

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deleteOK runs `kops delete cluster --unregister --yes`, which refuses
// when the cluster's config base holds a file kOps does not know.
func (e *env) deleteOK() {
	e.t.Helper()
	cmd := exec.Command(e.kops, "delete", "cluster", "--name", clusterName, "--state", e.state, "--unregister", "--yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("kops delete cluster --unregister: %v\n%s", err, out)
	}
}

// clusters is what `kops get clusters` lists.
func (e *env) clusters() []string {
	e.t.Helper()
	var names []string
	lines := strings.Split(e.kopsOK(nil, "get", "clusters", "--state", e.state), "\n")
	for _, line := range lines[1:] { // the first is the table header
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func TestClusterDeletableAfterAStep(t *testing.T) {
	e := setup(t)
	if out, err := e.rotate("", "stage", "all"); err != nil {
		t.Fatalf("stage all: %v\n%s", err, out)
	}
	if got := e.clusters(); len(got) != 1 || got[0] != clusterName {
		t.Fatalf("kops get clusters = %q, want exactly %s", got, clusterName)
	}
	e.deleteOK()
	// kOps removes the cluster's files (file:// may leave empty directories).
	_ = filepath.WalkDir(filepath.Join(e.dir, "state", clusterName), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("after delete, %s is still there", p)
		}
		return nil
	})
}

func TestOldLocationRecordMigrated(t *testing.T) {
	e := setup(t)
	old := filepath.Join(e.dir, "state", clusterName, "rotation", "state.yaml")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	// As the previous version wrote it.
	if err := os.WriteFile(old, []byte("started: \"2026-01-01T00:00:00Z\"\ndone:\n  update-after-stage: \"2026-01-01T00:00:00Z\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := e.rotate("", "stage", "all"); err != nil {
		t.Fatalf("stage all: %v\n%s", err, out)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the old-location record is still there after a write: %v", err)
	}
	if got := e.clusters(); len(got) != 1 || got[0] != clusterName {
		t.Fatalf("kops get clusters = %q, want exactly %s", got, clusterName)
	}
	e.deleteOK()
}
