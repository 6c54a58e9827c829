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
	var sums [2][][32]byte
	var paths []string
	for i := range sums {
		paths, err = Build(context.Background(), root, filepath.Join(t.TempDir(), "img"), All)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sums[i] = append(sums[i], sha256.Sum256(b))
		}
	}
	for i, im := range All {
		if sums[0][i] != sums[1][i] {
			t.Errorf("%s: two builds of the same sources gave different archives", im.Ref())
		}
	}
	for i, im := range All {
		path := paths[i]
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
