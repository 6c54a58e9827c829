// Package slurm runs a real Slurm 24.11 (Debian 13 "trixie" packages,
// auth/slurm and cred/slurm reading slurm.jwks) for the project's end-to-end
// tests: one slurmctld and one slurmd on 127.0.0.1, started per test and
// stopped when the test ends. It needs root, debootstrap and util-linux's
// unshare on the host; no Docker, no systemd, no network but Debian's
// package mirror (once, to build the root).
//
// # The root
//
// Root builds a minimal Debian trixie tree once (debootstrap
// --variant=minbase, then apt-get install slurmctld slurmd slurm-client
// inside it) and caches it outside the repository, in
// $KUBE_ROTATE_CACHE/slurm/trixie-24.11, else
// $XDG_CACHE_HOME/kube-rotate/slurm/trixie-24.11, else
// ~/.cache/kube-rotate/slurm/trixie-24.11 (where the project's
// control-plane binaries are cached too). The build writes into a temporary
// directory next to that one and renames it into place once a marker file
// (.kube-rotate-root) records the installed Slurm version, so a killed build
// never leaves a half root; an exclusive flock on .trixie-24.11.lock keeps
// test packages that run at once from building it twice. Its log goes to
// trixie-24.11.build.log next to it. A cold build takes under a minute here
// (debootstrap ~30s, apt-get ~10s); later runs only read the marker. The
// installed version must be 24.11.x. $KUBE_ROTATE_DEBIAN_MIRROR overrides
// the mirror (http://deb.debian.org/debian).
//
// # Mount and PID namespaces
//
// Every process the harness starts inside the root (debootstrap, apt-get,
// each daemon, each client command) runs through
// `unshare --mount --propagation private --pid --fork --kill-child` and a
// small sh script that mounts proc and sysfs, binds /dev and the Slurm run
// directories, then runs `chroot ROOT ...` as its child. The mounts exist
// only in that process's private mount namespace and vanish with it: no
// mount ever shows up on the host, a killed test leaves none behind, and
// tests running at once do not see each other's mounts. The script is PID 1
// of its own PID namespace (it reaps orphans; Slurm daemons are not made to
// be init): when it dies, the kernel kills every process of the namespace.
// unshare gets Pdeathsig and --kill-child, so even a test killed by SIGKILL
// takes its daemons, their slurmstepd and jobs, or a half-done debootstrap
// along. Between the daemons and the clients there is only TCP and the SACK
// Unix sockets, which work across PID namespaces.
//
// # SACK sockets: which key a client uses
//
// Slurm 24.11 clients (srun, sinfo, scontrol) never read a key file: they ask
// a daemon's SACK socket (Slurm's auth and cred kiosk) to mint and verify
// their tokens, trying /run/slurm/sack.socket (slurmd or sackd), then
// /run/slurmctld/sack.socket, then /run/slurmdbd/sack.socket
// (src/common/sack_api.c). The socket paths are fixed: in the shared root a
// client would take slurmd's socket, that is the node's key file, and two
// clusters would replace each other's sockets. The harness makes it
// deterministic: each cluster has its
// own socket directories (DIR/sack/ctld, DIR/sack/node) bound at
// /run/slurmctld and /run/slurm in that daemon's namespace only, and every
// other Slurm run directory is bound to a read-only empty directory. Client
// commands see only the controller's socket: they act as a submit host next
// to slurmctld, with the controller's view of the keys. slurmstepd, started
// by slurmd in its namespace, uses the node's socket, as on a real node.
//
// # Key files
//
// slurmctld reads DIR/etc/slurm.jwks, next to slurm.conf (Slurm's
// get_extra_conf_path). slurmd reads its own copy, DIR/node/slurm.jwks,
// through SLURM_SACK_JWKS: it plays a node that has not yet received a new
// key file. Both are written mode 0600, owned by root (the SlurmUser);
// Slurm is fatal on any "other" permission bit. `scontrol reconfigure` (see
// Reconfigure) makes both daemons re-exec and re-read their files.
//
// # Which kid the controller signs with
//
// Client commands reach slurmctld through a TCP proxy in this package: the
// clients' slurm.conf (DIR/client/slurm.conf) is a copy of the daemons' with
// SlurmctldPort set to the proxy's port. The proxy forwards bytes unchanged
// and scans both directions for JWTs (base64url "eyJ..." header, payload and
// signature), decoding the header's kid and the payload's "context" claim
// (Tokens). Measured on 24.11.5: plain replies of slurmctld carry no token
// (the reply to `scontrol ping` is 24 bytes), but two things do, and both are
// minted by slurmctld itself with the key it signs everything with (its
// default_key, src/plugins/auth/slurm/internal.c):
//
//   - the token in every client request, which the client fetched from
//     slurmctld's SACK socket (context "sack"): SignerKID runs
//     `scontrol ping` and returns that token's kid;
//   - the job step's launch credential in slurmctld's reply to srun's step
//     creation (context "launch"): RunJob returns its kid as Job.LaunchKID.
//
// Nothing here models Slurm's choice of key: the kid is read from what the
// running slurmctld put on the wire. The harness self-test checks the
// probe against a failure it must see: a new key put first in the
// controller's file by hand makes the probe report the new kid while the
// node, which lacks it, logs "could not find kid=<new kid>".
//
// # Timing
//
// Measured here: a warm Start takes about half a second, a job about 0.1s,
// a Reconfigure about half a second. About one job in five waits 5s before
// slurmd accepts its launch request (slurmd logs nothing in between; the
// conmgr settings make no difference): the timeouts leave room for it.
//
// # Logs
//
// SlurmctldDebug and SlurmdDebug are info: quiet, but key errors ("could not
// find kid", "token received for expired key") are logged. The logs are
// DIR/log/slurmctld.log and DIR/log/slurmd.log, the daemons' own output goes
// to DIR/log/*.out; a failed test gets the tail of each in its output.
package slurm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
	"github.com/kube-rotate/kube-rotate/e2e/internal/mountinfo"
)

