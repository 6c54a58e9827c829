// Package cluster runs a real, local Kubernetes control plane for the
// project's end-to-end tests and demo: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler built from the Go module proxy,
// and kwok simulating nodes so Deployments really roll out. No Docker and no
// network beyond the module proxy are needed.
//
// A cluster lives in a state directory that holds its PKI, kubeconfigs, etcd
// data, logs and state.json, which records the pid of every process it
// started so Down stops exactly those.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Up.
type Options struct {
	// StateDir holds everything of one cluster. Default: DefaultStateDir("local").
	StateDir string
	// CacheDir holds built binaries. Default: DefaultCacheDir().
	CacheDir string
	// Versions of the components. Default: DefaultVersions().
	Versions Versions
	// Nodes is the number of kwok fake nodes. Default 2.
	Nodes int
	// APIServerPort and EtcdPort pin the listening ports on 127.0.0.1;
	// 0 picks free ones.
	APIServerPort, EtcdPort int
	// Attached ties the processes to the calling process: they are killed
	// by the kernel if it dies, even by SIGKILL. Used for test runs, which
	// must never leave processes behind. A detached cluster outlives the
	// caller until Down.
	Attached bool
	// Log receives progress lines. Default: io.Discard.
	Log io.Writer
	// EncryptionConfig, when set, is the EncryptionConfiguration file
	// kube-apiserver encrypts with (--encryption-provider-config), reloaded
	// when it changes (--encryption-provider-config-automatic-reload: the
	// API server polls it every minute, k8s.io/apiserver
	// pkg/server/options/encryptionconfig/controller).
	EncryptionConfig string
	// RealNode adds a real node next to the kwok nodes: a kubelet with
	// containerd, runc and the CNI bridge plugin (see node.go). Where it
	// cannot start, Up says why in one line and goes on without it;
	// Cluster.RealNode then returns that reason.
	RealNode bool
	// RepoRoot is this repository's directory, whose test images the real
	// node runs. Default: found from the working directory.
	RepoRoot string
}

// Cluster is a running local control plane.
type Cluster struct {
	// StateDir is the absolute path of the state directory.
	StateDir string
	// Kubeconfig is the absolute path of the admin kubeconfig.
	Kubeconfig string
	state      state
}

// state is persisted as state.json.
type state struct {
	Versions     Versions `json:"versions"`
	APIServerURL string   `json:"apiServerURL"`
	EtcdPort     int      `json:"etcdPort"`
	// EncryptionConfig is Options.EncryptionConfig (absolute).
	EncryptionConfig string    `json:"encryptionConfig,omitempty"`
	EtcdPeerPort     int       `json:"etcdPeerPort"`
	APIServerPort    int       `json:"apiServerPort"`
	Nodes            int       `json:"nodes"`
	Processes        []process `json:"processes"`
	Ready            bool      `json:"ready"`
	// RealNode is the real node, while it starts or runs.
	RealNode *realNodeState `json:"realNode,omitempty"`
	// RealNodeUnavailable says why a real node that was asked for is not
	// there.
	RealNodeUnavailable string `json:"realNodeUnavailable,omitempty"`
}

type process struct {
	Name   string `json:"name"`
	Pid    int    `json:"pid"`
	Binary string `json:"binary"`
	Log    string `json:"log"`
}

const stateFile = "state.json"

// KwokNodeAnnotation marks the nodes kwok manages.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// DefaultStateDir returns the state directory of the named local cluster.
func DefaultStateDir(name string) string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("kube-rotate-cluster-%d", os.Getuid()), name)
}

