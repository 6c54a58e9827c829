// Package eso runs the real External Secrets Operator (ESO) controller for
// the project's end-to-end tests, against the project's local control plane
// or any cluster a kubeconfig points at (kind in the e2e-kind workflow).
//
// # Build
//
// Ensure builds the controller from the Go module proxy into the binary
// cache (cacheDir/eso-VERSION/bin/external-secrets) and assembles ESO's CRDs
// into one multi-document YAML (cacheDir/eso-VERSION/crds.yaml). `go install
// github.com/external-secrets/external-secrets@v` is refused because
// upstream's go.mod has a replace directive, so the controller is built
// through a wrapper module that requires ESO and copies its replace
// directives; resolution must select exactly the versions upstream's go.mod
// pins, or the build fails. The checksum database does not answer for some
// of ESO's dependencies here, so the wrapper's go commands (only those) run
// with GOSUMDB=off. `make e2e` runs `bin/e2e-cluster eso` and passes the
// result to the tests as ESO and ESO_CRDS (see FromEnv).
//
// # Run
//
// Start applies the CRDs (server-side apply, field manager FieldManager,
// forced), waits until they are Established, then starts the controller
// alone: no webhook and no cert-controller (separate subcommands of the same
// binary), no leader election, no metrics server, the health endpoint on a
// free 127.0.0.1 port. The controller gets the cluster from the KUBECONFIG
// environment variable (it has no --kubeconfig flag: ctrl.GetConfigOrDie).
// Its standard output and error go to LogDir/external-secrets.log.
//
// The controller runs in its own process group with Pdeathsig, started from
// a goroutine locked to its OS thread for the controller's whole life: the
// kernel kills it when the test process dies, even by SIGKILL or a test
// timeout that skips t.Cleanup, and never earlier (Pdeathsig fires when the
// starting thread exits, not the process).
//
// Two controllers without leader election reconcile the same objects twice;
// tests that run in parallel with other packages on one cluster should set
// Options.Namespace so each controller only sees its own namespace.
package eso

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
	"github.com/kube-rotate/kube-rotate/e2e/internal/gobuild"
	"github.com/kube-rotate/kube-rotate/e2e/internal/ports"
)

// DefaultVersion is the ESO release the e2e tests run: the one whose
// behaviour (force-sync annotation, refresh policies) the project follows.
const DefaultVersion = "v0.20.4"

// Module is ESO's Go module; its root package is the controller's main.
const Module = "github.com/external-secrets/external-secrets"

// FieldManager is the server-side apply field manager of everything this
// package writes (CRDs, ClusterSecretStores).
const FieldManager = "kube-rotate-e2e"

// crdSet is the kustomization in the ESO module that lists every CRD.
const crdSet = "config/crds/bases"

// Build holds the absolute paths of a built ESO.
type Build struct {
	// Controller is the external-secrets binary.
	Controller string
	// CRDs is the multi-document YAML of ESO's CustomResourceDefinitions.
	CRDs string
}

func buildIn(cacheDir, version string) Build {
	dir := filepath.Join(cacheDir, "eso-"+version)
	return Build{
		Controller: filepath.Join(dir, "bin", "external-secrets"),
		CRDs:       filepath.Join(dir, "crds.yaml"),
	}
}

func (b Build) complete() bool {
	fi, err := os.Stat(b.Controller)
	if err != nil || fi.Mode()&0o111 == 0 {
		return false
	}
	_, err = os.Stat(b.CRDs)
	return err == nil
}

