package kube

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: team-a}
current-context: ctx
users:
- name: u
  user: {token: "not-a-real-token"}
`

func TestFlagsApplyRateLimitsAndKubectlFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		wantQPS   float32
		wantBurst int
		wantNS    string
	}{
		{"defaults", []string{"--kubeconfig", path}, DefaultQPS, DefaultBurst, "team-a"},
		{"overrides", []string{"--kubeconfig", path, "--kube-api-qps=50", "--kube-api-burst=60", "-n", "team-b"}, 50, 60, "team-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlags()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
			fac := f.NewFactory()
			cfg, err := fac.ToRESTConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.QPS != tt.wantQPS || cfg.Burst != tt.wantBurst {
				t.Errorf("rest config QPS/Burst = %v/%d, want %v/%d", cfg.QPS, cfg.Burst, tt.wantQPS, tt.wantBurst)
			}
			ns, _, err := fac.ToRawKubeConfigLoader().Namespace()
			if err != nil || ns != tt.wantNS {
				t.Errorf("namespace = %q (%v), want %q", ns, err, tt.wantNS)
			}
		})
	}
}

func TestValidateRejectsBadLimits(t *testing.T) {
	for _, tt := range []struct {
		qps   float32
		burst int
	}{{0, 10}, {-1, 10}, {10, 0}} {
		f := NewFlags()
		f.QPS, f.Burst = tt.qps, tt.burst
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(qps=%v, burst=%d) = nil, want error", tt.qps, tt.burst)
		}
	}
}
