package action

import (
	"encoding/base64"
	"strings"

	"github.com/sethvargo/go-githubactions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
)

// fleet is the clusters the kubeconfig input reaches, with their clients.
type fleet struct {
	members []report.Member
}

// loadKubeconfig reads the kubeconfig input (YAML, or base64 of it, as
// kept in a KUBE_CONFIG_DATA secret), masks its credentials in the log,
// picks the contexts to check (the current context, every context, or the
// contexts input), refuses exec credential plugins (the image has none),
// and builds clients for each. Nothing is written to disk: client-go reads
// the certificates and tokens from memory.
func loadKubeconfig(gha *githubactions.Action, in *Inputs) (*fleet, error) {
	content := in.Kubeconfig
	data := []byte(content)
	if !strings.Contains(content, "apiVersion") && !strings.Contains(content, "clusters") {
		if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(content)); err == nil {
			data = dec
		}
	}
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, bad("input kubeconfig is not a kubeconfig (YAML, or base64 of it): %s", firstLine(err.Error()))
	}
	for _, ai := range raw.AuthInfos {
		for _, v := range []string{ai.Token, ai.Password} {
			mask(gha, v)
		}
		for _, l := range strings.Split(string(ai.ClientKeyData), "\n") {
			if !strings.HasPrefix(l, "-----") {
				mask(gha, l)
			}
		}
	}
	var members []kube.Member
	switch {
	case in.ContextsAll || len(in.Contexts) > 0:
		if members, err = kube.SelectContexts(*raw, in.Contexts, in.ContextsAll); err != nil {
			return nil, bad("input contexts: %s", firstLine(err.Error()))
		}
	default:
		cur := raw.CurrentContext
		if _, ok := raw.Contexts[cur]; !ok {
			return nil, bad("input kubeconfig has no current-context %q: set current-context to the context the Action should use, or list contexts in input contexts", cur)
		}
		t, err := kube.TargetOf(*raw, cur, "", in.Cluster, "")
		if err != nil {
			return nil, bad("input kubeconfig, context %s: %s", cur, strings.ReplaceAll(firstLine(err.Error()), "pass --cluster-name NAME", "set input cluster"))
		}
		members = []kube.Member{{Target: t}}
	}
	f := &fleet{}
	for _, m := range members {
		c := raw.Contexts[m.Context]
		if ai := raw.AuthInfos[c.AuthInfo]; ai != nil && ai.Exec != nil {
			return nil, bad("input kubeconfig: user %q of context %s runs the credential plugin %q (exec:), which the Action's image does not have: give a kubeconfig with a token or client certificate (for example a ServiceAccount token)", c.AuthInfo, m.Context, ai.Exec.Command)
		}
		cfg, err := kube.RESTConfigFor(*raw, m.Context, kube.DefaultQPS, kube.DefaultBurst, 0)
		if err != nil {
			return nil, bad("input kubeconfig: %s", firstLine(err.Error()))
		}
		cfg.UserAgent = "kube-rotate-action"
		rm := report.Member{Name: m.Cluster, Context: m.Context, Server: m.Server, AlsoContexts: m.Also, Namespace: in.Namespace}
		if in.ContextsAll || len(in.Contexts) > 0 {
			// Over several contexts, a command copied from an issue must
			// say which cluster it acts on.
			rm.CommandContext = m.Context
		}
		if rm.Kube, err = kubernetes.NewForConfig(cfg); err == nil {
			rm.Metadata, err = metadata.NewForConfig(cfg)
		}
		if err != nil {
			return nil, bad("input kubeconfig, context %s: %s", m.Context, firstLine(err.Error()))
		}
		f.members = append(f.members, rm)
	}
	return f, nil
}

// mask tells the runner to hide a value in the log.
func mask(gha *githubactions.Action, v string) {
	if v = strings.TrimSpace(v); len(v) >= 4 {
		gha.AddMask(v)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
