package kube

import (
	"strings"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func fleetConfig() clientcmdapi.Config {
	c := clientcmdapi.NewConfig()
	c.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	// A tunnel to another cluster on the same local port.
	c.Clusters["staging"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	c.Clusters["arn:aws:eks:eu-west-1:123456789012:cluster/eu"] = &clientcmdapi.Cluster{Server: "https://eks.example"}
	c.Clusters["bad name"] = &clientcmdapi.Cluster{Server: "https://bad.example"}
	c.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	for ctx, cl := range map[string]string{"prod-admin": "prod", "prod-view": "prod", "staging": "staging", "eu": "arn:aws:eks:eu-west-1:123456789012:cluster/eu", "bad": "bad name"} {
		c.Contexts[ctx] = &clientcmdapi.Context{Cluster: cl, AuthInfo: "u"}
	}
	c.CurrentContext = "prod-admin"
	return *c
}

func TestTargetOf(t *testing.T) {
	raw := fleetConfig()
	tests := []struct {
		name, context, clusterFlag, given string
		want                              string // Target.String, or the error
	}{
		{"the context's cluster", "prod-admin", "", "", "cluster prod (context prod-admin, server https://127.0.0.1:6443)"},
		{"same server, another entry: another cluster", "staging", "", "", "cluster staging (context staging, server https://127.0.0.1:6443)"},
		{"--cluster wins over the context's", "prod-admin", "staging", "", "cluster staging (context prod-admin, server https://127.0.0.1:6443)"},
		{"a name the user gives wins", "prod-admin", "", "prod-eu", "cluster prod-eu (context prod-admin, server https://127.0.0.1:6443)"},
		{"EKS ARN", "eu", "", "", "cluster arn:aws:eks:eu-west-1:123456789012:cluster/eu (context eu, server https://eks.example)"},
		{"a kubeconfig name with a space", "bad", "", "", `error: kubeconfig cluster name "bad name" contains ' ': spaces and control characters are not allowed: pass --cluster-name NAME`},
		{"a given name with a marker end", "prod-admin", "", "a-->b", `error: cluster name "a-->b" contains "-->": give another name`},
		{"no kubeconfig: the server's host", "", "", "", "cluster 10.0.0.1:443 (server https://10.0.0.1:443)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := ""
			r := raw
			if tt.context == "" {
				r, server = *clientcmdapi.NewConfig(), "https://10.0.0.1:443"
			}
			got, err := TargetOf(r, tt.context, tt.clusterFlag, tt.given, server)
			s := got.String()
			if err != nil {
				s = "error: " + err.Error()
			}
			if s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

func TestSelectContexts(t *testing.T) {
	raw := fleetConfig()
	delete(raw.Contexts, "bad")
	tests := []struct {
		name  string
		names []string
		all   bool
		want  string // cluster<-context[+also] ..., or the error
	}{
		{"a list, in its order", []string{"staging", "prod-admin"}, false, "staging<-staging prod<-prod-admin"},
		{"two contexts of one entry: read once", []string{"prod-admin", "prod-view", "staging"}, false, "prod<-prod-admin+prod-view staging<-staging"},
		{"all, sorted", nil, true, "arn:aws:eks:eu-west-1:123456789012:cluster/eu<-eu prod<-prod-admin+prod-view staging<-staging"},
		{"an unknown context", []string{"prod-admin", "qa"}, false, "error: context \"qa\" is not in the kubeconfig: `kubectl config get-contexts` lists them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := SelectContexts(raw, tt.names, tt.all)
			var parts []string
			for _, m := range ms {
				p := m.Cluster + "<-" + m.Context
				if len(m.Also) > 0 {
					p += "+" + strings.Join(m.Also, "+")
				}
				parts = append(parts, p)
			}
			got := strings.Join(parts, " ")
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
