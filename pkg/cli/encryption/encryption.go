// Package encryption implements the verbs of an encryption-at-rest key
// rotation, shared by `kubectl rotate encryption` (a self-managed control
// plane's EncryptionConfiguration file) and `kops-rotate encryption-config`
// (a kOps state store's encryptionconfig secret): status, stage, promote,
// rewrite, retire, rollback and run. Each front end says where the
// configuration lives and how it reaches the API servers (a Target); the
// procedure is pkg/rotators/encryption's.
package encryption

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	kubeduration "k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	rot "github.com/kube-rotate/kube-rotate/pkg/rotators/encryption"
)

// Target is what a front end brings: its flags, and the rotation's options
// (source, journal, clients, rollout) made from them.
type Target interface {
	// AddFlags registers the front end's flags.
	AddFlags(fs *pflag.FlagSet)
	// Options opens the rotation; act is false for a dry run (nothing may
	// be written, so no rollout runs). out gets progress.
	Options(ctx context.Context, act bool, out io.Writer) (*rot.Options, error)
	// Act reports whether the command writes: kubectl's convention (write,
	// unless --dry-run) or kops' (print, unless --yes).
	Act(cmd *cobra.Command) (bool, error)
	// AddActFlag registers --dry-run or --yes.
	AddActFlag(cmd *cobra.Command)
}

// Options of one verb.
type Options struct {
	Target Target
	// Verb is status, rollback, run, or a stage.
	Verb        string
	Output      string
	PrintFlags  *genericclioptions.JSONYamlPrintFlags
	LoadTimeout time.Duration
	Workers     int
	PageSize    int64
	Now         func() time.Time
	act         bool
	genericiooptions.IOStreams
}

type verb struct {
	name, short, long string
}

var verbs = []verb{
	{"status", "Show the configuration's keys, the stage of the rotation, which API servers applied it, and the next command",
		"Read where the rotation stands from the EncryptionConfiguration itself (its key names and order), the journal (the rewrite and under which configuration it ran) and the cluster (which kube-apiservers applied the configuration). Writes nothing."},
	{rot.StepStage, "Add a new key second in every rotatable provider, and wait until every API server applied it",
		"Generate a key (crypto/rand, 32 bytes, named after the time it was made) for every provider that encrypts with aescbc, aesgcm or secretbox, add it second (every API server can then decrypt with it; the first key still encrypts), and wait until every kube-apiserver applied the configuration."},
	{rot.StepPromote, "Make the staged key first, and wait until every API server applied it",
		"Move the staged key first (every API server encrypts new writes with it; the old key still decrypts), and wait until every kube-apiserver applied the configuration. Refused until the stage is applied everywhere."},
	{rot.StepRewrite, "Store every encrypted object again, so that each is encrypted with the new key",
		"List every resource the configuration encrypts in pages and write each object back unchanged with its resourceVersion, through bounded workers: kube-apiserver stores it again with the first key. A conflict means the object was just written (with the first key) and is skipped. The progress is journaled after every page: a killed run re-run resumes. Refused until the promote is applied everywhere."},
	{rot.StepRetire, "Remove the old keys once nothing is left under them, and wait until every API server applied it",
		"Remove every key but the new one, once the rewrite completed under the configuration as it is (and, when etcd can be read, once etcd stores nothing under the old keys); the removed keys are kept aside for a rollback of the retire until the next rotation."},
	{"rollback", "Undo the current stage: the retire, the promote (then the rewrite back) or the stage",
		"Undo the stage the configuration is at: a retire (the retired keys put back second), a promote (the old key first again, then every object stored again with it) or a stage (the staged key removed). Each waits until every API server applied the configuration. Re-run it to resume an interrupted rollback."},
	{"run", "Run every stage that is not done: stage, promote, rewrite, retire",
		"Run the whole rotation, resuming where the configuration and the journal say it stopped."},
}