// Series is the Slurm release series the root must hold.
const Series = "24.11"

// Suite is the Debian release the root is built from.
const Suite = "trixie"

const (
	rootName      = Suite + "-" + Series
	defaultMirror = "http://deb.debian.org/debian"
	markerName    = ".kube-rotate-root"
	installHint   = "install debootstrap (apt-get install debootstrap) and run as root"
	// cleanPath is the PATH of every process the harness starts: it fits
	// the host (sh, mount, chroot) and the root alike.
	cleanPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// markerVar is set, with the cluster's id, on every process of a
	// cluster (and so on the jobs srun starts): Stop kills what is left.
	markerVar = "KUBE_ROTATE_SLURM_CLUSTER"
)

// nsScript runs as PID 1 of private mount and PID namespaces made by
// unshare: when it dies (SIGKILL from unshare's --kill-child), the kernel
// kills every process of the namespace. Arguments:
// ROOT, then triples SOURCE TARGET OPTIONS (a bind mount of host SOURCE at
// ROOT/TARGET), then "--" and the command to run in the chroot.
const nsScript = `set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
while [ "$1" != "--" ]; do
	mount --bind -o "$3" "$1" "$root$2"
	shift 3
done
shift
# Not exec: this shell stays PID 1 of the namespace and reaps orphans.
chroot "$root" "$@" &
wait $!
`

// bind is one bind mount of nsScript.
type bind struct{ src, dst, opts string }

var (
	// unsharePath is util-linux's unshare, found by ensureRoot.
	unsharePath = "unshare"
	rootOnce    sync.Once
	rootPath    string
	rootErr     error
)

// Root returns the host path of the cached Debian trixie root with Slurm
// 24.11, building it first if it is missing (see the package
// documentation). It fails the test, with one line saying what to do, if not
// run as root or if debootstrap or unshare is missing.
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() { rootPath, rootErr = ensureRoot(t) })
	if rootErr != nil {
		t.Fatalf("slurm: %v", rootErr)
	}
	return rootPath
}

// CacheDir returns the directory the root is kept in (it may not exist
// yet): $KUBE_ROTATE_CACHE/slurm/trixie-24.11, else
// $XDG_CACHE_HOME/kube-rotate/slurm/trixie-24.11, else
// ~/.cache/kube-rotate/slurm/trixie-24.11.
func CacheDir() (string, error) {
	base := os.Getenv("KUBE_ROTATE_CACHE")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding a cache directory (set KUBE_ROTATE_CACHE): %w", err)
		}
		base = filepath.Join(d, "kube-rotate")
	}
	abs, err := filepath.Abs(filepath.Join(base, "slurm", rootName))
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return abs, nil
}

func ensureRoot(t testing.TB) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("the Slurm harness needs root (debootstrap, chroot, mount namespaces): %s", installHint)
	}
	var err error
	if unsharePath, err = lookSbin("unshare"); err != nil {
		return "", fmt.Errorf("unshare (util-linux) not found: install util-linux; %s", installHint)
	}
	final, err := CacheDir()
	if err != nil {
		return "", err
	}
	if v, err := readMarker(final); err == nil {
		return final, checkSeries(final, v)
	}
	debootstrap, err := lookSbin("debootstrap")
	if err != nil {
		return "", fmt.Errorf("debootstrap not found: %s", installHint)
	}
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", parent, err)
	}
	unlock, err := files.Lock(filepath.Join(parent, "."+rootName+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another builder may have finished while we waited for the lock.
	if v, err := readMarker(final); err == nil {
		return final, checkSeries(final, v)
	}
	// Left by a killed build (or a root without marker): never used.
	stale, _ := filepath.Glob(filepath.Join(parent, rootName+".tmp-*"))
	if _, err := os.Stat(final); err == nil {
		stale = append(stale, final)
	}
	for _, d := range stale {
		if err := removeAllSafe(d); err != nil {
			return "", fmt.Errorf("removing the unfinished root %s: %w", d, err)
		}
	}
	tmp := filepath.Join(parent, fmt.Sprintf("%s.tmp-%d", rootName, os.Getpid()))
	logPath := filepath.Join(parent, rootName+".build.log")
	begin := time.Now()
	progress(t, "building the Debian %s root with Slurm %s in %s (once; about a minute; log %s)", Suite, Series, final, logPath)
	version, err := buildRoot(t, debootstrap, tmp, logPath)
	if err != nil {
		if rmErr := removeAllSafe(tmp); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("moving the finished root into place: %w", err)
	}
	progress(t, "root with slurm-wlm %s ready in %s", version, time.Since(begin).Round(time.Second))
	return final, nil
}

// lookSbin finds name in PATH, else in /usr/sbin and /sbin (a non-login root
// shell may lack them in PATH).
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /sbin", name)
}