// Ensure returns the ESO controller and CRD bundle of version, building
// them into cacheDir/eso-VERSION if missing (first time: 5-10 min and
// 3 GB of memory on 2 cores). Files are written under a temporary name and
// renamed; concurrent callers are serialised by the cache's build lock.
// Progress goes to log.
func Ensure(ctx context.Context, cacheDir, version string, log io.Writer) (Build, error) {
	if log == nil {
		log = io.Discard
	}
	b := buildIn(cacheDir, version)
	if b.complete() {
		return b, nil
	}
	dir := filepath.Dir(b.CRDs)
	src := filepath.Join(dir, "src")
	for _, d := range []string{src, filepath.Dir(b.Controller)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return b, err
		}
	}
	unlock, err := files.Lock(filepath.Join(cacheDir, ".build.lock"))
	if err != nil {
		return b, err
	}
	defer unlock()
	if b.complete() {
		return b, nil
	}
	info, err := goBuild.ModDownload(ctx, src, Module+"@"+version)
	if err != nil {
		return b, err
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		return b, err
	}
	if _, err := os.Stat(b.CRDs); err != nil {
		if err := writeCRDs(info.Dir, b.CRDs, version); err != nil {
			return b, err
		}
	}
	if fi, err := os.Stat(b.Controller); err == nil && fi.Mode()&0o111 != 0 {
		return b, nil
	}
	fmt.Fprintf(log, "building the External Secrets Operator %s controller into %s (first time only: about 5-10 min, 3 GB of memory)\n", version, filepath.Dir(b.Controller))
	gomod, err := wrapperGoMod(upstream, version)
	if err != nil {
		return b, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), gomod, 0o644); err != nil {
		return b, fmt.Errorf("writing the wrapper go.mod: %w", err)
	}
	os.Remove(filepath.Join(src, "go.sum"))
	if err := goBuild.Command(ctx, src, log, "get", Module+"@"+version).Run(); err != nil {
		return b, fmt.Errorf("resolving ESO %s modules: %w", version, err)
	}
	if err := goBuild.CheckNoUpgrades(ctx, src, upstream, nil); err != nil {
		return b, err
	}
	tmp := b.Controller + ".tmp"
	if err := goBuild.Command(ctx, src, log, "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp, Module).Run(); err != nil {
		return b, fmt.Errorf("building the ESO %s controller: %w", version, err)
	}
	return b, os.Rename(tmp, b.Controller)
}

// FromEnv returns the Build given by the ESO and ESO_CRDS environment
// variables, which `make e2e` and `make e2e-kubeconfig` set from
// `bin/e2e-cluster eso`.
func FromEnv() (Build, error) {
	b := Build{Controller: os.Getenv("ESO"), CRDs: os.Getenv("ESO_CRDS")}
	if b.Controller == "" || b.CRDs == "" {
		return b, errors.New("ESO and ESO_CRDS are not set: run the tests with `make e2e` (or `make e2e-kubeconfig`), or set them from the output of `bin/e2e-cluster eso`")
	}
	for _, p := range []string{b.Controller, b.CRDs} {
		if !filepath.IsAbs(p) {
			return b, fmt.Errorf("ESO/ESO_CRDS must be absolute paths, not %q", p)
		}
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("ESO/ESO_CRDS: %w (rebuild with `bin/e2e-cluster eso`)", err)
		}
	}
	return b, nil
}

