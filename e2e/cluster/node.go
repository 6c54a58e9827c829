package cluster

// The real node: a kubelet next to the kwok nodes, with containerd and runc
// from Debian's packages and the CNI bridge plugin from Debian's
// containernetworking-plugins. Pods that tolerate RealNodeTaint and select
// RealNodeLabel run for real; every other pod stays on the kwok nodes.
//
// What this kernel's cgroup setup needs from kubelet 1.36 (measured on the
// project's machines: cgroup v1 hierarchies, no systemd, root):
//   - failCgroupV1: false. Kubelet 1.35+ refuses to start on cgroup v1
//     unless told (k8s.io/kubernetes pkg/kubelet/apis/config/v1beta1
//     defaults.go: FailCgroupV1 defaults to true).
//   - cgroupDriver: cgroupfs. There is no systemd, and containerd 1.6 does
//     not implement the CRI RuntimeConfig call, so the kubelet takes the
//     driver from its own configuration (cmd/kubelet/app/server.go
//     getCgroupDriverFromCRI: "Falling back to using cgroupDriver from
//     kubelet config"); containerd's runc runtime uses SystemdCgroup=false
//     to match.
//   - failSwapOn: false, so a machine with swap still starts the node.
//
// Where any of it cannot start (not root, a package missing, the kubelet
// refusing), Up reports one line and the cluster runs with kwok nodes only.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kube-rotate/kube-rotate/e2e/images"
	"github.com/kube-rotate/kube-rotate/e2e/internal/mountinfo"
	"github.com/kube-rotate/kube-rotate/e2e/internal/ports"
)

// RealNodeName is the name of the real node.
const RealNodeName = "real-node-0"

// RealNodeLabel is set to "true" on the real node: a pod selects it with a
// nodeSelector.
const RealNodeLabel = "kube-rotate.io/real-node"

// RealNodeTaint (effect NoSchedule) keeps every pod that does not tolerate
// it off the real node.
const RealNodeTaint = RealNodeLabel

// RealNodeToleration lets a pod onto the real node.
var RealNodeToleration = corev1.Toleration{Key: RealNodeTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// realNodeState is what state.json records of the real node.
type realNodeState struct {
	// Bridge is the Linux bridge the pods' veths attach to; Down deletes it.
	Bridge string `json:"bridge"`
	// HostIP is the bridge's address: the node's InternalIP, and the
	// address pods reach the host (and its test servers) at.
	HostIP string `json:"hostIP"`
	// Subnet is the pods' IPv4 range.
	Subnet string `json:"subnet"`
	// ContainerdSocket is containerd's gRPC socket (CRI and ctr).
	ContainerdSocket string `json:"containerdSocket"`
	// ImageArchives hold the images imported into containerd.
	ImageArchives []string `json:"imageArchives"`
	// CgroupRoot is the kubelet's cgroupRoot, one per node: a kubelet
	// removes pod cgroups it does not know under its root, so two nodes
	// on one machine must not share one.
	CgroupRoot string `json:"cgroupRoot,omitempty"`
	// Ready is set once the node is Ready with the images imported.
	Ready bool `json:"ready"`
}

// RealNode describes the running real node.
type RealNode struct {
	// Name is the Node's name.
	Name string
	// HostIP is the address at which pods on the node reach the host: test
	// servers listen there for them.
	HostIP string
	// Subnet is the pods' address range (for a server's allow list).
	Subnet string
	// ImageArchives are the archives of the images the node holds.
	ImageArchives []string
}

// RealNode returns the real node, or an error saying why there is none
// (not asked for, or it could not start here).
func (c *Cluster) RealNode() (RealNode, error) {
	switch {
	case c.state.RealNode != nil && c.state.RealNode.Ready:
		n := c.state.RealNode
		return RealNode{Name: RealNodeName, HostIP: n.HostIP, Subnet: n.Subnet, ImageArchives: n.ImageArchives}, nil
	case c.state.RealNodeUnavailable != "":
		return RealNode{}, errors.New(c.state.RealNodeUnavailable)
	default:
		return RealNode{}, errors.New("the cluster was started without a real node (Options.RealNode, --real-node)")
	}
}

// hostTools are the node's programs from Debian's packages.
type hostTools struct {
	containerd, ctr, runc, ip, cniDir string
}

// ContainerdEnv names another containerd binary for the real node (the
// default is the one in PATH, from Debian's package).
const ContainerdEnv = "KUBE_ROTATE_CONTAINERD"

func findHostTools() (hostTools, error) {
	var t hostTools
	if p := os.Getenv(ContainerdEnv); p != "" && !isExec(p) {
		return t, fmt.Errorf("%s=%s is not an executable file", ContainerdEnv, p)
	}
	var missing []string
	for _, x := range []struct {
		name string
		dst  *string
		pkg  string
	}{{"containerd", &t.containerd, "containerd"}, {"ctr", &t.ctr, "containerd"}, {"runc", &t.runc, "runc"}, {"ip", &t.ip, "iproute2"}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			for _, d := range []string{"/usr/bin", "/usr/sbin", "/sbin"} {
				if isExec(filepath.Join(d, x.name)) {
					p, err = filepath.Join(d, x.name), nil
					break
				}
			}
		}
		if err != nil {
			missing = append(missing, x.pkg)
			continue
		}
		*x.dst = p
	}
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if isExec(filepath.Join(d, "bridge")) && isExec(filepath.Join(d, "host-local")) && isExec(filepath.Join(d, "loopback")) {
			t.cniDir = d
			break
		}
	}
	if t.cniDir == "" {
		missing = append(missing, "containernetworking-plugins")
	}
	if p := os.Getenv(ContainerdEnv); p != "" {
		t.containerd = p
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing Debian packages: apt-get install %s", strings.Join(slices.Compact(missing), " "))
	}
	return t, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// startRealNode starts containerd and the kubelet and waits for the node.