// progress reports a step of the root build: in the test's log and, unless
// -v already streams that log, on stderr.
func progress(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("slurm: "+format, args...)
	if !testing.Verbose() {
		fmt.Fprintf(os.Stderr, "slurm: "+format+"\n", args...)
	}
}

func checkSeries(root, version string) error {
	if !strings.HasPrefix(version, Series+".") {
		return fmt.Errorf("the root %s holds slurm-wlm %s, not %s.x: remove it to rebuild", root, version, Series)
	}
	return nil
}

// readMarker returns the Slurm version the marker of root records.
func readMarker(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, markerName))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "slurm="); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no slurm= line", filepath.Join(root, markerName))
}

// buildRoot debootstraps dir and installs Slurm in it; it returns the
// installed Slurm version, which the marker records.
func buildRoot(t testing.TB, debootstrap, dir, logPath string) (string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("creating the build log: %w", err)
	}
	defer logf.Close()
	mirror := os.Getenv("KUBE_ROTATE_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = defaultMirror
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	step := func(what string, cmd *exec.Cmd) error {
		begin := time.Now()
		progress(t, "%s", what)
		fmt.Fprintf(logf, "--- %s\n", what)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %v; log %s:\n%s", what, err, logPath, files.Tail(logPath, 15))
		}
		progress(t, "%s: done in %s", what, time.Since(begin).Round(time.Second))
		return nil
	}
	// debootstrap mounts proc and sysfs inside the target for its second
	// stage: in a private mount namespace they cannot outlive it.
	deb := unshareCommand(ctx, debootstrap, "--variant=minbase", Suite, dir, mirror)
	if err := step(fmt.Sprintf("debootstrap --variant=minbase %s (%s)", Suite, mirror), deb); err != nil {
		return "", err
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("reading the host's /etc/resolv.conf for apt in the root: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "resolv.conf"), resolv, 0o644); err != nil {
		return "", fmt.Errorf("writing the root's resolv.conf: %w", err)
	}
	// Packages must not start their services inside the root.
	if err := os.WriteFile(filepath.Join(dir, "usr", "sbin", "policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return "", fmt.Errorf("writing policy-rc.d: %w", err)
	}
	for _, d := range runDirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("creating %s in the root: %w", d, err)
		}
	}
	install := chrootCommand(ctx, dir, nil, []string{cleanPath, "HOME=/root", "LANG=C", "DEBIAN_FRONTEND=noninteractive"},
		"sh", "-c", "apt-get update && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client && apt-get clean")
	if err := step("apt-get install slurmctld slurmd slurm-client (in the root)", install); err != nil {
		return "", err
	}
	out, err := chrootCommand(ctx, dir, nil, []string{cleanPath}, "slurmctld", "-V").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("slurmctld -V in the root: %v: %s", err, bytes.TrimSpace(out))
	}
	// "slurm-wlm 24.11.5"
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		return "", fmt.Errorf("slurmctld -V in the root printed %q, not \"slurm-wlm VERSION\"", bytes.TrimSpace(out))
	}
	version := fields[1]
	if err := checkSeries(dir, version); err != nil {
		return "", err
	}
	pkg, err := chrootCommand(ctx, dir, nil, []string{cleanPath}, "dpkg-query", "-W", "-f=${Version}", "slurmctld").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-query slurmctld in the root: %w", err)
	}
	marker := fmt.Sprintf("slurm=%s\npackage=%s\nsuite=%s\nmirror=%s\nbuilt=%s\n", version, pkg, Suite, mirror, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, markerName), []byte(marker), 0o644); err != nil {
		return "", fmt.Errorf("writing the root's marker: %w", err)
	}
	return version, nil
}

// runDirs are the mount points a namespace binds over: Slurm's fixed SACK
// socket directories and the parent of the clusters' directories.
var runDirs = []string{"run/slurm", "run/slurmctld", "run/slurmdbd", "run/kube-rotate"}

// unshareCommand runs name on the host in private mount and PID namespaces,
// killed with every process of its namespace when the test process dies.
func unshareCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, unsharePath, append([]string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", name}, args...)...)
	cmd.Env = []string{cleanPath, "HOME=/root", "LANG=C"}
	setGroup(cmd)
	return cmd
}

// chrootCommand runs args in root through nsScript, with the binds and the
// environment env (nothing of the caller's environment).
func chrootCommand(ctx context.Context, root string, binds []bind, env []string, args ...string) *exec.Cmd {
	a := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "sh", "-c", nsScript, "sh", root}
	for _, b := range binds {
		a = append(a, b.src, b.dst, b.opts)
	}
	a = append(a, "--")
	a = append(a, args...)
	cmd := exec.CommandContext(ctx, unsharePath, a...)
	cmd.Env = env
	setGroup(cmd)
	return cmd
}

// setGroup gives cmd its own process group, killed whole when ctx ends, and
// Pdeathsig: the kernel kills it if the test process dies, even by SIGKILL
// or a test timeout, which skips t.Cleanup (unshare's --kill-child passes
// that on to the command in the namespace).
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

