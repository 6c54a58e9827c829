package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
)

// DefaultKopsVersion is the kops CLI the interop tests run: the version of
// the k8s.io/kops library kops-rotate is built with.
const DefaultKopsVersion = "v1.36.2"

// EnsureKops returns the path of the real kops CLI, building it into
// cacheDir/kops-VERSION/bin if missing. `go install k8s.io/kops/cmd/kops@v`
// is refused here (the proxy answers 403 to the version list it reads), so
// it is built from a scratch module with a tool directive. Default build
// flags are used on purpose: they share the build cache with the project's
// own tests of the kOps packages.
func EnsureKops(ctx context.Context, cacheDir, version string, log io.Writer) (string, error) {
	dir := filepath.Join(cacheDir, "kops-"+version)
	bin := filepath.Join(dir, "bin", "kops")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		return "", err
	}
	unlock, err := files.Lock(filepath.Join(cacheDir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(log, "building the kops %s CLI into %s (first time only: about 5-10 min)\n", version, filepath.Dir(bin))
	src := filepath.Join(dir, "src")
	gomod := "module kuberotate.local/kops-cli\n\ngo 1.26.5\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	os.Remove(filepath.Join(src, "go.sum"))
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = src
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
		return cmd.Run()
	}
	if err := run("get", "-tool", "k8s.io/kops/cmd/kops@"+version); err != nil {
		return "", fmt.Errorf("resolving kops %s: %w", version, err)
	}
	if err := run("build", "-o", bin+".tmp", "k8s.io/kops/cmd/kops"); err != nil {
		return "", fmt.Errorf("building kops %s: %w", version, err)
	}
	return bin, os.Rename(bin+".tmp", bin)
}
