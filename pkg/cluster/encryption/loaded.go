package encryption

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// identityLabel marks the kube-apiserver identity leases in kube-system,
// one per API server, named by its id (k8s.io/apiserver
// pkg/server/config.go: "apiserver-" + base32 of a hash of the hostname).
const identityLabel = "apiserver.kubernetes.io/identity=kube-apiserver"

// configInfoMetric carries, per API server (apiserver_id_hash: sha256 of
// its id), the sha256 of the encryption configuration file it applied
// (k8s.io/apiserver pkg/server/options/encryptionconfig/metrics and
// config.go computeEncryptionConfigHash).
const configInfoMetric = "apiserver_encryption_config_controller_last_config_info"

// ConfigHash is how kube-apiserver names a configuration file's content in
// its metrics.
func ConfigHash(file []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(file)) }

// Loaded reports which API servers have not applied the configuration file
// (none: every API server encrypts and decrypts with it). The API servers
// are the identity leases; what each applied is read from /metrics, which
// answers for the API server the request reaches: with several behind a
// load balancer, call again until every one was seen (seen keeps what
// earlier calls saw; nil to start).
func Loaded(ctx context.Context, kc kubernetes.Interface, file []byte, seen map[string]string) (pending []string, err error) {
	leases, err := kc.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{LabelSelector: identityLabel})
	if err != nil {
		return nil, fmt.Errorf("listing the kube-apiserver identity leases: %w", err)
	}
	raw, err := kc.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading kube-apiserver /metrics: %w", err)
	}
	if seen == nil {
		seen = map[string]string{}
	}
	for id, hash := range configInfo(raw) {
		seen[id] = hash
	}
	want := ConfigHash(file)
	for _, l := range leases.Items {
		idHash := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(l.Name)))
		if seen[idHash] != want {
			pending = append(pending, l.Name)
		}
	}
	if len(leases.Items) == 0 && len(seen) == 0 {
		return []string{"(no kube-apiserver reports an encryption configuration)"}, nil
	}
	sort.Strings(pending)
	return pending, nil
}

// configInfo reads apiserver_id_hash -> hash from the metric's lines.
func configInfo(metrics []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, configInfoMetric+"{") || !strings.HasSuffix(line, " 1") {
			continue
		}
		labels := line[len(configInfoMetric)+1 : strings.LastIndex(line, "}")]
		var id, hash string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "apiserver_id_hash":
				id = v
			case "hash":
				hash = v
			}
		}
		if id != "" {
			out[id] = hash
		}
	}
	return out
}