// On failure everything it started is stopped again and the reason is
// recorded; the cluster goes on with its kwok nodes.
func (c *Cluster) startRealNode(ctx context.Context, o Options, bins Binaries, pki *pkiFiles) {
	begin := time.Now()
	err := c.tryRealNode(ctx, o, bins, pki)
	if err == nil {
		fmt.Fprintf(o.Log, "real node %s Ready in %.1fs (pods on %s, host at %s)\n", RealNodeName, time.Since(begin).Seconds(), c.state.RealNode.Subnet, c.state.RealNode.HostIP)
		return
	}
	reason := "real node unavailable: " + oneLine(err.Error())
	fmt.Fprintf(o.Log, "%s; running with kwok nodes only\n", reason)
	c.stopRealNode()
	c.state.RealNodeUnavailable = reason
	_ = c.save()
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		rest := strings.TrimSpace(s[i+1:])
		s = s[:i]
		if rest != "" {
			s += " (" + strings.ReplaceAll(rest, "\n", "; ") + ")"
		}
	}
	return s
}

func (c *Cluster) tryRealNode(ctx context.Context, o Options, bins Binaries, pki *pkiFiles) error {
	if os.Geteuid() != 0 {
		return errors.New("the kubelet and containerd need root")
	}
	tools, err := findHostTools()
	if err != nil {
		return err
	}
	repoRoot := o.RepoRoot
	if repoRoot == "" {
		if repoRoot, err = images.RepoRoot(); err != nil {
			return fmt.Errorf("building the node's images: %w", err)
		}
	}
	dir := filepath.Join(c.StateDir, "node")
	for _, d := range []string{"containerd", "containerd-state", "cni", "cni-ipam", "kubelet", "pod-logs", "images"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	n := &realNodeState{ContainerdSocket: filepath.Join(dir, "containerd-state", "containerd.sock")}
	c.state.RealNode = n
	if err := c.createBridge(tools, n); err != nil {
		return err
	}
	n.CgroupRoot = "/kube-rotate-" + n.Bridge
	if err := c.save(); err != nil {
		return err
	}
	if err := makeCgroupRoot(n.CgroupRoot); err != nil {
		return err
	}

	// Images first: building them needs no root, and a build error is
	// the project's, not the machine's.
	archives, err := images.Build(ctx, repoRoot, filepath.Join(dir, "images"), images.All)
	if err != nil {
		return err
	}
	n.ImageArchives = archives

	if err := writeCNIConfig(filepath.Join(dir, "cni", "10-kube-rotate.conflist"), n, filepath.Join(dir, "cni-ipam")); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig(dir, n.ContainerdSocket, tools)), 0o600); err != nil {
		return err
	}
	if err := c.spawn("node-containerd", tools.containerd, o.Attached, "--config", cfg); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "containerd", 30*time.Second, func(ctx context.Context) error {
		return exec.CommandContext(ctx, tools.ctr, "--address", n.ContainerdSocket, "version").Run()
	}); err != nil {
		return err
	}
	for _, archive := range archives {
		if out, err := exec.CommandContext(ctx, tools.ctr, "--address", n.ContainerdSocket, "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
			return fmt.Errorf("ctr images import %s: %v: %s", archive, err, strings.TrimSpace(string(out)))
		}
	}

	kcfg := filepath.Join(dir, "kubelet.yaml")
	healthz, err := ports.Free()
	if err != nil {
		return err
	}
	port, err := ports.Free()
	if err != nil {
		return err
	}
	if err := os.WriteFile(kcfg, []byte(kubeletConfig(dir, n, pki, port, healthz)), 0o600); err != nil {
		return err
	}
	if err := c.spawn("node-kubelet", bins.Kubelet, o.Attached,
		"--config="+kcfg,
		"--kubeconfig="+filepath.Join(c.StateDir, "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(dir, "kubelet"),
		"--cert-dir="+filepath.Join(dir, "kubelet", "pki"),
		"--hostname-override="+RealNodeName,
		"--node-ip="+n.HostIP,
		"--node-labels="+RealNodeLabel+"=true",
		"--v=1",
	); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "the real node to be Ready", 90*time.Second, func(ctx context.Context) error {
		node, err := cs.CoreV1().Nodes().Get(ctx, RealNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("%s: %s", cond.Reason, cond.Message)
			}
		}
		return errors.New("no Ready condition yet")
	}); err != nil {
		return err
	}
	n.Ready = true
	return c.save()
}

