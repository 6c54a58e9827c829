package action

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/sethvargo/go-githubactions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
)

// clusterClients are the clients built from the kubeconfig input.
type clusterClients struct {
	kube     kubernetes.Interface
	metadata metadata.Interface
	// path of the 0600 temp file holding the kubeconfig; removed by cleanup.
	path string
}

func (c *clusterClients) cleanup() {
	if c != nil && c.path != "" {
		os.Remove(c.path)
	}
}

// loadKubeconfig writes the kubeconfig input (YAML, or base64 of it, as
// kept in a KUBE_CONFIG_DATA secret) to a 0600 temp file, masks its
// credentials in the log, refuses exec credential plugins (the image has
// none), and builds clients.
func loadKubeconfig(gha *githubactions.Action, content string) (*clusterClients, error) {
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
	cur := raw.CurrentContext
	ctx, ok := raw.Contexts[cur]
	if !ok {
		return nil, bad("input kubeconfig has no current-context %q: set current-context to the context the Action should use", cur)
	}
	if ai := raw.AuthInfos[ctx.AuthInfo]; ai != nil && ai.Exec != nil {
		return nil, bad("input kubeconfig: user %q runs the credential plugin %q (exec:), which the Action's image does not have: give a kubeconfig with a token or client certificate (for example a ServiceAccount token)", ctx.AuthInfo, ai.Exec.Command)
	}
	f, err := os.CreateTemp("", "kubeconfig-*")
	if err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	c := &clusterClients{path: f.Name()}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		c.cleanup()
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		c.cleanup()
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	if err := f.Close(); err != nil {
		c.cleanup()
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.path)
	if err != nil {
		c.cleanup()
		return nil, bad("input kubeconfig: %s", firstLine(err.Error()))
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "kube-rotate-action"
	if c.kube, err = kubernetes.NewForConfig(cfg); err == nil {
		c.metadata, err = metadata.NewForConfig(cfg)
	}
	if err != nil {
		c.cleanup()
		return nil, bad("input kubeconfig: %s", firstLine(err.Error()))
	}
	return c, nil
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
