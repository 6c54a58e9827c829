//go:build e2e

// Package encryption checks the encryption-at-rest key rotation
// (`kubectl rotate encryption`, `kops-rotate encryption-config`) against a
// real kube-apiserver that encrypts with the configuration the commands
// edit (--encryption-provider-config, reloaded automatically), reading what
// it stored straight from etcd.
package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

const initial = `# kube-apiserver --encryption-provider-config
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: %s
              secret: %s
      - identity: {}
  - resources:
      - events
    providers:
      - identity: {}
`

type env struct {
	t       *testing.T
	c       *cluster.Cluster
	kc      kubernetes.Interface
	cfgPath string
	ns      string
	// kops is the state store holding the configuration, nil when the
	// API server's file is the configuration (a self-managed control
	// plane).
	kops *kops.Store
}

// kopsStore is a kOps state store whose encryptionconfig secret the real
// kops CLI created from first.
func kopsStore(t *testing.T, dir string, first []byte) *kops.Store {
	t.Helper()
	bin := os.Getenv("KOPS")
	if bin == "" {
		t.Fatal("KOPS is not set: run the suite with `make e2e` (it builds the kops CLI and sets KOPS)")
	}
	state := "file://" + filepath.Join(dir, "kops-state")
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca")
	src := filepath.Join(dir, "first.yaml")
	if err := os.WriteFile(src, first, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "create", "secret", "encryptionconfig", "-f", src, "--name", kopstest.ClusterName, "--state", state).CombinedOutput(); err != nil {
		t.Fatalf("kops create secret encryptionconfig: %v\n%s", err, out)
	}
	s, err := kops.Open(context.Background(), state, kopstest.ClusterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) create(name string) string {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"value": []byte("value of " + name)}}
	if _, err := e.kc.CoreV1().Secrets(e.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return name
}

// checkStored reads each Secret from etcd (its v3 JSON gateway) and checks
// the prefix kube-apiserver stored it with: k8s:enc:aescbc:v1:<key>:.
func (e *env) checkStored(want map[string]string) {
	e.t.Helper()
	for name, key := range want {
		v := e.etcdGet("/registry/secrets/" + e.ns + "/" + name)
		if prefix := "k8s:enc:aescbc:v1:" + key + ":"; !bytes.HasPrefix(v, []byte(prefix)) {
			got := v
			if len(got) > 40 {
				got = got[:40]
			}
			e.t.Errorf("etcd holds secret %s as %q..., want it under %s", name, got, prefix)
		}
		if bytes.Contains(v, []byte("value of "+name)) {
			e.t.Errorf("etcd holds secret %s in clear", name)
		}
	}
}

func (e *env) etcdGet(key string) []byte {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	resp, err := http.Post(e.c.EtcdURL()+"/v3/kv/range", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Kvs) != 1 {
		e.t.Fatalf("etcd range %s: %v (%d kvs)", key, err, len(out.Kvs))
	}
	v, err := base64.StdEncoding.DecodeString(out.Kvs[0].Value)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}