// removeAllSafe removes dir unless something is mounted at or under it:
// os.RemoveAll would descend into a bind of /dev.
func removeAllSafe(dir string) error {
	mounted, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is mounted (umount -R it first)", dir, mounted[0])
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// Options configure a cluster started by Start.
type Options struct {
	// ControllerKeys is the initial content of the controller's key file
	// (DIR/etc/slurm.jwks). Required.
	ControllerKeys []byte
	// NodeKeys is the initial content of the node's key file
	// (DIR/node/slurm.jwks, read by slurmd through SLURM_SACK_JWKS); nil
	// means the same as ControllerKeys.
	NodeKeys []byte
	// JobTimeout bounds RunJob; 0 means 40s. srun is also given
	// --immediate, so a job that cannot start fails instead of waiting.
	JobTimeout time.Duration
}

// Cluster is a one-node Slurm cluster started by Start: slurmctld and slurmd
// on 127.0.0.1, in a directory of its own inside the root.
type Cluster struct {
	// Root is the host path of the Debian root the daemons run in.
	Root string
	// Dir is the host path of this cluster's directory (inside Root).
	Dir string
	// NodeName is the node's name: the host's short hostname, which
	// slurmd takes as its own.
	NodeName string
	// ControllerPort and NodePort are slurmctld's and slurmd's ports on
	// 127.0.0.1; ProxyPort is the probe proxy's, which clients use.
	ControllerPort, NodePort, ProxyPort int
	// StartupTime is how long Start took (the root build excluded).
	StartupTime time.Duration

	id         string
	jobTimeout time.Duration
	proxy      *proxy
	ctld, node *daemon
	stopOnce   sync.Once
}

// daemon is a running slurmctld or slurmd.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	out     string // its stdout and stderr
	log     string // its log file
	exited  chan struct{}
	waitErr error
}

// chrootDir is the path of the clusters' directories inside the root.
const chrootDir = "/run/kube-rotate"

// Start starts a cluster for t with the key files of o and waits until the
// node is idle. Everything is stopped and removed in t.Cleanup; when t has
// failed, the tail of each daemon's log is logged first.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if len(o.ControllerKeys) == 0 {
		t.Fatal("slurm: Options.ControllerKeys is empty")
	}
	if o.NodeKeys == nil {
		o.NodeKeys = o.ControllerKeys
	}
	root := Root(t)
	begin := time.Now()
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("slurm: hostname: %v", err)
	}
	c := &Cluster{Root: root, NodeName: strings.SplitN(host, ".", 2)[0], jobTimeout: o.JobTimeout}
	if c.jobTimeout == 0 {
		c.jobTimeout = 40 * time.Second
	}
	c.id = clusterID(t.Name())
	c.Dir = filepath.Join(root, chrootDir, c.id)
	for _, d := range runDirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatalf("slurm: creating %s in the root: %v", d, err)
		}
	}
	removeStale(filepath.Join(root, chrootDir))
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("slurm: %v", err)
		}
		if err := removeAllSafe(c.Dir); err != nil {
			t.Errorf("slurm: %v", err)
		}
	})
	if err := c.prepare(o); err != nil {
		t.Fatalf("slurm: %v", err)
	}
	if c.proxy, err = startProxy(); err != nil {
		t.Fatalf("slurm: %v", err)
	}
	c.ProxyPort = c.proxy.port()
	// The ports are picked free, then bound by the daemons: another
	// process can take one in between, so a bind failure is retried.
	for attempt := 1; ; attempt++ {
		err = c.start()
		if err == nil {
			break
		}
		var busy errPortBusy
		if !errors.As(err, &busy) || attempt == 3 {
			t.Fatalf("slurm: %v", err)
		}
		t.Logf("slurm: %v; retrying on other ports", err)
		if err := c.stopDaemons(); err != nil {
			t.Fatalf("slurm: %v", err)
		}
	}
	c.StartupTime = time.Since(begin)
	t.Logf("slurm: cluster %s up in %s (slurmctld :%d, slurmd :%d, probe proxy :%d)", c.id, c.StartupTime.Round(time.Millisecond), c.ControllerPort, c.NodePort, c.ProxyPort)
	return c
}

// clusterID makes a short unique directory name from a test name.
func clusterID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 24 {
		s = s[:24]
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return s + "-" + hex.EncodeToString(r[:])
}

// removeStale removes clusters' directories left by test processes that
// were killed, once they are a day old.
func removeStale(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = removeAllSafe(filepath.Join(parent, e.Name()))
		}
	}
}

// in returns the path inside the root of a path relative to Dir.
func (c *Cluster) in(rel string) string { return filepath.Join(chrootDir, c.id, rel) }

// host returns the host path of a path relative to Dir.
func (c *Cluster) host(rel string) string { return filepath.Join(c.Dir, rel) }

// ControllerKeyFile returns the host path of slurmctld's key file,
// DIR/etc/slurm.jwks: a test can run the host's kubectl-rotate on it.
func (c *Cluster) ControllerKeyFile() string { return c.host("etc/slurm.jwks") }

// NodeKeyFile returns the host path of slurmd's key file,
// DIR/node/slurm.jwks.
func (c *Cluster) NodeKeyFile() string { return c.host("node/slurm.jwks") }

// ControllerLogFile returns the host path of slurmctld's log.
func (c *Cluster) ControllerLogFile() string { return c.host("log/slurmctld.log") }

// NodeLogFile returns the host path of slurmd's log.
func (c *Cluster) NodeLogFile() string { return c.host("log/slurmd.log") }

func (c *Cluster) prepare(o Options) error {
	for _, d := range []string{"etc", "client", "node", "state", "spool", "log", "run", "sack/ctld", "sack/node", "sack/empty"} {
		if err := os.MkdirAll(c.host(d), 0o755); err != nil {
			return fmt.Errorf("creating the cluster's directory: %w", err)
		}
	}
	if err := writeKeyFile(c.ControllerKeyFile(), o.ControllerKeys); err != nil {
		return err
	}
	if err := writeKeyFile(c.NodeKeyFile(), o.NodeKeys); err != nil {
		return err
	}
	cgroup := []byte("CgroupPlugin=disabled\n")
	for _, d := range []string{"etc", "client"} {
		if err := os.WriteFile(c.host(d+"/cgroup.conf"), cgroup, 0o644); err != nil {
			return fmt.Errorf("writing cgroup.conf: %w", err)
		}
	}
	return nil
}

