package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
	"github.com/kube-rotate/kube-rotate/e2e/internal/gobuild"
)

// Versions pins the control-plane components. The Kubernetes version must
// download and pass the checksum database through the module proxy in use.
type Versions struct {
	// Kubernetes is the k8s.io/kubernetes tag, for example v1.36.4.
	Kubernetes string
	// Kwok is the sigs.k8s.io/kwok tag, for example v0.8.0.
	Kwok string
}

// DefaultVersions are the versions the project tests against: Kubernetes
// v1.36.4 is the newest v1.36 patch whose go.mod verifies here, and kwok
// v0.8.0 is built against k8s.io/* v0.36.
func DefaultVersions() Versions {
	return Versions{Kubernetes: "v1.36.4", Kwok: "v0.8.0"}
}

// Binaries are absolute paths of the built programs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubectl, Kwok string
	// Kubelet runs the real node (see Options.RealNode).
	Kubelet string
	// KwokStages is kwok's configuration: the Stage objects that make fake
	// nodes Ready, keep their leases and move pods to Running and Ready.
	KwokStages string
}

// kubernetesCommands are built from k8s.io/kubernetes/cmd/<name>.
var kubernetesCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet"}

// DefaultCacheDir is where built binaries are kept between runs, keyed by
// version: $KUBE_ROTATE_CACHE, else $XDG_CACHE_HOME/kube-rotate, else
// ~/.cache/kube-rotate. Never inside the repository.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("KUBE_ROTATE_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory (set KUBE_ROTATE_CACHE): %w", err)
	}
	return filepath.Join(d, "kube-rotate"), nil
}

// binariesIn returns the paths the binaries have (or will have) in cacheDir.
func binariesIn(cacheDir string, v Versions) Binaries {
	k := filepath.Join(cacheDir, "k8s-"+v.Kubernetes, "bin")
	return Binaries{
		Etcd:              filepath.Join(k, "etcd"),
		APIServer:         filepath.Join(k, "kube-apiserver"),
		ControllerManager: filepath.Join(k, "kube-controller-manager"),
		Scheduler:         filepath.Join(k, "kube-scheduler"),
		Kubectl:           filepath.Join(k, "kubectl"),
		Kubelet:           filepath.Join(k, "kubelet"),
		Kwok:              filepath.Join(cacheDir, "kwok-"+v.Kwok, "bin", "kwok"),
		KwokStages:        filepath.Join(cacheDir, "kwok-"+v.Kwok, "stages.yaml"),
	}
}

func (b Binaries) all() []string {
	return []string{b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler, b.Kubectl, b.Kubelet, b.Kwok}
}

// Missing lists the binaries that are not built yet.
func (b Binaries) Missing() []string {
	var out []string
	for _, p := range b.all() {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			out = append(out, p)
		}
	}
	if _, err := os.Stat(b.KwokStages); err != nil {
		out = append(out, b.KwokStages)
	}
	return out
}

// EnsureBinaries returns the control-plane binaries for v, building the
// missing ones from the Go module proxy into cacheDir. Builds write to a
// temporary name and rename, so an interrupted build never leaves a
// half-written binary that a later run would trust. Concurrent callers are
// serialised with a lock file.
func EnsureBinaries(ctx context.Context, cacheDir string, v Versions, log io.Writer) (Binaries, error) {
	bins := binariesIn(cacheDir, v)
	if len(bins.Missing()) == 0 {
		return bins, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return bins, fmt.Errorf("creating cache directory: %w", err)
	}
	unlock, err := files.Lock(filepath.Join(cacheDir, ".build.lock"))
	if err != nil {
		return bins, err
	}
	defer unlock()

	k8sMissing := false
	for _, p := range []string{bins.Etcd, bins.APIServer, bins.ControllerManager, bins.Scheduler, bins.Kubectl, bins.Kubelet} {
		if contains(bins.Missing(), p) {
			k8sMissing = true
		}
	}
	if k8sMissing {
		fmt.Fprintf(log, "building Kubernetes %s control plane into %s (first time only: about 8-15 min on 2 cores)\n", v.Kubernetes, filepath.Dir(bins.APIServer))
		if err := buildKubernetes(ctx, filepath.Join(cacheDir, "k8s-"+v.Kubernetes), v.Kubernetes, log); err != nil {
			return bins, err
		}
	}
	if contains(bins.Missing(), bins.Kwok) {
		fmt.Fprintf(log, "building kwok %s into %s\n", v.Kwok, filepath.Dir(bins.Kwok))
		if err := buildKwok(ctx, filepath.Dir(bins.Kwok), v.Kwok, log); err != nil {
			return bins, err
		}
	}
	if contains(bins.Missing(), bins.KwokStages) {
		if err := writeKwokStages(ctx, cacheDir, bins.KwokStages, v.Kwok); err != nil {
			return bins, err
		}
	}
	if m := bins.Missing(); len(m) > 0 {
		return bins, fmt.Errorf("build finished but %s is still missing", strings.Join(m, ", "))
	}
	return bins, nil
}