// wrapperGoMod derives the wrapper module from upstream's go.mod: the same
// go and godebug lines, a require of ESO, and upstream's replace directives
// that point at other modules (local-path replaces cannot be followed).
func wrapperGoMod(upstream []byte, version string) ([]byte, error) {
	f, err := modfile.Parse(Module+"/go.mod", upstream, nil)
	if err != nil {
		return nil, fmt.Errorf("parsing ESO %s go.mod: %w", version, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Generated by kube-rotate's e2e/eso from %s %s; do not edit.\n", Module, version)
	b.WriteString("module kuberotate.local/eso-controller\n\n")
	if f.Go != nil {
		fmt.Fprintf(&b, "go %s\n\n", f.Go.Version)
	}
	for _, g := range f.Godebug {
		fmt.Fprintf(&b, "godebug %s=%s\n\n", g.Key, g.Value)
	}
	fmt.Fprintf(&b, "require %s %s\n", Module, version)
	for _, r := range f.Replace {
		if modfile.IsDirectoryPath(r.New.Path) {
			return nil, fmt.Errorf("ESO %s go.mod replaces %s with the directory %s: the wrapper recipe does not apply to this version", version, r.Old.Path, r.New.Path)
		}
		old := r.Old.Path
		if r.Old.Version != "" {
			old += " " + r.Old.Version
		}
		fmt.Fprintf(&b, "\nreplace %s => %s %s\n", old, r.New.Path, r.New.Version)
	}
	return b.Bytes(), nil
}

// writeCRDs assembles the CRDs the module's config/crds/bases kustomization
// lists into one multi-document YAML at out.
func writeCRDs(moduleDir, out, version string) error {
	dir := filepath.Join(moduleDir, crdSet)
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return fmt.Errorf("reading ESO %s CRD list: %w", version, err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("parsing %s: %w", filepath.Join(dir, "kustomization.yaml"), err)
	}
	if len(k.Resources) == 0 {
		return fmt.Errorf("ESO %s lists no CRDs in %s", version, crdSet)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# External Secrets Operator %s CRDs from %s, assembled by kube-rotate's e2e/eso\n", version, crdSet)
	for _, r := range k.Resources {
		doc, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			return err
		}
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Conversion *struct {
					Strategy string `json:"strategy"`
				} `json:"conversion"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return fmt.Errorf("parsing %s: %w", r, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			return fmt.Errorf("%s in ESO %s %s is a %q, not a CustomResourceDefinition", r, version, crdSet, crd.Kind)
		}
		if c := crd.Spec.Conversion; c != nil && c.Strategy != "" && c.Strategy != "None" {
			return fmt.Errorf("%s in ESO %s needs a %s conversion (the webhook is not run here)", r, version, c.Strategy)
		}
		doc = bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---\n"))
		b.WriteString("---\n")
		b.Write(doc)
		b.WriteString("\n")
	}
	if err := os.WriteFile(out+".tmp", b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// goBuild runs the go commands of the wrapper module, with GOSUMDB=off
// for it only: the checksum database does not answer for some of ESO's
// dependencies here; the module proxy still serves them.
var goBuild = gobuild.Env{"GOSUMDB=off"}

// Options configure Start.
type Options struct {
	// Build is the controller and CRDs to run (Ensure or FromEnv).
	Build Build
	// Kubeconfig is the cluster's kubeconfig. Default: $KUBECONFIG.
	Kubeconfig string
	// LogDir receives external-secrets.log. Default: a new temporary
	// directory, kept after Stop.
	LogDir string
	// Log receives progress lines (never secret values). Default: none.
	Log io.Writer
	// Namespace, when set, is passed as --namespace: the controller only
	// watches ExternalSecrets, PushSecrets, SecretStores and Secrets of
	// that namespace (ClusterSecretStores still work if they reference
	// nothing in other namespaces, as the fake provider does).
	Namespace string
	// ControllerClass, when set, is passed as --controller-class: the
	// controller then skips stores whose spec.controller names another
	// class, and the default controller skips stores of this one
	// (pkg/controllers/secretstore common.go ShouldProcessStore). Two
	// controllers on one cluster (parallel test packages) keep apart so.
	ControllerClass string
	// ExtraArgs are appended to the controller's flags.
	ExtraArgs []string
}

// Operator is a running ESO controller started by Start.
type Operator struct {
	// LogFile is the controller's log.
	LogFile string
	// HealthURL is the controller's /healthz endpoint.
	HealthURL string
	// Args are the controller's flags.
	Args []string

	pid    int
	exited chan struct{}
	err    error // the controller's exit, after exited is closed
}

// crdGVR is the resource of CustomResourceDefinitions.
var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Start installs the CRDs of o.Build, starts the controller against the
// cluster of o.Kubeconfig and waits until its health endpoint answers.
// Stop it with Stop (a test: t.Cleanup). If the controller exits during
// startup, the error carries the tail of its log.
func Start(ctx context.Context, o Options) (*Operator, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Kubeconfig == "" {
		o.Kubeconfig = os.Getenv("KUBECONFIG")
	}
	if o.Kubeconfig == "" {
		return nil, errors.New("no kubeconfig: set Options.Kubeconfig or KUBECONFIG")
	}
	if o.Build.Controller == "" || o.Build.CRDs == "" {
		return nil, errors.New("Options.Build is empty: use Ensure or FromEnv")
	}
	kubeconfig, err := filepath.Abs(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if o.LogDir == "" {
		if o.LogDir, err = os.MkdirTemp("", "kube-rotate-eso-"); err != nil {
			return nil, err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	n, err := InstallCRDs(ctx, dyn, o.Build.CRDs)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "eso: %d CRDs applied and established in %s\n", n, time.Since(t0).Round(time.Millisecond))

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		op, err := start(ctx, o, kubeconfig)
		if err == nil {
			fmt.Fprintf(o.Log, "eso: controller pid %d healthy in %s (log %s)\n", op.pid, time.Since(t0).Round(time.Millisecond), op.LogFile)
			return op, nil
		}
		lastErr = err
		if !errors.Is(err, errPortBusy) {
			break
		}
	}
	return nil, lastErr
}

var errPortBusy = errors.New("the health port was taken")

// start starts the controller once, on a fresh free health port.
func start(ctx context.Context, o Options, kubeconfig string) (*Operator, error) {
	port, err := ports.Free()
	if err != nil {
		return nil, err
	}
	op := &Operator{
		LogFile:   filepath.Join(o.LogDir, "external-secrets.log"),
		HealthURL: fmt.Sprintf("http://127.0.0.1:%d/healthz", port),
		exited:    make(chan struct{}),
	}
	op.Args = []string{
		// The controller manager alone: `webhook` and `certcontroller` are
		// other subcommands, not run. Flags: cmd/controller/root.go.
		"--metrics-addr=0", // 0 disables controller-runtime's metrics server
		"--live-addr=127.0.0.1:" + strconv.Itoa(port),
		"--enable-leader-election=false",
		"--enable-cluster-store-reconciler=true",
		"--enable-cluster-external-secret-reconciler=true",
		"--enable-push-secret-reconciler=true",
		"--enable-cluster-push-secret-reconciler=true",
		"--loglevel=info",
		"--zap-time-encoding=iso8601",
	}
	if o.Namespace != "" {
		op.Args = append(op.Args, "--namespace="+o.Namespace)
	}
	if o.ControllerClass != "" {
		op.Args = append(op.Args, "--controller-class="+o.ControllerClass)
	}
	op.Args = append(op.Args, o.ExtraArgs...)
	logf, err := os.OpenFile(op.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the controller log: %w", err)
	}
	fmt.Fprintf(logf, "--- kube-rotate: %s %s\n", o.Build.Controller, strings.Join(op.Args, " "))

	// The goroutine that starts the controller stays locked to its OS
	// thread until the controller exits: Pdeathsig fires when that thread
	// exits, so it must outlive the controller, and the kernel then kills
	// the controller only when the whole test process dies.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer logf.Close()
		cmd := exec.Command(o.Build.Controller, op.Args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("starting %s: %w", o.Build.Controller, err)
			runtime.UnlockOSThread()
			return
		}
		op.pid = cmd.Process.Pid
		started <- nil
		op.err = cmd.Wait()
		close(op.exited)
		// The locked thread exits with this goroutine; the controller is
		// gone already.
	}()
	if err := <-started; err != nil {
		return nil, err
	}

	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-op.exited:
			tail := op.LogTail(20)
			err := fmt.Errorf("the ESO controller exited during startup (%v); log %s:\n%s", op.err, op.LogFile, tail)
			if strings.Contains(tail, "address already in use") {
				return nil, fmt.Errorf("%w: %w", errPortBusy, err)
			}
			return nil, err
		case <-deadline.C:
			_ = op.Stop()
			return nil, fmt.Errorf("the ESO controller is not healthy after 2m (%s); log %s:\n%s", op.HealthURL, op.LogFile, op.LogTail(20))
		case <-ctx.Done():
			_ = op.Stop()
			return nil, ctx.Err()
		case <-tick.C:
			if resp, err := hc.Get(op.HealthURL); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return op, nil
				}
			}
		}
	}
}

// Stop terminates the controller's process group (SIGTERM, then SIGKILL
// after 10 s) and waits for it. Stopping a stopped operator is a no-op.
func (op *Operator) Stop() error {
	if op == nil || op.pid == 0 {
		return nil
	}
	select {
	case <-op.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-op.pid, syscall.SIGTERM)
	select {
	case <-op.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-op.pid, syscall.SIGKILL)
		<-op.exited
	}
	_ = syscall.Kill(-op.pid, syscall.SIGKILL) // anything left in the group
	return nil
}

// Exited is closed when the controller process has exited.
func (op *Operator) Exited() <-chan struct{} { return op.exited }

// LogTail returns the last n lines of the controller's log, for test
// failure messages. ESO logs no secret values at the info level it runs at.
func (op *Operator) LogTail(n int) string {
	return files.Tail(op.LogFile, n)
}

// InstallCRDs applies every CustomResourceDefinition of the multi-document
// YAML file at path (server-side apply, FieldManager, forced) and waits
// until each is Established. It returns how many it applied.
func InstallCRDs(ctx context.Context, dyn dynamic.Interface, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 1<<20)
	var names []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return len(names), fmt.Errorf("reading %s: %w", path, err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() != "CustomResourceDefinition" {
			return len(names), fmt.Errorf("%s holds a %s, not only CRDs", path, u.GetKind())
		}
		_, err := dyn.Resource(crdGVR).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return len(names), fmt.Errorf("applying CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("%s holds no CRDs", path)
	}
	pending := append([]string(nil), names...)
	deadline := time.Now().Add(time.Minute)
	for len(pending) > 0 {
		var still []string
		for _, name := range pending {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !conditionTrue(u, "Established") {
				still = append(still, name)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(pending)
			return len(names), fmt.Errorf("CRDs not Established after 1m: %s", strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return len(names), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return len(names), nil
}

// conditionTrue reports whether u's status.conditions has typ with status
// "True".
func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	ok, _ := condition(u, typ)
	return ok
}

// condition returns whether u's condition typ is True, and its reason and
// message when it is not.
func condition(u *unstructured.Unstructured, typ string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			if m["status"] == "True" {
				return true, ""
			}
			return false, fmt.Sprintf("%v: %v", m["reason"], m["message"])
		}
	}
	return false, "no " + typ + " condition yet"
}

// ClusterSecretStores is the resource of ESO's ClusterSecretStores.
var ClusterSecretStores = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "clustersecretstores"}

// FakeData is one entry of a fake provider (spec.provider.fake.data).
type FakeData struct {
	Key, Value string
	// Version is optional; an ExternalSecret reads it with remoteRef.version.
	Version string
}

// FakeStore creates or updates (server-side apply, FieldManager, forced)
// the ClusterSecretStore name with ESO's fake provider serving data, and
// waits until the controller reports it Ready. After an update it also
// waits for the controller's "Valid" event of the store dated from the
// update on, so the controller has seen the new data before the caller
// triggers a sync. Values are never logged or put in errors.
func FakeStore(ctx context.Context, dyn dynamic.Interface, name string, data []FakeData) error {
	return FakeStoreOfClass(ctx, dyn, name, "", data)
}

// FakeStoreOfClass is FakeStore for the controller of class (its
// spec.controller); "" is every controller's.
func FakeStoreOfClass(ctx context.Context, dyn dynamic.Interface, name, class string, data []FakeData) error {
	entries := make([]any, 0, len(data))
	for _, d := range data {
		e := map[string]any{"key": d.Key, "value": d.Value}
		if d.Version != "" {
			e["version"] = d.Version
		}
		entries = append(entries, e)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"provider": map[string]any{"fake": map[string]any{"data": entries}}},
	}}
	if class != "" {
		u.Object["spec"].(map[string]any)["controller"] = class
	}
	res := dyn.Resource(ClusterSecretStores)
	var oldGen int64
	if old, err := res.Get(ctx, name, metav1.GetOptions{}); err == nil {
		oldGen = old.GetGeneration()
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading ClusterSecretStore %s: %w", name, err)
	}
	since := time.Now().Truncate(time.Second)
	applied, err := res.Apply(ctx, name, u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying ClusterSecretStore %s: %w", name, err)
	}
	updated := oldGen != 0 && applied.GetGeneration() != oldGen
	deadline := time.Now().Add(time.Minute)
	why := ""
	for {
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			var ok bool
			if ok, why = condition(cur, "Ready"); ok {
				if !updated {
					return nil
				}
				if ok, why = validEventSince(ctx, dyn, cur, since); ok {
					return nil
				}
			}
		} else {
			why = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClusterSecretStore %s not Ready after 1m (%s): is the ESO controller running?", name, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// validEventSince reports whether the controller recorded its "Valid"
// event for store at or after since (events of cluster-scoped objects go to
// the default namespace).
func validEventSince(ctx context.Context, dyn dynamic.Interface, store *unstructured.Unstructured, since time.Time) (bool, string) {
	list, err := dyn.Resource(eventsGVR).Namespace(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=ClusterSecretStore,involvedObject.name=" + store.GetName() + ",involvedObject.uid=" + string(store.GetUID()),
	})
	if err != nil {
		return false, "listing the store's events: " + err.Error()
	}
	for _, e := range list.Items {
		if reason, _, _ := unstructured.NestedString(e.Object, "reason"); reason != "Valid" {
			continue
		}
		for _, f := range []string{"lastTimestamp", "eventTime"} {
			s, _, _ := unstructured.NestedString(e.Object, f)
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && !t.Before(since) {
				return true, ""
			}
		}
	}
	return false, "no Valid event of the store since the update yet"
}

// ESO's namespaced kinds that can carry its finalizers: ExternalSecrets
// always get externalsecrets.external-secrets.io/externalsecret-cleanup
// (v0.20), PushSecrets with deletionPolicy Delete get
// pushsecret.externalsecrets.io/finalizer.
var finalized = []schema.GroupVersionResource{
	{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"},
	{Group: "external-secrets.io", Version: "v1alpha1", Resource: "pushsecrets"},
}

// Cleanup deletes the ExternalSecrets and PushSecrets of namespace and
// waits up to timeout for the controller to finish them (it removes its
// finalizers), then strips the finalizers of any left, so that deleting
// the namespace never hangs in Terminating once the controller is stopped.
// Call it before Stop (in a test: register it with t.Cleanup after Start,
// cleanups run last-in first-out).
func Cleanup(ctx context.Context, dyn dynamic.Interface, namespace string, timeout time.Duration) error {
	for _, gvr := range finalized {
		err := dyn.Resource(gvr).Namespace(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s of %s: %w", gvr.Resource, namespace, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, gvr := range finalized {
			list, err := dyn.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if list == nil {
				continue
			}
			for _, u := range list.Items {
				left++
				if time.Now().After(deadline) && len(u.GetFinalizers()) > 0 {
					patch := []byte(`{"metadata":{"finalizers":null}}`)
					if _, err := dyn.Resource(gvr).Namespace(namespace).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("removing the finalizers of %s %s/%s: %w", gvr.Resource, namespace, u.GetName(), err)
					}
				}
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			return fmt.Errorf("%d ESO objects of %s still there after their finalizers were removed", left, namespace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