// writeKeyFile writes a key file as Slurm wants it: mode 0600, owned by
// root (the SlurmUser).
func writeKeyFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	// WriteFile keeps the mode of an existing file.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("key file mode: %w", err)
	}
	return nil
}

// SetNodeKeys replaces the content of the node's key file, keeping its
// owner, group and mode (slurmd reads it at its next Reconfigure).
func (c *Cluster) SetNodeKeys(data []byte) error {
	path := c.NodeKeyFile()
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("node key file: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing the node key file: %w", err)
	}
	if err := os.Chown(tmp, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("node key file owner: %w", err)
	}
	if err := os.Chmod(tmp, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("node key file mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing the node key file: %w", err)
	}
	return nil
}

// CopyKeysToNode copies the controller's key file to the node's, as an
// operator distributing a new slurm.jwks does (mode kept, 0600).
func (c *Cluster) CopyKeysToNode() error {
	data, err := os.ReadFile(c.ControllerKeyFile())
	if err != nil {
		return fmt.Errorf("reading the controller key file: %w", err)
	}
	return c.SetNodeKeys(data)
}

// errPortBusy reports that a daemon could not bind its port.
type errPortBusy struct{ error }

// start picks ports, writes slurm.conf and starts both daemons.
func (c *Cluster) start() error {
	var err error
	if c.ControllerPort, err = freePort(); err != nil {
		return err
	}
	if c.NodePort, err = freePort(); err != nil {
		return err
	}
	if err := c.writeConf(); err != nil {
		return err
	}
	c.proxy.setUpstream(c.ControllerPort)
	env := []string{cleanPath, "HOME=/root", "LANG=C", markerVar + "=" + c.id, "SLURM_CONF=" + c.in("etc/slurm.conf")}
	c.ctld, err = c.startDaemon("slurmctld", []bind{
		{c.host("sack/ctld"), "/run/slurmctld", "rw"},
		{c.host("sack/empty"), "/run/slurm", "ro"},
		{c.host("sack/empty"), "/run/slurmdbd", "ro"},
	}, env, "slurmctld", "-D", "-i")
	if err != nil {
		return err
	}
	if err := c.waitFor(c.ctld, 30*time.Second, func() bool {
		out, err := c.client(5*time.Second, "scontrol", "ping")
		return err == nil && strings.Contains(out, "is UP")
	}); err != nil {
		return err
	}
	c.node, err = c.startDaemon("slurmd", []bind{
		{c.host("sack/node"), "/run/slurm", "rw"},
		{c.host("sack/empty"), "/run/slurmctld", "ro"},
		{c.host("sack/empty"), "/run/slurmdbd", "ro"},
	}, append(env, "SLURM_SACK_JWKS="+c.in("node/slurm.jwks")), "slurmd", "-D")
	if err != nil {
		return err
	}
	return c.waitFor(c.node, 30*time.Second, func() bool {
		s, err := c.NodeState()
		return err == nil && s == "idle"
	})
}