// buildKubernetes builds etcd and the Kubernetes commands through a wrapper
// module: `go install k8s.io/kubernetes/cmd/...@v` is refused because the
// upstream go.mod replaces every k8s.io/X staging module with a local path.
// The wrapper replaces each of them with the published k8s.io/X v0.N.P
// instead and pins etcd to the version upstream itself requires.
func buildKubernetes(ctx context.Context, dir, version string, log io.Writer) error {
	src, bin := filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	for _, d := range []string{src, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	upstreamMod, err := downloadGoMod(ctx, src, "k8s.io/kubernetes@"+version)
	if err != nil {
		return err
	}
	w, err := wrapperGoMod(upstreamMod, version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), w.goMod, 0o644); err != nil {
		return fmt.Errorf("writing wrapper go.mod: %w", err)
	}
	os.Remove(filepath.Join(src, "go.sum"))
	get := []string{"get"}
	for _, c := range kubernetesCommands {
		get = append(get, "k8s.io/kubernetes/cmd/"+c+"@"+version)
	}
	get = append(get, "go.etcd.io/etcd/server/v3@"+w.etcdVersion)
	if err := runGo(ctx, src, log, get...); err != nil {
		return fmt.Errorf("resolving Kubernetes %s modules: %w", version, err)
	}
	if err := checkNoUpgrades(ctx, src, upstreamMod); err != nil {
		return err
	}
	minor := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	ldflags := fmt.Sprintf("-s -w -X k8s.io/component-base/version.gitVersion=%[1]s -X k8s.io/component-base/version.gitMajor=%[2]s -X k8s.io/component-base/version.gitMinor=%[3]s -X k8s.io/client-go/pkg/version.gitVersion=%[1]s -X k8s.io/component-base/version.gitTreeState=clean",
		version, minor[0], minor[1])
	targets := map[string]string{"etcd": "go.etcd.io/etcd/server/v3"}
	order := []string{"etcd"}
	for _, c := range kubernetesCommands {
		targets[c] = "k8s.io/kubernetes/cmd/" + c
		order = append(order, c)
	}
	for _, name := range order {
		out := filepath.Join(bin, name)
		if _, err := os.Stat(out); err == nil {
			continue
		}
		fmt.Fprintf(log, "  go build %s\n", targets[name])
		if err := runGo(ctx, src, log, "build", "-trimpath", "-ldflags", ldflags, "-o", out+".tmp", targets[name]); err != nil {
			return fmt.Errorf("building %s: %w", name, err)
		}
		if err := os.Rename(out+".tmp", out); err != nil {
			return err
		}
	}
	return nil
}

// buildKwok installs kwok; its go.mod has no replace directives, so a
// plain `go install` works.
func buildKwok(ctx context.Context, binDir, version string, log io.Writer) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := goCommand(ctx, tmp, log, "install", "-trimpath", "-ldflags", "-s -w", "sigs.k8s.io/kwok/cmd/kwok@"+version)
	cmd.Env = append(cmd.Env, "GOBIN="+tmp)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building kwok %s: %w", version, err)
	}
	return os.Rename(filepath.Join(tmp, "kwok"), filepath.Join(binDir, "kwok"))
}

// kwokStageSet is the kustomization in the kwok module that lists the
// "fast" stages: nodes Ready at once with leases kept, pods Ready at once.
const kwokStageSet = "kustomize/stage/fast"

