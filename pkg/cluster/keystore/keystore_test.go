package keystore

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
)

// TestFileStoreKeepsOwnerAndMode: slurmctld runs as SlurmUser; a file
// rewritten as root:root 0600 would be fatal to it.
func TestFileStoreKeepsOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slurm.jwks")
	b, _ := os.ReadFile("../../model/jwks/testdata/slurm.json")
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534 // nobody: root may give the file away
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	st := &FileStore{Path: path}
	set, rec, err := st.Load(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	r := jwks.NewRing(set, "", rec)
	if _, err := r.Add(jwks.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Save(t.Context(), st, r, "jwk-add", ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, st.SidecarPath()} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Errorf("%s: mode %04o owner %d:%d, want 0640 %d:%d", p, fi.Mode().Perm(), sys.Uid, sys.Gid, uid, gid)
		}
	}
	// Any "other" bit: Slurm is fatal on the file; nothing is written.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	set, rec, _ = st.Load(t.Context(), false)
	r = jwks.NewRing(set, "", rec)
	if _, err := r.Add(jwks.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	err = Save(t.Context(), st, r, "jwk-add", "")
	if err == nil || !strings.Contains(err.Error(), "has mode 0644: Slurm refuses a key file with any \"other\" permission bit") || !strings.Contains(err.Error(), "chmod o-rwx "+path) {
		t.Errorf("save of a 0644 Slurm file: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a refused save changed the file")
	}
}
