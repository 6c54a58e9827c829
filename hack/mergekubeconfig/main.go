// Command mergekubeconfig writes one kubeconfig with several clusters in
// it, for the fleet scan of `make bench` (hack/bench-fleet.sh). The local
// clusters' kubeconfigs all use the same names (cluster and context
// kube-rotate-e2e, user admin), so KUBECONFIG=a:b:c would keep only the
// first of each; here the current context of each file, its cluster and
// its user are renamed to the name given, certificates embedded.
//
//	go run ./hack/mergekubeconfig -o fleet.kubeconfig fleet-a=A/kubeconfig fleet-b=B/kubeconfig
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func main() {
	out := flag.String("o", "", "kubeconfig to write (mode 0600)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mergekubeconfig -o FILE NAME=KUBECONFIG...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mergekubeconfig:", err)
		os.Exit(1)
	}
}

func run(out string, args []string) error {
	if out == "" || len(args) == 0 {
		return errors.New("usage: mergekubeconfig -o FILE NAME=KUBECONFIG...")
	}
	merged := clientcmdapi.NewConfig()
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("%q: want NAME=KUBECONFIG", a)
		}
		if _, dup := merged.Contexts[name]; dup {
			return fmt.Errorf("%s: given twice", name)
		}
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			return err
		}
		if err := clientcmd.ResolveLocalPaths(cfg); err != nil {
			return err
		}
		ctx := cfg.Contexts[cfg.CurrentContext]
		if ctx == nil {
			return fmt.Errorf("%s: no current context", path)
		}
		cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
		if cluster == nil || user == nil {
			return fmt.Errorf("%s: context %s names a cluster or user the file does not have", path, cfg.CurrentContext)
		}
		merged.Clusters[name], merged.AuthInfos[name] = cluster, user
		merged.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: ctx.Namespace}
		if merged.CurrentContext == "" {
			merged.CurrentContext = name
		}
	}
	if err := clientcmdapi.FlattenConfig(merged); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*merged, out); err != nil {
		return err
	}
	return os.Chmod(out, 0o600)
}
