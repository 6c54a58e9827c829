//go:build e2e

package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
)

// These tests drive the real cluster command (this test binary acts as it
// when KUBE_ROTATE_TEST_AS_CLUSTER=1) with the cached control-plane
// binaries. They run in `make e2e`, not against kind.
func TestMain(m *testing.M) {
	if os.Getenv("KUBE_ROTATE_TEST_AS_CLUSTER") == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

func clusterCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "KUBE_ROTATE_TEST_AS_CLUSTER=1")
	return cmd
}

// startRun starts `cluster run -- sleep 600` and waits until its cluster is
// healthy; it returns the command and the component pids.
func startRun(t *testing.T, stateDir string) (*exec.Cmd, map[string]int) {
	t.Helper()
	cmd := clusterCmd(t, "--state-dir="+stateDir, "run", "--", "sleep", "600")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cluster.Down(stateDir) })
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if c, err := cluster.Load(stateDir); err == nil && c.Healthy(context.Background()) == nil {
			pids := c.Processes()
			if len(pids) != 5 {
				t.Fatalf("cluster runs %d processes, want etcd, apiserver, controller-manager, scheduler, kwok: %v", len(pids), pids)
			}
			return cmd, pids
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("cluster run never became healthy")
	return nil, nil
}

func waitAllGone(t *testing.T, pids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		left := map[string]int{}
		for name, pid := range pids {
			if running(pid) {
				left[name] = pid
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("processes left behind: %v", pids)
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestInterruptedRunLeavesNoProcesses(t *testing.T) {
	tests := []struct {
		name   string
		signal syscall.Signal
	}{
		{"Ctrl-C", syscall.SIGINT},
		{"SIGKILL of the harness", syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), "state")
			cmd, pids := startRun(t, stateDir)
			if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			waitAllGone(t, pids)
			if tt.signal == syscall.SIGINT {
				if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
					t.Errorf("state directory left after Ctrl-C: %v", err)
				}
			}
		})
	}
}

func TestUpTakenPortFailsWithOneClearLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	stateDir := filepath.Join(t.TempDir(), "state")
	out, err := clusterCmd(t, "--state-dir="+stateDir, "--apiserver-port="+strconv.Itoa(port), "up").CombinedOutput()
	if err == nil {
		t.Fatalf("up on a taken port succeeded:\n%s", out)
	}
	want := "error: port 127.0.0.1:" + strconv.Itoa(port) + " is taken"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "--apiserver-port") {
		t.Errorf("output lacks %q naming --apiserver-port:\n%s", want, out)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("failed up left state behind: %v", err)
	}
}

func TestUpIsIdempotentAndDownStopsEverything(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() { _ = cluster.Down(stateDir) })
	up := func() string {
		out, err := clusterCmd(t, "--state-dir="+stateDir, "up").Output()
		if err != nil {
			t.Fatalf("up: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "KUBECONFIG=/") {
			t.Fatalf("last line of up is %q, want KUBECONFIG=<absolute path>", last)
		}
		return last
	}
	first := up()
	c, err := cluster.Load(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	pids := c.Processes()
	if second := up(); second != first {
		t.Errorf("second up printed %q, want the running cluster's %q", second, first)
	}
	c2, _ := cluster.Load(stateDir)
	for name, pid := range c2.Processes() {
		if pids[name] != pid {
			t.Errorf("second up restarted %s (pid %d -> %d)", name, pids[name], pid)
		}
	}
	env, err := clusterCmd(t, "--state-dir="+stateDir, "env").Output()
	if err != nil || strings.TrimSpace(string(env)) != first {
		t.Errorf("env printed %q (%v), want %q", env, err, first)
	}
	if out, err := clusterCmd(t, "--state-dir="+stateDir, "down").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	waitAllGone(t, pids)
	out, err := clusterCmd(t, "--state-dir="+stateDir, "env").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "make cluster-up") {
		t.Errorf("env after down = %q (%v), want an error telling how to start a cluster", out, err)
	}
}

// TestRealNodeUnavailableSaysWhyInOneLine: where the real node cannot
// start (here: a containerd that is not there), `run --real-node` says why
// in one line, runs the command on the kwok-only cluster and hands it the
// reason.
func TestRealNodeUnavailableSaysWhyInOneLine(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() { _ = cluster.Down(stateDir) })
	cmd := clusterCmd(t, "--state-dir="+stateDir, "--real-node", "run", "--", "sh", "-c", `echo "reason=$E2E_REAL_NODE_UNAVAILABLE"; kubectl get nodes -o name`)
	cmd.Env = append(cmd.Env, cluster.ContainerdEnv+"=/nonexistent/containerd")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "real node") {
			lines = append(lines, l)
		}
	}
	want := "real node unavailable: " + cluster.ContainerdEnv + "=/nonexistent/containerd is not an executable file; running with kwok nodes only"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("lines about the real node: %q, want [%q]", lines, want)
	}
	if !strings.Contains(stdout.String(), "reason=real node unavailable: "+cluster.ContainerdEnv) {
		t.Errorf("the command was not told why:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), cluster.RealNodeName) || !strings.Contains(stdout.String(), "node/kwok-node-0") {
		t.Errorf("nodes of the kwok-only cluster:\n%s", stdout.String())
	}
}

// TestRealNodeDownLeavesNothing starts a cluster with the real node, runs
// a pod there, and checks that down leaves no container process, mount,
// network namespace or bridge behind.
func TestRealNodeDownLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the real node needs root")
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() { _ = cluster.Down(stateDir) })
	out, err := clusterCmd(t, "--state-dir="+stateDir, "--real-node", "up").CombinedOutput()
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	c, err := cluster.Load(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	rn, err := c.RealNode()
	if err != nil {
		if os.Getenv("E2E_REAL_NODE") == "required" {
			t.Fatalf("%v, and E2E_REAL_NODE=required", err)
		}
		t.Skip(err)
	}
	kubectl := func(args ...string) string {
		cmd := exec.Command("kubectl", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	marker := "down-test-" + strconv.Itoa(os.Getpid())
	kubectl("run", "sleeper", "--image=kube-rotate.local/testapp:e2e", "--image-pull-policy=Never",
		`--overrides={"spec":{"nodeSelector":{"`+cluster.RealNodeLabel+`":"true"},"tolerations":[{"key":"`+cluster.RealNodeTaint+`","operator":"Exists"}]}}`, "--", "sleep", marker)
	kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=60s")
	bridge := "/sys/class/net/krn" + strings.Split(rn.HostIP, ".")[2]
	found := false
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		found = found || strings.Contains(string(b), marker)
	}
	if _, err := os.Stat(bridge); err != nil {
		t.Fatalf("the node's bridge %s: %v", bridge, err)
	}
	if out, err := clusterCmd(t, "--state-dir="+stateDir, "down").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if _, err := os.Stat(bridge); err == nil {
		t.Errorf("bridge %s is still there after down", bridge)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), stateDir) {
		t.Errorf("mounts under %s are left after down", stateDir)
	}
	procs, _ = filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, stateDir) || strings.Contains(cmd, marker) {
			if stat, _ := os.ReadFile(strings.TrimSuffix(p, "cmdline") + "stat"); !strings.Contains(string(stat), ") Z ") {
				t.Errorf("process left after down: %s", cmd)
			}
		}
	}
	if !found {
		t.Error("the pod's process was never seen: the check for leftovers looks in the wrong place")
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("state directory left after down: %v", err)
	}
}
