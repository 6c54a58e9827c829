// Command metafloor is the floor for a scan of Secrets, for `make bench`:
// a metadata-only paged list (client-go's metadata client, PartialObjectMetadata)
// of every Secret, each page dropped once counted. It prints the count and
// nothing else: no value ever leaves the API server.
//
//	go run ./hack/metafloor -A
//	go run ./hack/metafloor -n bench-status -page-size 500
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
)

func main() {
	all := flag.Bool("A", false, "all namespaces")
	ns := flag.String("n", "", "namespace (default: the kubeconfig's)")
	pageSize := flag.Int64("page-size", 500, "objects per list request (0: one unpaged list)")
	flag.Parse()
	n, err := run(context.Background(), *all, *ns, *pageSize)
	if err != nil {
		fmt.Fprintln(os.Stderr, "metafloor:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

// run lists the Secrets of ns (all namespaces with all) page by page and
// returns how many there are.
func run(ctx context.Context, all bool, ns string, pageSize int64) (int, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return 0, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	switch {
	case all:
		ns = ""
	case ns == "":
		if ns, _, err = loader.Namespace(); err != nil {
			return 0, fmt.Errorf("reading the kubeconfig's namespace: %w", err)
		}
	}
	// kubectl rotate's client-side limits: client-go's defaults (QPS 5,
	// burst 10) would make the floor wait for its own rate limiter.
	cfg.QPS, cfg.Burst = kube.DefaultQPS, kube.DefaultBurst
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("building a metadata client: %w", err)
	}
	res := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns)
	n := 0
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		list, err := res.List(ctx, opts)
		if err != nil {
			return n, fmt.Errorf("listing secret metadata: %w", err)
		}
		n += len(list.Items)
		if opts.Continue = list.Continue; opts.Continue == "" {
			return n, nil
		}
	}
}