func (o *Options) defaults() error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir("local")
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = abs
	if o.CacheDir == "" {
		if o.CacheDir, err = DefaultCacheDir(); err != nil {
			return err
		}
	}
	if o.Versions == (Versions{}) {
		o.Versions = DefaultVersions()
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Up builds what is missing, starts the control plane and waits until it
// serves, the fake nodes are Ready and pods can be created. If the state
// directory already holds a healthy cluster, Up returns it unchanged; a
// stale one (some process gone) is stopped and started afresh.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if c, err := Load(o.StateDir); err == nil {
		if err := c.Healthy(ctx); err == nil {
			if o.Attached {
				return nil, fmt.Errorf("a cluster is already running in %s: stop it with `make cluster-down` or use another --state-dir", o.StateDir)
			}
			fmt.Fprintf(o.Log, "cluster already running in %s\n", o.StateDir)
			return c, nil
		}
		fmt.Fprintf(o.Log, "cluster in %s is not healthy; restarting it\n", o.StateDir)
		if err := c.Down(); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		// Unreadable state: stop whatever it recorded before starting over.
		fmt.Fprintf(o.Log, "ignoring unreadable state in %s: %v\n", o.StateDir, err)
		_ = Down(o.StateDir)
	}

	ports, err := choosePorts(o.APIServerPort, o.EtcdPort)
	if err != nil {
		return nil, err
	}
	bins, err := EnsureBinaries(ctx, o.CacheDir, o.Versions, o.Log)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.StateDir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", o.StateDir, err)
	}
	for _, d := range []string{"logs", "etcd", "flexvolume", "kwok"} {
		if err := os.MkdirAll(filepath.Join(o.StateDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	encryptionConfig := ""
	if o.EncryptionConfig != "" {
		if encryptionConfig, err = filepath.Abs(o.EncryptionConfig); err != nil {
			return nil, err
		}
	}
	c := &Cluster{StateDir: o.StateDir, Kubeconfig: filepath.Join(o.StateDir, "kubeconfig")}
	c.state = state{
		Versions: o.Versions, Nodes: o.Nodes,
		APIServerPort: ports[0], EtcdPort: ports[1], EtcdPeerPort: ports[2], EncryptionConfig: encryptionConfig,
		APIServerURL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
	}
	if err := c.start(ctx, o, bins); err != nil {
		_ = c.Down()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, o Options, bins Binaries) error {
	started := time.Now()
	pki, err := writePKI(filepath.Join(c.StateDir, "pki"), started)
	if err != nil {
		return fmt.Errorf("creating certificates: %w", err)
	}
	kubeconfigs := map[string]string{}
	for _, id := range clientIdentities {
		path := filepath.Join(c.StateDir, id.name+".kubeconfig")
		if id.name == "admin" {
			path = c.Kubeconfig
		}
		if err := writeKubeconfig(path, c.state.APIServerURL, pki, id.name); err != nil {
			return err
		}
		kubeconfigs[id.name] = path
	}
	if err := c.save(); err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.state.EtcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.state.EtcdPeerPort)

	fmt.Fprintf(o.Log, "starting etcd on %s\n", etcdURL)
	if err := c.spawn("etcd", bins.Etcd, o.Attached,
		"--name=kube-rotate-e2e", "--data-dir="+filepath.Join(c.StateDir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kube-rotate-e2e="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn",
	); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "etcd", 30*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, etcdURL+"/health")
	}); err != nil {
		return err
	}

	fmt.Fprintf(o.Log, "starting kube-apiserver %s on %s\n", o.Versions.Kubernetes, c.state.APIServerURL)
	var encryption []string
	if c.state.EncryptionConfig != "" {
		encryption = []string{"--encryption-provider-config=" + c.state.EncryptionConfig, "--encryption-provider-config-automatic-reload=true"}
	}
	if err := c.spawn("kube-apiserver", bins.APIServer, o.Attached, append(encryption,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.state.APIServerPort),
		"--tls-cert-file="+pki.ServingCert, "--tls-private-key-file="+pki.ServingKey,
		"--client-ca-file="+pki.CACert,
		"--kubelet-client-certificate="+pki.KubeletClientCert, "--kubelet-client-key="+pki.KubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.ServiceAcct,
		"--service-account-signing-key-file="+pki.ServiceAccountKey,
		"--endpoint-reconciler-type=none", // loopback advertise address: no Endpoints for the kubernetes Service
		"--allow-privileged=true", "--profiling=false",
		"--cert-dir="+filepath.Join(c.StateDir, "pki"),
	)...); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver", 90*time.Second, func(ctx context.Context) error {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}

	fmt.Fprintln(o.Log, "starting kube-controller-manager, kube-scheduler and kwok")
	kcm := kubeconfigs["kube-controller-manager"]
	if err := c.spawn("kube-controller-manager", bins.ControllerManager, o.Attached,
		"--kubeconfig="+kcm, "--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki.ServiceAccountKey,
		"--root-ca-file="+pki.CACert,
		"--cluster-signing-cert-file="+pki.CACert, "--cluster-signing-key-file="+pki.CAKey,
		"--flex-volume-plugin-dir="+filepath.Join(c.StateDir, "flexvolume"),
		// Rollouts of hundreds of Deployments are throttled by the default QPS of 20.
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
		"--node-monitor-grace-period=2m",
	); err != nil {
		return err
	}
	sched := kubeconfigs["kube-scheduler"]
	if err := c.spawn("kube-scheduler", bins.Scheduler, o.Attached,
		"--kubeconfig="+sched, "--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
	); err != nil {
		return err
	}
	if err := c.spawn("kwok", bins.Kwok, o.Attached,
		"--kubeconfig="+kubeconfigs["kwok"],
		"--config="+bins.KwokStages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"=fake",
		"--node-ip=10.0.1.1", "--cidr=10.0.2.0/24", // status fields only; nothing is sent there
		"--node-lease-duration-seconds=40",
	); err != nil {
		return err
	}

	fmt.Fprintf(o.Log, "creating %d kwok nodes\n", c.state.Nodes)
	for i := 0; i < c.state.Nodes; i++ {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}
	if err := c.waitFor(ctx, "nodes Ready", 60*time.Second, func(ctx context.Context) error {
		return nodesReady(ctx, cs, c.state.Nodes)
	}); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "default ServiceAccount", 60*time.Second, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	if o.RealNode {
		c.startRealNode(ctx, o, bins, pki)
	}
	c.state.Ready = true
	if err := c.save(); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "cluster ready in %.1fs\n", time.Since(started).Seconds())
	return nil
}