// NewCmd returns the parent command (use, e.g. "encryption") and its verbs.
// name is how the tool is called ("kubectl rotate", "kops-rotate"); how
// adds the target flags to the examples ("--config /etc/kubernetes/enc.yaml").
func NewCmd(use, short, name, how string, t Target, streams genericiooptions.IOStreams) *cobra.Command {
	parent := &cobra.Command{
		Use:   use,
		Short: short,
		Long: templates.LongDesc(`
			Rotate the keys of an API server EncryptionConfiguration gracefully, as
			Kubernetes' "Rotating a decryption key" describes: stage a new key second, promote
			it first, rewrite every encrypted object, retire the old key; every edit waits until
			every kube-apiserver applied it, and every stage has a rollback. Edits keep the
			rest of the document byte for byte; key material is never printed.`),
		Example: templates.Examples(fmt.Sprintf(`
			# Where the rotation stands
			%[1]s %[2]s status %[3]s

			# The whole rotation, resuming where it stopped
			%[1]s %[2]s run %[3]s

			# One stage at a time
			%[1]s %[2]s stage %[3]s
			%[1]s %[2]s promote %[3]s
			%[1]s %[2]s rewrite %[3]s
			%[1]s %[2]s retire %[3]s

			# Undo the current stage
			%[1]s %[2]s rollback %[3]s`, name, use, how)),
		Args: cobra.NoArgs,
		Run:  func(cmd *cobra.Command, args []string) { cmd.Help() },
	}
	t.AddFlags(parent.PersistentFlags())
	for _, v := range verbs {
		o := &Options{Target: t, Verb: v.name, PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), Now: time.Now, IOStreams: streams}
		cmd := &cobra.Command{
			Use:                   v.name,
			DisableFlagsInUseLine: true,
			Short:                 v.short,
			Long:                  templates.LongDesc(v.long),
			Example:               templates.Examples(fmt.Sprintf("  %s %s %s %s", name, use, v.name, how)),
			Args:                  cobra.NoArgs,
			Run: func(cmd *cobra.Command, args []string) {
				cmdutil.CheckErr(o.Complete(cmd))
				cmdutil.CheckErr(o.Validate())
				cmdutil.CheckErr(o.Run(cmd.Context()))
			},
		}
		if v.name == "status" {
			cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: table (default), json or yaml.")
			o.PrintFlags.AddFlags(cmd)
		} else {
			t.AddActFlag(cmd)
			cmd.Flags().DurationVar(&o.LoadTimeout, "load-timeout", 3*time.Minute, "How long to wait for every kube-apiserver to apply a written configuration (they look at the file about once a minute).")
		}
		if v.name == rot.StepRewrite || v.name == "run" || v.name == "rollback" {
			cmd.Flags().IntVar(&o.Workers, "workers", 16, "Objects written back at once in the rewrite.")
			cmd.Flags().Int64Var(&o.PageSize, "page-size", 500, "Objects listed per page in the rewrite (memory is bounded by it).")
		}
		parent.AddCommand(cmd)
	}
	return parent
}

// Complete reads the flags.
func (o *Options) Complete(cmd *cobra.Command) error {
	if o.Verb == "status" {
		return nil
	}
	act, err := o.Target.Act(cmd)
	o.act = act
	return err
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if err := output.ValidateTableFormat(o.Output); err != nil {
		return err
	}
	if o.Workers < 0 || o.PageSize < 0 || o.LoadTimeout < 0 {
		return fmt.Errorf("--workers, --page-size and --load-timeout take positive values")
	}
	return nil
}

