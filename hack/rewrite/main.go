// Command rewrite runs pkg/cluster/encryption.Rewrite on the cluster
// KUBECONFIG points at, for `make bench` (next to `kubectl get secrets -A
// -o json | kubectl replace -f -`): the rewrite alone, without the
// procedure's checks of the API servers (kubectl rotate encryption rewrite
// runs the same code). It prints the summary as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
)

func main() {
	resources := flag.String("resources", "secrets", "EncryptionConfiguration resource names, comma-separated")
	workers := flag.Int("workers", 16, "writers (16: measured on the 2-core bench machine, less client CPU than 8 at the same API server cost)")
	qps := flag.Float64("qps", -1, "client QPS (burst is twice this); negative: no client-side limit, the API server's priority and fairness decides, as for kubectl")
	pageSize := flag.Int64("page-size", 500, "objects per list page")
	http1 := flag.Bool("http1", false, "talk HTTP/1.1 to the API server (a connection per writer) instead of HTTP/2")
	flag.Parse()
	if err := run(*resources, *workers, *pageSize, *qps, *http1); err != nil {
		fmt.Fprintln(os.Stderr, "rewrite:", err)
		os.Exit(1)
	}
}

func run(resources string, workers int, pageSize int64, qps float64, http1 bool) error {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return err
	}
	if http1 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	cfg.QPS = float32(qps)
	if qps > 0 {
		cfg.Burst = int(2 * qps)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	res, err := encryption.Resolve(kc.Discovery(), strings.Split(resources, ","))
	if err != nil {
		return err
	}
	o := encryption.RewriteOptions{Resources: res, Workers: workers, PageSize: pageSize, Progress: os.Stderr}
	if o.Metadata, err = metadata.NewForConfig(cfg); err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	sums, err := encryption.Rewrite(context.Background(), o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(sums)
}