// spawn starts one component with its output in logs/<name>.log and records
// its pid before doing anything else, so Down can always stop it.
func (c *Cluster) spawn(name, binary string, attached bool, args ...string) error {
	logPath := filepath.Join(c.StateDir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.StateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if attached {
		// The kernel kills the component if the process that started it
		// dies for any reason, so an interrupted test run leaves nothing.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	} else {
		// Its own session: not hit by the terminal's Ctrl-C or by make exiting.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.state.Processes = append(c.state.Processes, process{Name: name, Pid: cmd.Process.Pid, Binary: binary, Log: logPath})
	// Reap the child when it exits so it does not linger as a zombie while
	// this process lives (a detached child is reparented once we exit).
	go cmd.Wait()
	return c.save()
}

// waitFor polls check until it succeeds, the timeout passes, or a recorded
// process exits; errors then carry the tail of the component's log.
func (c *Cluster) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		for _, p := range c.state.Processes {
			if !alive(p.Pid) {
				return fmt.Errorf("%s exited while waiting for %s; last lines of %s:\n%s", p.Name, what, p.Log, tail(p.Log, 15))
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out after %s waiting for %s: %v (logs in %s)", timeout, what, last, filepath.Join(c.StateDir, "logs"))
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Load returns the cluster recorded in stateDir. It fails with an error
// wrapping os.ErrNotExist when there is none.
func Load(stateDir string) (*Cluster, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, stateFile))
	if err != nil {
		return nil, fmt.Errorf("no local cluster in %s (start one with `make cluster-up`): %w", abs, err)
	}
	c := &Cluster{StateDir: abs, Kubeconfig: filepath.Join(abs, "kubeconfig")}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(abs, stateFile), err)
	}
	return c, nil
}