func (c *Cluster) writeConf() error {
	conf := func(ctldPort int) string {
		return fmt.Sprintf(`# Written by the kube-rotate e2e harness (e2e/slurm).
ClusterName=kr%s
SlurmctldHost=%s(127.0.0.1)
SlurmctldPort=%d
SlurmdPort=%d
AuthType=auth/slurm
CredType=cred/slurm
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%s
SlurmdSpoolDir=%s
SlurmctldPidFile=%s
SlurmdPidFile=%s
SlurmctldLogFile=%s
SlurmdLogFile=%s
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=%s NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN
PartitionName=kr Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, strings.ReplaceAll(c.id[len(c.id)-8:], "-", ""), c.NodeName, ctldPort, c.NodePort,
			c.in("state"), c.in("spool"), c.in("run/slurmctld.pid"), c.in("run/slurmd.pid"),
			c.in("log/slurmctld.log"), c.in("log/slurmd.log"), c.NodeName)
	}
	if err := os.WriteFile(c.host("etc/slurm.conf"), []byte(conf(c.ControllerPort)), 0o644); err != nil {
		return fmt.Errorf("writing slurm.conf: %w", err)
	}
	// The clients' copy: the same cluster, slurmctld reached through the
	// probe proxy.
	if err := os.WriteFile(c.host("client/slurm.conf"), []byte(conf(c.ProxyPort)), 0o644); err != nil {
		return fmt.Errorf("writing the clients' slurm.conf: %w", err)
	}
	return nil
}

func (c *Cluster) startDaemon(name string, binds []bind, env []string, args ...string) (*daemon, error) {
	d := &daemon{name: name, out: c.host("log/" + name + ".out"), log: c.host("log/" + name + ".log")}
	outf, err := os.OpenFile(d.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", d.out, err)
	}
	defer outf.Close()
	fmt.Fprintf(outf, "--- kube-rotate: starting %s (slurmctld :%d, slurmd :%d)\n", strings.Join(args, " "), c.ControllerPort, c.NodePort)
	d.cmd = chrootCommand(context.Background(), c.Root, binds, env, args...)
	d.cmd.Stdout, d.cmd.Stderr = outf, outf
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// waitFor polls ready until it holds, d exits or timeout passes.
func (c *Cluster) waitFor(d *daemon, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			tail := files.Tail(d.out, 15)
			err := fmt.Errorf("%s exited during startup (%v); %s:\n%s", d.name, d.waitErr, d.out, tail)
			if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "Unable to bind") {
				return errPortBusy{err}
			}
			return err
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; %s:\n%s", d.name, timeout, d.log, files.Tail(d.log, 15))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Client runs a Slurm client command (srun, sinfo, scontrol, ...) in the
// root as a submit host next to slurmctld would: with the controller's SACK
// socket only, and slurmctld reached through the probe proxy. It returns
// the command's stdout and stderr together; timeout 0 means 30s.
func (c *Cluster) Client(timeout time.Duration, args ...string) (string, error) {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return c.client(timeout, args...)
}

func (c *Cluster) client(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := chrootCommand(ctx, c.Root, []bind{
		{c.host("sack/ctld"), "/run/slurmctld", "rw"},
		{c.host("sack/empty"), "/run/slurm", "ro"},
		{c.host("sack/empty"), "/run/slurmdbd", "ro"},
	}, []string{cleanPath, "HOME=/root", "LANG=C", markerVar + "=" + c.id, "SLURM_CONF=" + c.in("client/slurm.conf")}, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// Its connections are closed: let the proxy finish scanning them.
	c.proxy.waitIdle(3 * time.Second)
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("%s: timed out after %s: %s", strings.Join(args, " "), timeout, strings.TrimSpace(out.String()))
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// NodeState returns the node's state as sinfo prints it (%T): "idle" when
// it is up and free; a trailing "*" means slurmctld finds it not
// responding.
func (c *Cluster) NodeState() (string, error) {
	out, err := c.client(10*time.Second, "sinfo", "--noheader", "--Node", "--format=%T")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// Job is the outcome of RunJob.
type Job struct {
	// Output is what srun printed (stdout and stderr): the node's name
	// when the job ran.
	Output string
	// Duration is how long srun took.
	Duration time.Duration
	// LaunchKID is the kid of the launch credential slurmctld put in its
	// reply to srun's step creation: the key slurmctld signed it with. ""
	// if the job got no step.
	LaunchKID string
}

// RunJob runs `srun -N1 hostname` and returns what it printed. A job that
// cannot start fails fast (srun --immediate, and the Options.JobTimeout
// bound), and its leftovers are cancelled.
func (c *Cluster) RunJob() (Job, error) {
	mark := c.proxy.mark()
	begin := time.Now()
	imm := int((c.jobTimeout - 10*time.Second) / time.Second)
	if imm < 5 {
		imm = 5
	}
	out, err := c.client(c.jobTimeout, "srun", "-N1", "--time=1", "--immediate="+strconv.Itoa(imm), "hostname")
	j := Job{Output: strings.TrimSpace(out), Duration: time.Since(begin)}
	for _, tok := range c.proxy.since(mark) {
		if tok.FromController && tok.Context == "launch" {
			j.LaunchKID = tok.KID
		}
	}
	if err != nil {
		_, _ = c.client(10*time.Second, "scancel", "--full", "--user=root")
		return j, fmt.Errorf("job: %w", err)
	}
	if j.Output != c.NodeName {
		return j, fmt.Errorf("job: srun printed %q, not the node name %q", j.Output, c.NodeName)
	}
	return j, nil
}

// SignerKID returns the kid of the key slurmctld signs with now, read from
// the wire: `scontrol ping` through the probe proxy carries a token that
// slurmctld's SACK socket minted for it (see the package documentation).
func (c *Cluster) SignerKID() (string, error) {
	mark := c.proxy.mark()
	if _, err := c.client(15*time.Second, "scontrol", "ping"); err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	kid := ""
	for _, tok := range c.proxy.since(mark) {
		if tok.FromController || tok.Context != "sack" {
			continue
		}
		if kid != "" && tok.KID != kid {
			return "", fmt.Errorf("probe: scontrol ping carried tokens of two kids, %s and %s", kid, tok.KID)
		}
		kid = tok.KID
	}
	if kid == "" {
		return "", errors.New("probe: no token minted by slurmctld's SACK socket went through the proxy")
	}
	return kid, nil
}

// Tokens returns every token the probe proxy has seen, oldest first.
func (c *Cluster) Tokens() []Token { return c.proxy.since(0) }

// Reconfigure runs `scontrol reconfigure` and waits until both daemons have
// re-executed (which re-reads slurm.conf and the key files) and the node is
// idle again. It returns an error, with the node's log lines since, when
// slurmd did not restart: it rejected the request (for instance "could not
// find kid" when the controller signs with a key the node lacks) or did not
// answer within 15s.
func (c *Cluster) Reconfigure() error {
	ctldFrom, nodeFrom := fileSize(c.ctld.log), fileSize(c.node.log)
	if _, err := c.client(30*time.Second, "scontrol", "reconfigure"); err != nil {
		return fmt.Errorf("reconfigure: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(readFrom(c.ctld.log, ctldFrom), "Running as primary controller") {
		if time.Now().After(deadline) {
			return fmt.Errorf("reconfigure: slurmctld did not restart within 20s; its log since:\n%s", files.LastLines(readFrom(c.ctld.log, ctldFrom), 15))
		}
		if exited(c.ctld) {
			return fmt.Errorf("reconfigure: slurmctld exited; %s:\n%s", c.ctld.out, files.Tail(c.ctld.out, 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		since := readFrom(c.node.log, nodeFrom)
		if strings.Contains(since, "slurmd started on") {
			break
		}
		if strings.Contains(since, "REQUEST_RECONFIGURE has authentication error") || time.Now().After(deadline) || exited(c.node) {
			why := "no restart within 15s"
			for _, line := range strings.Split(since, "\n") {
				if strings.Contains(line, "error:") {
					why = line[strings.Index(line, "error:"):]
					break
				}
			}
			return fmt.Errorf("reconfigure: slurmd did not restart (%s); its log since:\n%s", why, files.LastLines(since, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		s, err := c.NodeState()
		if err == nil && s == "idle" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reconfigure: node not idle 20s after slurmd restarted (state %q, %v)", s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func exited(d *daemon) bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// ControllerLog returns slurmctld's log so far.
func (c *Cluster) ControllerLog() string { return readFrom(c.ControllerLogFile(), 0) }

// NodeLog returns slurmd's log so far.
func (c *Cluster) NodeLog() string { return readFrom(c.NodeLogFile(), 0) }

// Logs returns both daemons' logs so far, each line prefixed with
// "slurmctld: " or "slurmd: ": grep it for "could not find kid".
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, l := range []struct{ name, text string }{{"slurmctld", c.ControllerLog()}, {"slurmd", c.NodeLog()}} {
		for _, line := range strings.Split(strings.TrimRight(l.text, "\n"), "\n") {
			if line != "" {
				b.WriteString(l.name + ": " + line + "\n")
			}
		}
	}
	return b.String()
}

func (c *Cluster) logTails(t testing.TB) {
	t.Helper()
	for _, p := range []string{c.ControllerLogFile(), c.host("log/slurmctld.out"), c.NodeLogFile(), c.host("log/slurmd.out")} {
		if _, err := os.Stat(p); err == nil {
			t.Logf("slurm: last lines of %s:\n%s", p, files.Tail(p, 25))
		}
	}
}

// Stop stops both daemons (SIGTERM to their process groups, SIGKILL after
// 3s: their state is thrown away anyway), kills whatever process of the
// cluster is left (jobs included) and closes the probe proxy. Start
// registers it with t.Cleanup; calling it earlier is fine.
func (c *Cluster) Stop() error {
	var err error
	c.stopOnce.Do(func() {
		err = c.stopDaemons()
		if c.proxy != nil {
			c.proxy.close()
		}
	})
	return err
}

// stopDaemons stops slurmd, then slurmctld, then kills the cluster's
// processes that are left. It fails only if a process survives SIGKILL.
func (c *Cluster) stopDaemons() error {
	var errs []error
	for _, d := range []*daemon{c.node, c.ctld} {
		if d == nil {
			continue
		}
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-d.exited:
			case <-time.After(10 * time.Second):
				errs = append(errs, fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", d.name, d.cmd.Process.Pid))
			}
		}
	}
	c.node, c.ctld = nil, nil
	killMarked(c.id)
	if pids := markedPids(c.id); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes of cluster %s still running after SIGKILL: %v", c.id, pids))
	}
	return errors.Join(errs...)
}

// Processes returns the pids of the cluster's processes still running: the
// daemons, their children and jobs, and running client commands (each has
// KUBE_ROTATE_SLURM_CLUSTER=<id> in its environment). After Stop there are
// none.
func (c *Cluster) Processes() []int { return markedPids(c.id) }

// markedPids returns the pids of processes whose environment has
// markerVar=id.
func markedPids(id string) []int {
	want := []byte(markerVar + "=" + id + "\x00")
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(append([]byte{0}, append(env, 0)...), append([]byte{0}, want...)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killMarked SIGKILLs every process whose environment has markerVar=id,
// until there is none (at most 5s).
func killMarked(id string) {
	for round := 0; round < 50; round++ {
		pids := markedPids(id)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CheckKeyFile reports whether real slurmd accepts the key file at path
// (a host path): it starts a throwaway slurmd in the root with
// SLURM_SACK_JWKS pointing at a copy (same mode) and returns nil once slurmd
// has loaded its auth plugin, or an error carrying Slurm's fatal line (for
// instance "multiple default keys defined" or "key file is insecure").
func CheckKeyFile(t testing.TB, path string) error {
	t.Helper()
	root := Root(t)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	id := clusterID("check-" + t.Name())
	dir := filepath.Join(root, chrootDir, id)
	in := func(rel string) string { return filepath.Join(chrootDir, id, rel) }
	defer func() { _ = removeAllSafe(dir) }()
	for _, d := range []string{"etc", "spool", "run", "sack", "empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("check key file: %w", err)
		}
	}
	keys := filepath.Join(dir, "etc", "slurm.jwks")
	if err := os.WriteFile(keys, data, 0o600); err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	if err := os.Chmod(keys, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	ctldPort, err := freePort()
	if err != nil {
		return err
	}
	nodePort, err := freePort()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	node := strings.SplitN(host, ".", 2)[0]
	conf := fmt.Sprintf("ClusterName=krcheck\nSlurmctldHost=%s(127.0.0.1)\nSlurmctldPort=%d\nSlurmdPort=%d\nAuthType=auth/slurm\nCredType=cred/slurm\nSlurmUser=root\nSlurmdSpoolDir=%s\nSlurmdPidFile=%s\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSlurmdParameters=config_overrides\nNodeName=%s NodeAddr=127.0.0.1 CPUs=1\nPartitionName=kr Nodes=ALL Default=YES\n",
		node, ctldPort, nodePort, in("spool"), in("run/slurmd.pid"), node)
	if err := os.WriteFile(filepath.Join(dir, "etc", "slurm.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "cgroup.conf"), []byte("CgroupPlugin=disabled\n"), 0o644); err != nil {
		return fmt.Errorf("check key file: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := chrootCommand(ctx, root, []bind{
		{filepath.Join(dir, "sack"), "/run/slurm", "rw"},
		{filepath.Join(dir, "empty"), "/run/slurmctld", "ro"},
		{filepath.Join(dir, "empty"), "/run/slurmdbd", "ro"},
	}, []string{cleanPath, "HOME=/root", "LANG=C", markerVar + "=" + id, "SLURM_CONF=" + in("etc/slurm.conf"), "SLURM_SACK_JWKS=" + in("etc/slurm.jwks")},
		"slurmd", "-D")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("check key file: starting slurmd: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var fatal string
	loaded := false
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "fatal:") && fatal == "" {
			fatal = strings.TrimSpace(line)
		}
		if strings.Contains(line, "slurmd version") && strings.Contains(line, "started") {
			loaded = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	<-done
	killMarked(id)
	switch {
	case loaded:
		return nil
	case fatal != "":
		return fmt.Errorf("slurmd refuses %s: %s", path, fatal)
	case ctx.Err() != nil:
		return fmt.Errorf("check key file: slurmd neither started nor failed within 20s")
	default:
		return fmt.Errorf("check key file: slurmd exited without starting or a fatal line")
	}
}

// Token is a JWT the probe proxy saw between a client and slurmctld. It
// holds no key material: only the header's kid and the payload's context.
type Token struct {
	// FromController is true for a token in slurmctld's reply, false for
	// one in the client's request.
	FromController bool
	// KID is the kid of the token's header: the key that signed it.
	KID string
	// Context is the payload's "context" claim: "sack" for a token minted
	// by a SACK socket for a client, "launch" for a job step's launch
	// credential, "auth" for a daemon's own RPC.
	Context string
}

// jwtPattern matches a compact JWS whose header and payload are JSON
// objects (base64url of `{"` is "eyJ").
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+`)

// scanTokens returns the tokens in b.
func scanTokens(b []byte, fromController bool) []Token {
	var toks []Token
	for _, m := range jwtPattern.FindAll(b, -1) {
		parts := bytes.SplitN(m, []byte("."), 3)
		var h struct {
			KID string `json:"kid"`
		}
		var p struct {
			Context string `json:"context"`
		}
		if decodeSegment(parts[0], &h) != nil || decodeSegment(parts[1], &p) != nil {
			continue
		}
		toks = append(toks, Token{FromController: fromController, KID: h.KID, Context: p.Context})
	}
	return toks
}

func decodeSegment(seg []byte, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(seg), "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// proxy forwards 127.0.0.1:port to slurmctld and records the tokens it
// sees.
type proxy struct {
	l net.Listener

	mu       sync.Mutex
	upstream int
	tokens   []Token
	active   int
	idle     *sync.Cond
	conns    map[net.Conn]bool
	closed   bool
}

// maxScan bounds the bytes of one connection's direction that are kept for
// scanning (Slurm's messages are far smaller).
const maxScan = 8 << 20

func startProxy() (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("probe proxy: %w", err)
	}
	p := &proxy{l: l, conns: map[net.Conn]bool{}}
	p.idle = sync.NewCond(&p.mu)
	go p.serve()
	return p, nil
}

func (p *proxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *proxy) setUpstream(port int) {
	p.mu.Lock()
	p.upstream = port
	p.mu.Unlock()
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.active++
		p.conns[c] = true
		up := p.upstream
		p.mu.Unlock()
		go p.handle(c, up)
	}
}

func (p *proxy) handle(c net.Conn, port int) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.active--
		p.idle.Broadcast()
		p.mu.Unlock()
		c.Close()
	}()
	u, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return // the client sees the connection closed, as if refused
	}
	defer u.Close()
	p.mu.Lock()
	p.conns[u] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, u)
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn, fromController bool) {
		defer wg.Done()
		var buf bytes.Buffer
		_, _ = io.Copy(io.MultiWriter(dst, &capped{&buf, maxScan}), src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		toks := scanTokens(buf.Bytes(), fromController)
		p.mu.Lock()
		p.tokens = append(p.tokens, toks...)
		p.mu.Unlock()
	}
	wg.Add(2)
	go pipe(u, c, false)
	go pipe(c, u, true)
	wg.Wait()
}

// capped is a writer that keeps at most n bytes and never fails.
type capped struct {
	b *bytes.Buffer
	n int
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// mark returns the number of tokens seen so far, for since.
func (p *proxy) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tokens)
}

// since returns the tokens seen after mark.
func (p *proxy) since(mark int) []Token {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Token(nil), p.tokens[mark:]...)
}

// waitIdle waits until no connection is open, at most d.
func (p *proxy) waitIdle(d time.Duration) {
	timer := time.AfterFunc(d, func() {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(d)
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.active > 0 && time.Now().Before(deadline) {
		p.idle.Wait()
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
}

func freePort() (int, error) {
	// All addresses: the daemons listen on the wildcard address.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the content of path from offset on ("" if unreadable).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