// writeKwokStages assembles kwok's Stage objects from the kustomizations
// shipped in the kwok module (kwokctl does the same for its clusters): the
// kwok binary itself starts with none and refuses to run.
func writeKwokStages(ctx context.Context, cacheDir, out, version string) error {
	dir, err := downloadModule(ctx, cacheDir, "sigs.k8s.io/kwok@"+version)
	if err != nil {
		return err
	}
	docs, err := kustomizationFiles(filepath.Join(dir, kwokStageSet))
	if err != nil {
		return fmt.Errorf("reading kwok %s stages: %w", version, err)
	}
	if len(docs) == 0 {
		return fmt.Errorf("kwok %s ships no stages under %s", version, kwokStageSet)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# kwok %s stages from %s, assembled by kube-rotate's e2e/cluster\n", version, kwokStageSet)
	for _, d := range docs {
		b.WriteString("---\n")
		b.Write(bytes.TrimSpace(d))
		b.WriteString("\n")
	}
	if err := os.WriteFile(out+".tmp", b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// kustomizationFiles returns the contents of the resource files a
// kustomization lists, following resources that are directories.
func kustomizationFiles(dir string) ([][]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(dir, "kustomization.yaml"), err)
	}
	var out [][]byte
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			sub, err := kustomizationFiles(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

type wrapper struct {
	goMod       []byte
	etcdVersion string
}

// wrapperGoMod derives the wrapper module from upstream's go.mod: same go
// and godebug lines, a require of k8s.io/kubernetes, and one replace per
// staging module pointing at the published v0.N.P.
func wrapperGoMod(upstream []byte, version string) (wrapper, error) {
	f, err := modfile.Parse("k8s.io/kubernetes/go.mod", upstream, nil)
	if err != nil {
		return wrapper{}, fmt.Errorf("parsing k8s.io/kubernetes %s go.mod: %w", version, err)
	}
	staging := "v0." + strings.TrimPrefix(version, "v1.")
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Generated by kube-rotate's e2e/cluster from k8s.io/kubernetes %s; do not edit.\n", version)
	b.WriteString("module kuberotate.local/k8s-harness\n\n")
	if f.Go != nil {
		fmt.Fprintf(&b, "go %s\n\n", f.Go.Version)
	}
	for _, g := range f.Godebug {
		fmt.Fprintf(&b, "godebug %s=%s\n\n", g.Key, g.Value)
	}
	fmt.Fprintf(&b, "require k8s.io/kubernetes %s\n\nreplace (\n", version)
	n := 0
	for _, r := range f.Replace {
		if strings.HasPrefix(r.New.Path, "./staging/") {
			fmt.Fprintf(&b, "\t%s => %s %s\n", r.Old.Path, r.Old.Path, staging)
			n++
		}
	}
	b.WriteString(")\n")
	if n == 0 {
		return wrapper{}, fmt.Errorf("k8s.io/kubernetes %s go.mod has no ./staging replace directives: the wrapper recipe does not apply to this version", version)
	}
	w := wrapper{goMod: b.Bytes()}
	for _, r := range f.Require {
		if r.Mod.Path == "go.etcd.io/etcd/server/v3" {
			w.etcdVersion = r.Mod.Version
		}
	}
	if w.etcdVersion == "" {
		return wrapper{}, fmt.Errorf("k8s.io/kubernetes %s go.mod does not require go.etcd.io/etcd/server/v3: cannot tell which etcd to build", version)
	}
	return w, nil
}

// goBuild runs the go commands of the control plane's wrapper module.
var goBuild gobuild.Env

// checkNoUpgrades fails if resolving the wrapper moved any module that
// upstream pins to another version (the staging k8s.io modules are
// replaced on purpose): the binaries must be upstream's.
func checkNoUpgrades(ctx context.Context, src string, upstream []byte) error {
	return goBuild.CheckNoUpgrades(ctx, src, upstream, func(path string) bool { return strings.HasPrefix(path, "k8s.io/") })
}

// downloadGoMod returns the go.mod of module@version from the module proxy.
func downloadGoMod(ctx context.Context, dir, modVersion string) ([]byte, error) {
	info, err := modDownload(ctx, dir, modVersion)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(info.GoMod)
}

// downloadModule returns the directory of module@version's source in the
// module cache.
func downloadModule(ctx context.Context, dir, modVersion string) (string, error) {
	info, err := modDownload(ctx, dir, modVersion)
	if err != nil {
		return "", err
	}
	return info.Dir, nil
}

func modDownload(ctx context.Context, dir, modVersion string) (gobuild.ModInfo, error) {
	return goBuild.ModDownload(ctx, dir, modVersion)
}

func goCommand(ctx context.Context, dir string, log io.Writer, args ...string) *exec.Cmd {
	return goBuild.Command(ctx, dir, log, args...)
}

func runGo(ctx context.Context, dir string, log io.Writer, args ...string) error {
	return goBuild.Run(ctx, dir, log, args...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
