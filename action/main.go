// Command action is the entrypoint of the kube-rotate GitHub Action
// container (see action.yml). It stays thin: everything happens in
// pkg/action, driven by the runner's environment (INPUT_*, GITHUB_*).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // OIDC credentials from kubeconfigs

	"github.com/kube-rotate/kube-rotate/pkg/action"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := action.Main(ctx, action.Env{Getenv: os.Getenv, Out: os.Stdout})
	stop()
	os.Exit(code)
}
