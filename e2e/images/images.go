// Package images builds the container images the real-node end-to-end
// tests run, offline: each is one static Go binary of this repository in a
// single-layer OCI image made with go-containerregistry, written as an
// image archive (one per image) that containerd (`ctr images import`) and
// kind (`kind load image-archive`) both load. Nothing is pulled from a
// registry.
//
// An archive is the same bytes for the same sources: layers carry fixed
// timestamps and owners, and the binaries are built with -trimpath. (One
// archive per image because go-containerregistry writes a multi-image
// archive in map order.)
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
)

// Registry is the made-up registry host of every image built here. No
// registry answers at that name, so a pod whose image was not imported
// fails with ErrImagePull instead of running something else.
const Registry = "kube-rotate.local"

// Tag is the tag of every image built here.
const Tag = "e2e"

// Image is one image: a main package of this repository built as
// /<base name of Package>, which is also the entrypoint.
type Image struct {
	// Name is the repository part, for example "pause".
	Name string
	// Package is the Go import path of the main package.
	Package string
}

// Ref is the image reference pods use, for example
// kube-rotate.local/pause:e2e.
func (i Image) Ref() string { return Registry + "/" + i.Name + ":" + Tag }

// Binary is the path of the program inside the image.
func (i Image) Binary() string { return "/" + filepath.Base(i.Package) }

const module = "github.com/kube-rotate/kube-rotate"

// Pause is the pod sandbox image (containerd's sandbox_image).
var Pause = Image{Name: "pause", Package: module + "/e2e/images/pause"}

// TestApp holds the test programs: the database consumer, the hook
// program and the JWKS signer and verifier (see e2e/images/testapp).
var TestApp = Image{Name: "testapp", Package: module + "/e2e/images/testapp"}

// All are the images the real-node tests use.
var All = []Image{Pause, TestApp}

// Build builds imgs into image archives <dir>/<name>.tar and returns their
// paths, in the order of imgs. repoRoot is the directory of this
// repository's go.mod.
func Build(ctx context.Context, repoRoot, dir string, imgs []Image) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var out []string
	for _, im := range imgs {
		bin := filepath.Join(dir, im.Name+".bin")
		if err := goBuild(ctx, repoRoot, im.Package, bin); err != nil {
			return nil, err
		}
		img, err := fromBinary(bin, im.Binary())
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref(), err)
		}
		ref, err := name.NewTag(im.Ref())
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, im.Name+".tar")
		if err := tarball.WriteToFile(path+".tmp", ref, img); err != nil {
			return nil, fmt.Errorf("writing image archive %s: %w", path, err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return nil, err
		}
		os.Remove(bin)
		out = append(out, path)
	}
	return out, nil
}

// RepoRoot returns the directory of this repository's go.mod, found from
// the working directory (tests run in their package's directory).
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the kube-rotate module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

func goBuild(ctx context.Context, repoRoot, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, files.LastLines(string(b), 10))
	}
	return nil
}

// epoch is the fixed time of every layer entry and image config, so the
// archive depends on the sources only.
var epoch = time.Unix(0, 0).UTC()

// fromBinary makes a one-layer image holding the program at path, run as
// its entrypoint, with /tmp for programs that write files.
func fromBinary(bin, path string) (v1.Image, error) {
	prog, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: strings.TrimPrefix(path, "/"), mode: 0o755, body: prog},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{path}
	cf.Config.Env = []string{"PATH=/"}
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}