// Healthy reports whether every recorded process runs and the API server is ready.
func (c *Cluster) Healthy(ctx context.Context) error {
	if !c.state.Ready {
		return fmt.Errorf("the cluster in %s never became ready", c.StateDir)
	}
	for _, p := range c.state.Processes {
		if !c.ours(p) {
			return fmt.Errorf("%s (pid %d) is not running; see %s", p.Name, p.Pid, p.Log)
		}
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// EtcdURL is the client URL of the cluster's etcd (plain HTTP on
// 127.0.0.1), for tests that read what kube-apiserver stored.
func (c *Cluster) EtcdURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.state.EtcdPort) }

// Clientset returns an admin client for the cluster.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfig(cfg)
}

// Processes returns the names and pids of the recorded processes.
func (c *Cluster) Processes() map[string]int {
	out := map[string]int{}
	for _, p := range c.state.Processes {
		out[p.Name] = p.Pid
	}
	return out
}

// Down stops the processes this cluster started, newest first, and removes
// its state directory.
func (c *Cluster) Down() error {
	var errs []error
	if err := c.stopRealNode(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the real node: %w", err))
	}
	for i := len(c.state.Processes) - 1; i >= 0; i-- {
		p := c.state.Processes[i]
		if err := c.stop(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(c.StateDir); err != nil {
		return fmt.Errorf("removing %s: %w", c.StateDir, err)
	}
	return nil
}

// Down stops the cluster recorded in stateDir, if any.
func Down(stateDir string) error {
	c, err := Load(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.Down()
}

// ours reports whether pid still runs the recorded binary: a pid reused by
// an unrelated process after a reboot or crash is never signalled.
func (c *Cluster) ours(p process) bool {
	if !alive(p.Pid) {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe == p.Binary || strings.TrimSuffix(exe, ".tmp") == p.Binary
}

func (c *Cluster) stop(p process) error {
	if !c.ours(p) {
		return nil
	}
	_ = syscall.Kill(p.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(p.Pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	if alive(p.Pid) {
		return fmt.Errorf("%s (pid %d) did not stop", p.Name, p.Pid)
	}
	return nil
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.StateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.StateDir, stateFile))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name, is the state.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// choosePorts returns the API server, etcd client and etcd peer ports:
// the requested ones if free, else free ones from the kernel.
func choosePorts(apiserver, etcd int) ([3]int, error) {
	var out [3]int
	var holds []net.Listener
	defer func() {
		for _, l := range holds {
			l.Close()
		}
	}()
	for i, want := range []int{apiserver, etcd, 0} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", want))
		if err != nil {
			flag := map[int]string{0: "--apiserver-port", 1: "--etcd-port"}[i]
			return out, fmt.Errorf("port 127.0.0.1:%d is taken: stop the process using it or choose another with %s (0 picks a free port)", want, flag)
		}
		holds = append(holds, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{KwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{"cpu": mustQty("32"), "memory": mustQty("256Gi"), "pods": mustQty("500")},
			Capacity:    corev1.ResourceList{"cpu": mustQty("32"), "memory": mustQty("256Gi"), "pods": mustQty("500")},
		},
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < want {
		return fmt.Errorf("%d of %d nodes Ready", ready, want)
	}
	return nil
}

// writeKubeconfig writes a kubeconfig for one client identity with the
// certificates embedded.
func writeKubeconfig(path, server string, p *pkiFiles, identity string) error {
	ca, err := os.ReadFile(p.CACert)
	if err != nil {
		return err
	}
	cc := p.clients[identity]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kube-rotate-e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[identity] = &clientcmdapi.AuthInfo{ClientCertificateData: cc.Cert, ClientKeyData: cc.Key}
	cfg.Contexts["kube-rotate-e2e"] = &clientcmdapi.Context{Cluster: "kube-rotate-e2e", AuthInfo: identity, Namespace: "default"}
	cfg.CurrentContext = "kube-rotate-e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func mustQty(s string) resource.Quantity { return resource.MustParse(s) }
