// Package target holds what the single-Secret verbs (undo, finish,
// history) share: the secret/NAME argument, -o and --dry-run, and clients.
package target

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Secret is the Secret a verb acts on, with the verb's output and dry-run
// flags and the clients to reach it. Verbs embed it in their Options.
type Secret struct {
	// Name of the Secret.
	Name string
	// Output is "", "json" or "yaml".
	Output     string
	DryRun     secret.DryRun
	PrintFlags *genericclioptions.JSONYamlPrintFlags
	Clients    *kube.Clients
	genericiooptions.IOStreams
}

// NewSecret returns a Secret target writing to streams.
func NewSecret(streams genericiooptions.IOStreams) Secret {
	return Secret{PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), IOStreams: streams}
}

// AddFlags adds -o, and --dry-run when the verb writes.
func (s *Secret) AddFlags(cmd *cobra.Command, writes bool) {
	if writes {
		cmdutil.AddDryRunFlag(cmd)
	}
	output.AddOutputFlag(cmd, s.PrintFlags, &s.Output)
}

// Complete parses `secret/NAME`, the dry-run flag and builds clients.
func (s *Secret) Complete(verb string, f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	var err error
	if s.Name, err = SecretName(verb, args); err != nil {
		return err
	}
	s.DryRun = secret.DryRunNone
	if cmd.Flags().Lookup("dry-run") != nil {
		dr, err := cmdutil.GetDryRunStrategy(cmd)
		if err != nil {
			return err
		}
		s.DryRun = output.DryRun(dr)
	}
	s.Clients, err = kube.NewClients(f)
	return err
}

// Validate checks -o.
func (s *Secret) Validate() error { return output.ValidateFormat(s.Output) }

// Progress is where progress lines go: stdout, or stderr when stdout
// carries a -o record.
func (s *Secret) Progress() io.Writer { return output.Progress(s.IOStreams, s.Output) }

// RotationClients returns the clients as pkg/rotators/secret takes them.
func (s *Secret) RotationClients() secret.Clients {
	return secret.Clients{Kube: s.Clients.Kube, Dynamic: s.Clients.Dynamic}
}

// SecretName accepts `secret/NAME`, `secrets/NAME` or `secret NAME`, as
// kubectl does, and returns NAME.
func SecretName(verb string, args []string) (string, error) {
	usage := fmt.Sprintf("use `kubectl rotate %s secret/NAME`", verb)
	switch len(args) {
	case 1:
		kind, name, ok := strings.Cut(args[0], "/")
		if !ok {
			return "", fmt.Errorf("%q names no kind: %s", args[0], usage)
		}
		if !isSecret(kind) || name == "" {
			return "", fmt.Errorf("%q is not a Secret: %s", args[0], usage)
		}
		return name, nil
	case 2:
		if !isSecret(args[0]) || args[1] == "" || strings.Contains(args[1], "/") {
			return "", fmt.Errorf("%q is not a Secret: %s", strings.Join(args, " "), usage)
		}
		return args[1], nil
	}
	return "", fmt.Errorf("expected one Secret: %s", usage)
}

func isSecret(kind string) bool {
	switch strings.ToLower(kind) {
	case "secret", "secrets":
		return true
	}
	return false
}
