// Command kubectl-rotate is the `kubectl rotate` plugin. Install it on PATH
// (or with krew) and run `kubectl rotate --help`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec and OIDC credential plugins from kubeconfigs
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cmd/rotate"
)

func main() {
	cmd := rotate.NewCmdRotate(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	cmdutil.CheckErr(cmd.Execute())
}
