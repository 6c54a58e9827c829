// Command kubectl-rotate is the `kubectl rotate` plugin. Install it on PATH
// (or with krew) and run `kubectl rotate --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec and OIDC credential plugins from kubeconfigs
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cli/rotate"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context: a step stops, its journal is
	// written, and the re-run resumes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := rotate.NewCmdRotate(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	cmdutil.CheckErr(cmd.ExecuteContext(ctx))
}
