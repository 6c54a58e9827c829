// Package history implements `kubectl rotate history`: the rotations of a
// Secret, with fingerprints, never values.
package history

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cli/target"
)

var examples = templates.Examples(`
	# When each key of diracx-secrets changed, by whom, and its fingerprint
	kubectl rotate history secret/diracx-secrets -n diracx

	# For audit tooling
	kubectl rotate history secret/diracx-secrets -n diracx -o json`)

// List is the history printed with -o json|yaml: a SecretRotationHistory.
type List = v1alpha1.SecretRotationHistory

// Options of `kubectl rotate history`.
type Options struct {
	target.Secret
	Now func() time.Time
}

// NewCmdHistory returns the `history` command.
func NewCmdHistory(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Secret: target.NewSecret(streams), Now: time.Now}
	cmd := &cobra.Command{
		Use:                   "history secret/NAME",
		ValidArgsFunction:     completion.SpecifiedResourceTypeAndNameNoRepeatCompletionFunc(f, []string{"secret"}),
		DisableFlagsInUseLine: true,
		Short:                 "List the rotations of a Secret: time, action, generation, keys, fingerprints, who",
		Example:               examples,
		Run: func(cmd *cobra.Command, a []string) {
			cmdutil.CheckErr(o.Complete("history", f, cmd, a))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	o.AddFlags(cmd, false)
	return cmd
}

// Run prints the history.
func (o *Options) Run(ctx context.Context) error {
	s, err := o.Clients.Kube.CoreV1().Secrets(o.Clients.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading secret/%s in namespace %s: %w", o.Name, o.Clients.Namespace, err)
	}
	h, err := v1alpha1.ReadHistory(s.Annotations)
	if err != nil {
		return fmt.Errorf("secret/%s: %w", o.Name, err)
	}
	l := &List{TypeMeta: v1alpha1.TypeMeta(v1alpha1.KindSecretRotationHistory),
		Secret: o.Name, Namespace: s.Namespace, Phase: s.Annotations[v1alpha1.Phase], Previous: s.Annotations[v1alpha1.Previous], Items: h}
	if l.Items == nil {
		l.Items = []v1alpha1.Entry{}
	}
	if o.Output != "" {
		return output.PrintObject(o.PrintFlags, o.Output, l, o.Out)
	}
	if len(h) == 0 {
		fmt.Fprintf(o.Out, "secret/%s has no rotation history (never rotated with kubectl rotate)\n", o.Name)
		return nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(tw, "TIME\tAGE\tACTION\tGENERATION\tKEYS\tFINGERPRINTS\tBY")
	for _, e := range h {
		var fps []string
		for _, k := range e.KeyNames() {
			fps = append(fps, e.Keys[k])
		}
		by := e.By
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), age(o.Now().Sub(e.Time.Time)), e.Action, e.Generation,
			strings.Join(e.KeyNames(), ","), strings.Join(fps, ","), by)
	}
	return tw.Flush()
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
