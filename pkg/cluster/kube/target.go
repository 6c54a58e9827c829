package kube

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// Target names the cluster a command acts on: the cluster identity that
// goes into credential ids, issue markers and report rows, the kubeconfig
// context it was reached through and the API server's URL
// (v1alpha1.ClusterTarget, so records can carry it).
//
// The identity is the name the user gives (--cluster-name, the Action's
// cluster input), else the kubeconfig cluster the context points at. It is
// never the server URL: two clusters can sit behind one URL (a tunnel on
// 127.0.0.1:6443, a proxy such as Rancher or Teleport), and one cluster
// can be reached at several.
type Target = v1alpha1.ClusterTarget

// MaxClusterNameLength bounds a cluster identity (it is part of every id
// and GitHub issue marker).
const MaxClusterNameLength = 200

// ValidateClusterName checks a cluster identity: not empty, at most
// MaxClusterNameLength characters, no spaces or control characters, and
// not "-->" (it ends an issue marker). EKS ARNs, GKE's gke_P_Z_N and kOps
// names all pass.
func ValidateClusterName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > MaxClusterNameLength:
		return fmt.Errorf("is longer than %d characters", MaxClusterNameLength)
	case strings.Contains(name, "-->"):
		return errors.New(`contains "-->"`)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("contains %q: spaces and control characters are not allowed", r)
		}
	}
	return nil
}

// TargetOf works out the target of one context of a kubeconfig: name, when
// not empty, is the identity the user gave; clusterOverride is kubectl's
// --cluster flag. The server is the cluster entry's (or, when server is
// not empty, what the client connects to: --server).
func TargetOf(raw clientcmdapi.Config, contextName, clusterOverride, name, server string) (Target, error) {
	t := Target{Context: contextName, Cluster: name, Server: server}
	clusterName := clusterOverride
	if c := raw.Contexts[contextName]; c != nil && clusterName == "" {
		clusterName = c.Cluster
	}
	if t.Server == "" {
		if c := raw.Clusters[clusterName]; c != nil {
			t.Server = c.Server
		}
	}
	if t.Cluster == "" {
		t.Cluster = clusterName
	}
	if t.Cluster == "" {
		// In-cluster configuration or flags only: nothing names the
		// cluster but its address.
		t.Cluster = serverHost(t.Server)
	}
	if t.Cluster == "" {
		return t, errors.New("cannot tell which cluster this is: the kubeconfig context names no cluster; pass --cluster-name NAME")
	}
	if err := ValidateClusterName(t.Cluster); err != nil {
		if name != "" {
			return t, fmt.Errorf("cluster name %q %v: give another name", name, err)
		}
		return t, fmt.Errorf("kubeconfig cluster name %q %v: pass --cluster-name NAME", t.Cluster, err)
	}
	return t, nil
}

// serverHost is host[:port] of a server URL.
func serverHost(server string) string {
	s := server
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	return s
}

// targeter is the factory of Flags.NewFactory, which knows kubectl's
// --context and --cluster flags.
type targeter interface {
	target(name string) (Target, error)
}

// TargetFor works out the target of kubectl's factory: the context of
// --context (else the kubeconfig's current context), the cluster of
// --cluster (else the context's), and name when the user gave one.
func TargetFor(f cmdutil.Factory, name string) (Target, error) {
	if t, ok := f.(targeter); ok {
		return t.target(name)
	}
	return factoryTarget(f, "", "", name)
}

func factoryTarget(f cmdutil.Factory, contextFlag, clusterFlag, name string) (Target, error) {
	raw, err := f.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return Target{}, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ctx := contextFlag
	if ctx == "" {
		ctx = raw.CurrentContext
	}
	server := ""
	if cfg, err := f.ToRESTConfig(); err == nil {
		server = cfg.Host
	}
	return TargetOf(raw, ctx, clusterFlag, name, server)
}

// Member is one context of a fleet and the cluster it reaches.
type Member struct {
	Target
	// Also lists other selected contexts that point at the same cluster
	// entry: the cluster is scanned once.
	Also []string
}

// SelectContexts resolves --context a,b,c or --all-contexts to the
// clusters to scan, in the order given (all: sorted by context name).
// Contexts that point at the same kubeconfig cluster entry are merged
// into one member (scanned once); contexts of different entries stay
// apart even when their servers match.
func SelectContexts(raw clientcmdapi.Config, names []string, all bool) ([]Member, error) {
	if all {
		names = names[:0:0]
		for n := range raw.Contexts {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, errors.New("--all-contexts: the kubeconfig has no contexts")
		}
	}
	var out []Member
	index := map[string]int{}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if raw.Contexts[n] == nil {
			return nil, fmt.Errorf("context %q is not in the kubeconfig: `kubectl config get-contexts` lists them", n)
		}
		t, err := TargetOf(raw, n, "", "", "")
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", n, err)
		}
		if i, ok := index[t.Cluster]; ok {
			out[i].Also = append(out[i].Also, n)
			continue
		}
		index[t.Cluster] = len(out)
		out = append(out, Member{Target: t})
	}
	return out, nil
}

// FleetRequestTimeout bounds each request to a member of a fleet, so one
// cluster that does not answer (a black-holed address) is reported instead
// of holding up the others forever.
const FleetRequestTimeout = 30 * time.Second

// RESTConfigFor builds the client configuration of one context of raw,
// with this project's rate limits and timeout (0: FleetRequestTimeout).
func RESTConfigFor(raw clientcmdapi.Config, contextName string, qps float32, burst int, timeout time.Duration) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveClientConfig(raw, contextName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", contextName, err)
	}
	if timeout <= 0 {
		timeout = FleetRequestTimeout
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = qps, burst, timeout
	return cfg, nil
}
