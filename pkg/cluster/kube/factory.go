// Package kube builds Kubernetes clients from kubectl's usual flags
// (--kubeconfig, --context, -n, --as, ...) with client-side rate limits fit
// for bulk work: client-go's defaults (QPS 5, burst 10) make a rotation of a
// few hundred Secrets slower than a shell loop of kubectl calls.
package kube

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Default client-side rate limits. They are the limits under which 200
// Secret patches plus 200 rollout restarts finished in 1-2 s on the local
// control plane (see docs/ARCHITECTURE.md); the API server's own priority
// and fairness still protects it.
const (
	DefaultQPS   float32 = 200
	DefaultBurst int     = 400
)

// Flags are kubectl's connection flags plus the client rate limits.
type Flags struct {
	// ConfigFlags are kubectl's --kubeconfig, --context, --namespace, --as, ... flags.
	ConfigFlags *genericclioptions.ConfigFlags
	// QPS and Burst are the client-side rate limits applied to every client.
	QPS   float32
	Burst int
}

// NewFlags returns Flags with kubectl's defaults and this project's rate limits.
func NewFlags() *Flags {
	f := &Flags{
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		QPS:         DefaultQPS,
		Burst:       DefaultBurst,
	}
	f.ConfigFlags.WrapConfigFn = f.wrapConfig
	return f
}

// AddFlags registers the flags on fs (normally a root command's persistent flags).
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	f.ConfigFlags.AddFlags(fs)
	fs.Float32Var(&f.QPS, "kube-api-qps", f.QPS, "Maximum queries per second to the API server from this client.")
	fs.IntVar(&f.Burst, "kube-api-burst", f.Burst, "Maximum burst of queries to the API server from this client.")
}

// Validate checks the rate-limit flags.
func (f *Flags) Validate() error {
	if f.QPS <= 0 {
		return fmt.Errorf("--kube-api-qps must be greater than 0, got %v", f.QPS)
	}
	if f.Burst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", f.Burst)
	}
	return nil
}

// NewFactory returns kubectl's command factory over these flags, so commands
// can reuse kubectl's own helpers (resource builder, rollout restart and
// status, printers).
func (f *Flags) NewFactory() cmdutil.Factory {
	return &factory{Factory: cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(f.ConfigFlags)), flags: f}
}

// factory is kubectl's factory that also knows which cluster it reaches.
type factory struct {
	cmdutil.Factory
	flags *Flags
}

func (f *factory) target(name string) (Target, error) {
	var ctx, cluster string
	if c := f.flags.ConfigFlags.Context; c != nil {
		ctx = *c
	}
	if c := f.flags.ConfigFlags.ClusterName; c != nil {
		cluster = *c
	}
	return factoryTarget(f, ctx, cluster, name)
}

func (f *Flags) wrapConfig(c *rest.Config) *rest.Config {
	c.QPS = f.QPS
	c.Burst = f.Burst
	return c
}
