package encryption

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
)

const doc = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
%s      - identity: {}
  - resources:
      - configmaps
    providers:
      - secretbox:
          keys:
%s`

func keys(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "            - name: %s\n              secret: %s\n", n, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	}
	return b.String()
}

func TestReadState(t *testing.T) {
	const k0, k1 = "key-20250101T000000Z", "key-20260101T000000Z"
	for _, c := range []struct {
		name       string
		a, b       string
		stage, key string
		old        []string
		err        string
	}{
		{"idle", keys(k0), keys(k0), "idle", k0, nil, ""},
		{"staged", keys(k0, k1), keys(k0, k1), "staged", k1, []string{k0}, ""},
		{"promoted", keys(k1, k0), keys(k1, k0), "promoted", k1, []string{k0}, ""},
		{"a key made by hand, staged", keys("old", k1), keys("old", k1), "staged", k1, []string{"old"}, ""},
		{"providers disagree", keys(k0, k1), keys(k0), "", "", nil, "must be at the same stage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := ReadState([]byte(fmt.Sprintf(doc, c.a, c.b)), "file F")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "file F: ") {
					t.Fatalf("err %v, want one naming file F and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(st.Stage) != c.stage || st.Key != c.key || fmt.Sprint(st.Old) != fmt.Sprint(c.old) {
				t.Errorf("got %s %s %v, want %s %s %v", st.Stage, st.Key, st.Old, c.stage, c.key, c.old)
			}
			if got := st.Resources(); fmt.Sprint(got) != "[secrets configmaps]" {
				t.Errorf("resources %v", got)
			}
		})
	}
}

func TestStageEditsEveryProviderAndNeverPrintsAKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "enc.yaml")
	first := []byte(fmt.Sprintf(doc, keys("old"), keys("old")))
	if err := os.WriteFile(path, first, 0o640); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	o := &Options{Source: &File{Path: path}, Out: &out, Now: func() time.Time { return now }, Command: "kubectl rotate encryption %s --config " + path}
	// No cluster: the stage writes, then the wait for the API servers fails.
	if _, err := o.Run(context.Background(), StepStage); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Fatalf("stage without a cluster: %v", err)
	}
	b, _ := os.ReadFile(path)
	st, err := ReadState(b, "f")
	if err != nil || st.Stage != encryptionconfig.StageStaged || st.Key != "key-20261202T040000Z" {
		t.Fatalf("after stage: %v %+v", err, st)
	}
	for _, p := range st.Config.Providers {
		if len(p.Keys) != 2 || p.Keys[1].Name != st.Key || p.Keys[1].Size != 32 {
			t.Errorf("%s: keys %+v", p, p.Keys)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's 0640 kept", fi.Mode().Perm())
	}
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "secret: "); ok && strings.Contains(out.String(), s) {
			t.Fatal("a key was printed")
		}
	}
	// A promote is refused until the API servers applied the stage, with
	// nothing changed.
	if _, err := o.Run(context.Background(), StepPromote); err == nil || !strings.Contains(err.Error(), "run `kubectl rotate encryption stage --config") {
		t.Fatalf("promote before the stage was applied: %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Error("the refused promote changed the file")
	}
}

func TestFileWriteRefusesAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enc.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &File{Path: path}
	if err := f.Write(context.Background(), []byte("b"), []byte("c")); err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Fatalf("write over a changed file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a" {
		t.Errorf("file is %q", b)
	}
	if err := f.Keep(context.Background(), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if b, err := f.Kept(context.Background()); err != nil || string(b) != "kept" {
		t.Errorf("kept %q %v", b, err)
	}
	if fi, _ := os.Stat(f.KeptAt()); fi.Mode().Perm() != 0o600 {
		t.Errorf("retired keys kept with mode %v", fi.Mode().Perm())
	}
	if err := f.Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := f.Kept(context.Background()); err != nil || b != nil {
		t.Errorf("after drop: %q %v", b, err)
	}
}