// createBridge creates the first free bridge krn<i> with 10.123.<i>.1/24:
// one bridge and subnet per running cluster, so two clusters on one
// machine never share a pod network. Creating it is the claim.
func (c *Cluster) createBridge(t hostTools, n *realNodeState) error {
	var last error
	for i := 0; i < 64; i++ {
		name := fmt.Sprintf("krn%d", i)
		out, err := exec.Command(t.ip, "link", "add", name, "type", "bridge").CombinedOutput()
		if err != nil {
			last = fmt.Errorf("ip link add %s type bridge: %v: %s", name, err, strings.TrimSpace(string(out)))
			if strings.Contains(string(out), "exists") {
				continue
			}
			return last
		}
		n.Bridge, n.HostIP, n.Subnet = name, fmt.Sprintf("10.123.%d.1", i), fmt.Sprintf("10.123.%d.0/24", i)
		for _, args := range [][]string{{"addr", "add", n.HostIP + "/24", "dev", name}, {"link", "set", name, "up"}} {
			if out, err := exec.Command(t.ip, args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
		}
		return nil
	}
	return fmt.Errorf("no free bridge name: %v", last)
}

func writeCNIConfig(path string, n *realNodeState, ipamDir string) error {
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kube-rotate",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q, "gateway": %q}]]}
  }]
}
`, n.Bridge, ipamDir, n.Subnet, n.HostIP)
	return os.WriteFile(path, []byte(conf), 0o600)
}

// containerdConfig keeps everything of containerd under dir, with the CRI
// plugin set up for the kubelet: cgroupfs, the project's pause image, the
// bridge network, no TCP streaming service.
func containerdConfig(dir, socket string, t hostTools) string {
	q := strconv.Quote
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %s

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %s
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %s
    conf_dir = %s
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %s
        SystemdCgroup = false
`, q(filepath.Join(dir, "containerd")), q(filepath.Join(dir, "containerd-state")), q(socket), q(socket+".ttrpc"),
		q(filepath.Join(dir, "containerd", "opt")), q(images.Pause.Ref()), q(t.cniDir), q(filepath.Join(dir, "cni")), q(t.runc))
}

