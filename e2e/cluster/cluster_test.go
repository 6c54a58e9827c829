package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

const upstreamGoMod = `module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	go.etcd.io/etcd/client/v3 v3.6.8
	go.etcd.io/etcd/server/v3 v3.6.8 // indirect
	k8s.io/api v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	example.com/other => example.com/other v1.2.3
)
`

func TestWrapperGoMod(t *testing.T) {
	w, err := wrapperGoMod([]byte(upstreamGoMod), "v1.36.4")
	if err != nil {
		t.Fatal(err)
	}
	got := string(w.goMod)
	for _, want := range []string{
		"go 1.26.0\n",
		"godebug default=go1.26\n",
		"require k8s.io/kubernetes v1.36.4\n",
		"\tk8s.io/api => k8s.io/api v0.36.4\n",
		"\tk8s.io/client-go => k8s.io/client-go v0.36.4\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("wrapper go.mod lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "example.com/other") || strings.Contains(got, "./staging") {
		t.Errorf("wrapper go.mod copies a non-staging or local replace:\n%s", got)
	}
	if w.etcdVersion != "v3.6.8" {
		t.Errorf("etcd version = %q, want upstream's v3.6.8", w.etcdVersion)
	}
}

func TestWrapperGoModRejectsUnknownLayouts(t *testing.T) {
	for name, mod := range map[string]string{
		"no staging replaces": "module k8s.io/kubernetes\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 v3.6.8\n",
		"no etcd":             "module k8s.io/kubernetes\n\ngo 1.26.0\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n",
		"not a go.mod":        "this is { not go.mod",
	} {
		if _, err := wrapperGoMod([]byte(mod), "v1.36.4"); err == nil {
			t.Errorf("%s: wrapperGoMod succeeded, want an error", name)
		}
	}
}

func TestPKIAndKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	p, err := writePKI(filepath.Join(dir, "pki"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(p.CACert)
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA certificate does not parse")
	}
	serving := readCert(t, mustRead(t, p.ServingCert))
	if _, err := serving.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err != nil {
		t.Errorf("serving certificate does not verify for 127.0.0.1: %v", err)
	}
	for _, id := range clientIdentities {
		path := filepath.Join(dir, id.name+".kubeconfig")
		if err := writeKubeconfig(path, "https://127.0.0.1:1", p, id.name); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		cert := readCert(t, cfg.CertData)
		if cert.Subject.CommonName != id.cn || strings.Join(cert.Subject.Organization, ",") != strings.Join(id.orgs, ",") {
			t.Errorf("%s: subject %v, want CN=%s O=%v", id.name, cert.Subject, id.cn, id.orgs)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: client certificate does not verify: %v", id.name, err)
		}
	}
	for _, f := range []string{p.CAKey, p.ServingKey, p.ServiceAccountKey} {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

func TestChoosePortsNamesTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	_, err = choosePorts(taken, 0)
	if err == nil || !strings.Contains(err.Error(), "is taken") || !strings.Contains(err.Error(), "--apiserver-port") {
		t.Fatalf("choosePorts(taken apiserver port) = %v, want an error naming the port and --apiserver-port", err)
	}
	_, err = choosePorts(0, taken)
	if err == nil || !strings.Contains(err.Error(), "--etcd-port") {
		t.Fatalf("choosePorts(taken etcd port) = %v, want an error naming --etcd-port", err)
	}
	ports, err := choosePorts(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports not distinct: %v", ports)
	}
}

// TestDownStopsOnlyRecordedProcesses checks that Down signals the
// processes recorded in state.json and leaves a process whose pid is
// recorded under another binary alone (a reused pid).
func TestDownStopsOnlyRecordedProcesses(t *testing.T) {
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal("no sleep binary on PATH: coreutils is required")
	}
	sleepBin, _ = filepath.EvalSymlinks(sleepBin)
	dir := t.TempDir()
	ours := exec.Command(sleepBin, "60")
	other := exec.Command(sleepBin, "60")
	for _, c := range []*exec.Cmd{ours, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
	}
	oursDone := make(chan struct{})
	go func() { ours.Wait(); close(oursDone) }()
	go other.Wait()
	c := &Cluster{StateDir: dir}
	c.state.Processes = []process{
		{Name: "etcd", Pid: ours.Process.Pid, Binary: sleepBin},
		{Name: "kwok", Pid: other.Process.Pid, Binary: "/not/the/binary/of/this/pid"},
	}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if err := Down(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-oursDone:
	case <-time.After(5 * time.Second):
		t.Fatal("recorded process still running after Down")
	}
	if !alive(other.Process.Pid) {
		t.Error("Down killed a process it did not start")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory not removed: %v", err)
	}
	if err := Down(dir); err != nil {
		t.Errorf("second Down = %v, want nil (nothing to stop)", err)
	}
}

func TestEnvWithoutClusterSaysHowToStartOne(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "make cluster-up") || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("Load(empty) = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
