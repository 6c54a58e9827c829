package images

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestBuildReproducible builds the images twice: the archives are the same
// bytes, and each image runs its program as the entrypoint.
func TestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go binaries")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var sums [2][32]byte
	var path string
	for i := range sums {
		path, err = Build(context.Background(), root, filepath.Join(t.TempDir(), "img"), All)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds of the same sources gave different archives")
	}
	for _, im := range All {
		tag, err := name.NewTag(im.Ref())
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatalf("%s is not in the archive: %v", im.Ref(), err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != im.Binary() {
			t.Errorf("%s: entrypoint %v, want [%s]", im.Ref(), got, im.Binary())
		}
		if cf.OS != "linux" {
			t.Errorf("%s: os %q", im.Ref(), cf.OS)
		}
	}
}