// Run runs the verb.
func (o *Options) Run(ctx context.Context) error {
	out := o.Out
	if o.Output != "" && o.Output != "table" {
		out = o.ErrOut
	}
	ro, err := o.Target.Options(ctx, o.act, out)
	if err != nil {
		return err
	}
	ro.LoadTimeout, ro.Workers, ro.PageSize = o.LoadTimeout, o.Workers, o.PageSize
	switch o.Verb {
	case "status":
		s, err := ro.Status(ctx)
		if err != nil {
			return err
		}
		if o.Output == "json" || o.Output == "yaml" {
			return output.PrintObject(o.PrintFlags, o.Output, s, o.Out)
		}
		return o.printStatus(s)
	case "rollback":
		if !o.act {
			kind, steps, err := ro.RollbackPlan(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "Would roll back the %s of %s (nothing changed):\n", kind, ro.Source)
			printSteps(o.Out, steps)
			return nil
		}
		kind, err := ro.Rollback(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Rolled back the %s of %s.\n", kind, ro.Source)
		return nil
	}
	if !o.act {
		steps, err := ro.Plan(ctx, o.Verb)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Would run (nothing changed):\n")
		printSteps(o.Out, steps)
		return nil
	}
	if _, err := ro.Run(ctx, o.Verb); err != nil {
		return err
	}
	s, err := ro.Status(ctx)
	if err != nil {
		return err
	}
	if s.Stage == "idle" {
		fmt.Fprintf(o.Out, "%s: the rotation is complete: key %s is the only key (the retired keys are kept in %s for a rollback until the next stage).\n", ro.Source, s.Key, s.RetiredKept)
		return nil
	}
	fmt.Fprintf(o.Out, "%s: %s with key %s. Next: %s\n", ro.Source, s.Stage, s.Key, s.Next)
	return nil
}

func printSteps(w io.Writer, steps []procedure.StepStatus) {
	for _, s := range steps {
		mark := "[ ]"
		if s.Done {
			mark = "[x]"
		}
		fmt.Fprintf(w, "  %s %d. %s: %s\n", mark, s.Index, s.Name, s.What)
	}
}

func (o *Options) printStatus(s *rot.Status) error {
	fmt.Fprintf(o.Out, "Configuration: %s (%s)\n", s.Source, s.Hash[:19])
	tw := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(tw, "RESOURCES\tPROVIDER\tKEY\tROLE\tAGE\tBYTES")
	for _, p := range s.Providers {
		for _, k := range p.Keys {
			role, age := "decrypts", "-"
			if k.Encrypts {
				role = "encrypts"
			}
			if k.Created != nil {
				age = kubeduration.HumanDuration(o.Now().Sub(k.Created.Time))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", strings.Join(p.Resources, ","), p.Type, k.Name, role, age, k.Bytes)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nStage: %s (key %s)\n", s.Stage, s.Key)
	switch {
	case !s.Checked:
	case len(s.Pending) == 0:
		fmt.Fprintln(o.Out, "Applied by every kube-apiserver.")
	default:
		fmt.Fprintf(o.Out, "Not yet applied by: %s\n", strings.Join(s.Pending, ", "))
	}
	if s.Stage == "promoted" {
		if s.Rewritten {
			fmt.Fprintln(o.Out, "Rewrite: completed under this configuration.")
		} else {
			fmt.Fprintln(o.Out, "Rewrite: not completed under this configuration (objects may be stored under the old keys).")
		}
	}
	for _, r := range s.Rewrite {
		fmt.Fprintf(o.Out, "  %s: %d stored again, %d written meanwhile, %d deleted meanwhile, %s\n", r.Resource, r.Rewritten, r.Conflicts, r.Gone, r.Elapsed)
	}
	if len(s.Stored) > 0 {
		fmt.Fprintln(o.Out, "Stored in etcd:")
		for _, p := range s.Providers {
			for _, k := range p.Keys {
				prefix := "k8s:enc:" + p.Type + ":v1:" + k.Name + ":"
				fmt.Fprintf(o.Out, "  %d under %s\n", s.Stored[prefix], prefix)
			}
		}
	}
	if s.RetiredKept != "" {
		fmt.Fprintf(o.Out, "Retired keys kept for a rollback of the retire in %s (removed by the next stage).\n", s.RetiredKept)
	}
	if s.Rollback != "" {
		fmt.Fprintf(o.Out, "A rollback of the %s is in progress.\n", s.Rollback)
	}
	if s.Failed != "" {
		fmt.Fprintf(o.Out, "Last failure: step %s: %s\n", s.Failed, s.Error)
	}
	fmt.Fprintf(o.Out, "Next: %s\n", s.Next)
	return nil
}