// kubeletConfig is the KubeletConfiguration of the real node. Client
// certificates of the cluster CA authenticate (kube-apiserver's for logs),
// image garbage collection and disk eviction are off (the images cannot be
// pulled again), and the node registers with RealNodeTaint.
func kubeletConfig(dir string, n *realNodeState, pki *pkiFiles, port, healthz int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
containerRuntimeEndpoint: unix://%[4]s
cgroupDriver: cgroupfs
cgroupRoot: %[8]q
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[5]q}
authorization:
  mode: AlwaysAllow
podLogsDir: %[6]q
registerWithTaints:
- {key: %[7]q, effect: NoSchedule}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "50Mi", "nodefs.available": "1%%", "imagefs.available": "1%%", "nodefs.inodesFree": "1%%"}
maxPods: 40
serializeImagePulls: false
resolvConf: /etc/resolv.conf
syncFrequency: 10s
nodeStatusReportFrequency: 1m
staticPodPath: ""
`, n.HostIP, port, healthz, n.ContainerdSocket, pki.CACert, filepath.Join(dir, "pod-logs"), RealNodeTaint, n.CgroupRoot)
}

// stopRealNode stops the kubelet, removes every pod sandbox through the
// CRI (which stops the containers and tears down their network), stops
// containerd, unmounts what they left under the state directory and
// deletes the bridge. Processes are dropped from the record once stopped.
func (c *Cluster) stopRealNode() error {
	n := c.state.RealNode
	if n == nil {
		return nil
	}
	var errs []error
	if p, ok := c.process("node-kubelet"); ok {
		errs = append(errs, c.stop(p))
	}
	if p, ok := c.process("node-containerd"); ok {
		if c.ours(p) {
			errs = append(errs, removeSandboxes(n.ContainerdSocket))
		}
		errs = append(errs, c.stop(p))
	}
	c.dropProcesses("node-kubelet", "node-containerd")
	errs = append(errs, unmountUnder(filepath.Join(c.StateDir, "node")))
	if n.CgroupRoot != "" {
		errs = append(errs, removeCgroupRoot(n.CgroupRoot))
	}
	if n.Bridge != "" {
		if err := exec.Command("ip", "link", "del", n.Bridge).Run(); err != nil && bridgeExists(n.Bridge) {
			errs = append(errs, fmt.Errorf("ip link del %s: %w", n.Bridge, err))
		}
	}
	c.state.RealNode = nil
	_ = c.save()
	return errors.Join(errs...)
}

func bridgeExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

func (c *Cluster) process(name string) (process, bool) {
	for _, p := range c.state.Processes {
		if p.Name == name {
			return p, true
		}
	}
	return process{}, false
}

func (c *Cluster) dropProcesses(names ...string) {
	var keep []process
	for _, p := range c.state.Processes {
		drop := false
		for _, n := range names {
			drop = drop || p.Name == n
		}
		if !drop {
			keep = append(keep, p)
		}
	}
	c.state.Processes = keep
}

// removeSandboxes stops and removes every pod sandbox containerd's CRI
// plugin knows, with their containers.
func removeSandboxes(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to containerd: %w", err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping pod sandbox %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing pod sandbox %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount point below dir, deepest first
// (the kubelet's Secret and token volumes, containerd's rootfs and shm).
func unmountUnder(dir string) error {
	points, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupMounts are the mount points of the cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m.Point)
		}
	}
	return out, nil
}

// makeCgroupRoot creates root in every cgroup hierarchy: the kubelet
// refuses a cgroupRoot that does not exist.
func makeCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := os.MkdirAll(filepath.Join(m, root), 0o755); err != nil {
			return fmt.Errorf("creating the node's cgroup root: %w", err)
		}
	}
	return nil
}

// removeCgroupRoot kills whatever still runs in root's cgroups (containers
// of a run whose containerd was killed before it could stop them), then
// removes root and the cgroups below it, deepest first (rmdir removes an
// empty cgroup with its control files).
func removeCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var dirs []string
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		var err error
		// A killed process leaves its cgroup once the kernel has reaped it.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			err = syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
