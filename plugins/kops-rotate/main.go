// Command kops-rotate rotates kOps keysets. Installed by krew as
// kubectl-kops_rotate it also answers to `kubectl kops-rotate`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate"
)

func main() {
	// Ctrl-C and SIGTERM cancel the context; kops commands it runs stop too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := kopsrotate.NewCmdKopsRotate(os.Args[0], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	cmdutil.CheckErr(cmd.ExecuteContext(ctx))
}
