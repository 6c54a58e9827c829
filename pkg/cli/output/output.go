// Package output prints rotation records for people (plans and summaries)
// and for machines (kubectl's JSON and YAML printers). It prints
// fingerprints, never values.
package output

import (
	"context"
	"fmt"

	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// DryRun converts kubectl's dry-run strategy.
func DryRun(s cmdutil.DryRunStrategy) secret.DryRun {
	switch s {
	case cmdutil.DryRunClient:
		return secret.DryRunClient
	case cmdutil.DryRunServer:
		return secret.DryRunServer
	}
	return secret.DryRunNone
}

// PrintObject prints obj with kubectl's printer for format (json or yaml).
func PrintObject(flags *genericclioptions.JSONYamlPrintFlags, format string, obj runtime.Object, w io.Writer) error {
	p, err := flags.ToPrinter(format)
	if err != nil {
		return err
	}
	return p.PrintObj(obj, w)
}

// Acting says, before anything is written, which cluster a command acts
// on: "VERB cluster prod (context prod-admin, server https://...)".
func Acting(w io.Writer, verb string, t v1alpha1.ClusterTarget) {
	if t.Cluster != "" {
		fmt.Fprintf(w, "%s %s\n", verb, t)
	}
}

// PrintPlan prints what a client dry run would do.
func PrintPlan(ctx context.Context, w io.Writer, r *secret.Result) error {
	fmt.Fprintln(w, "Plan (dry run: nothing was changed)")
	if r.Target != nil {
		Acting(w, "On", *r.Target)
	}
	for _, s := range r.Secrets {
		printSecret(w, s)
	}
	printConsumers(w, r.Consumers)
	if len(r.Secrets) > 0 {
		fmt.Fprintln(w, "\nUndo after the rotation:")
		for _, s := range r.Secrets {
			if s.Previous != "" {
				fmt.Fprintf(w, "  %s\n", secret.UndoCommand(ctx, s.Namespace, s.Name))
			} else {
				fmt.Fprintf(w, "  (none for secret/%s: --no-keep-previous)\n", s.Name)
			}
		}
	}
	return nil
}

// PrintSummary prints what a rotation did.
func PrintSummary(w io.Writer, r *secret.Result) error {
	if r.DryRun == string(secret.DryRunServer) {
		fmt.Fprintln(w, "Server dry run: the API server accepted every write; nothing was changed")
		for _, s := range r.Secrets {
			printSecret(w, s)
		}
		return nil
	}
	switch r.Phase {
	case secret.PhaseComplete:
		fmt.Fprintf(w, "\nrotation complete: %d secret(s), %d workload(s) restarted\n", len(r.Secrets), len(r.Restarted))
	case secret.PhaseFailed:
		fmt.Fprintf(w, "\nrotation FAILED: consumers are not healthy\n")
	case secret.PhaseUndone:
		fmt.Fprintf(w, "\nrotation undone: the previous values are back\n")
	}
	namespaces := map[string]bool{}
	for _, s := range r.Secrets {
		namespaces[s.Namespace] = true
	}
	for _, s := range r.Secrets {
		where := ""
		if len(namespaces) > 1 {
			where = " -n " + s.Namespace
		}
		fmt.Fprintf(w, "  secret/%s%s generation %d: %s\n", s.Name, where, s.Generation, keyNames(s))
	}
	for _, c := range r.Consumers {
		if !c.Restart {
			fmt.Fprintf(w, "  %s not restarted: %s\n", c.Ref(), c.Note)
		}
	}
	for _, u := range r.Unhealthy {
		fmt.Fprintf(w, "  UNHEALTHY %s: %s (%s)\n", u.Workload.Ref(), u.Status, u.Reason)
	}
	if r.Phase == secret.PhaseComplete || r.Phase == secret.PhaseFailed {
		for _, u := range r.Undo {
			fmt.Fprintf(w, "  undo: %s\n", u)
		}
	}
	return nil
}

func keyNames(s secret.SecretResult) string {
	var ks []string
	for _, k := range s.Keys {
		ks = append(ks, k.Key)
	}
	return strings.Join(ks, ", ")
}

func printSecret(w io.Writer, s secret.SecretResult) {
	state := fmt.Sprintf("generation %d", s.Generation)
	if s.Resumed {
		state += ", resuming an interrupted run"
	}
	fmt.Fprintf(w, "\nsecret/%s (namespace %s, %s)\n", s.Name, s.Namespace, state)
	tw := printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "  KEY\tNEW VALUE FROM\tOLD\tNEW")
	for _, k := range s.Keys {
		old := k.Old
		if k.Created {
			old = "(new key)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.Key, dash(k.Source), dash(old), dash(k.New))
	}
	tw.Flush()
	if s.Previous != "" && !s.Resumed {
		exp := ""
		if s.ExpiresAt != nil {
			exp = " (kept until " + s.ExpiresAt.Format("2006-01-02T15:04:05Z") + ")"
		}
		fmt.Fprintf(w, "  previous values -> secret/%s%s\n", s.Previous, exp)
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

func printConsumers(w io.Writer, cs []consumers.Workload) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "\nConsumers: none found (no workload reads a changed key)")
		return
	}
	fmt.Fprintln(w, "\nConsumers:")
	tw := printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "  WORKLOAD\tREADS\tACTION")
	for _, c := range cs {
		action := "restart, then wait for the rollout"
		if !c.Restart {
			action = c.Note
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Ref(), describeRefs(c.References), action)
	}
	tw.Flush()
}

func describeRefs(refs []consumers.Reference) string {
	var out []string
	for _, r := range refs {
		s := string(r.How)
		if len(r.Keys) > 0 {
			s += " " + strings.Join(r.Keys, ",")
		}
		if r.Container != "" {
			s += " (" + r.Container + ")"
		} else if r.Volume != "" {
			s += " (volume " + r.Volume + ")"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// AddOutputFlag adds -o/--output (json|yaml) with kubectl's printer flags.
func AddOutputFlag(cmd *cobra.Command, flags *genericclioptions.JSONYamlPrintFlags, target *string) {
	cmd.Flags().StringVarP(target, "output", "o", "", "Output format: json or yaml (the structured record). Progress then goes to stderr.")
	flags.AddFlags(cmd)
}

// ValidateFormat checks a -o value.
func ValidateFormat(format string) error {
	if format != "" && format != "json" && format != "yaml" {
		return fmt.Errorf("--output %q is not supported: use json or yaml", format)
	}
	return nil
}

// Progress returns where progress lines go: stdout for people, stderr
// when stdout carries a -o record.
func Progress(streams genericiooptions.IOStreams, format string) io.Writer {
	if format != "" {
		return streams.ErrOut
	}
	return streams.Out
}

// ValidateTableFormat checks a -o value where a table is the default.
func ValidateTableFormat(format string) error {
	if format != "" && format != "table" && format != "json" && format != "yaml" {
		return fmt.Errorf("--output %q is not supported: use table, json or yaml", format)
	}
	return nil
}
