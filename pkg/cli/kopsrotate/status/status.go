// Package status implements `kops-rotate status`: every rotatable keyset
// with its primary, staged and distrusted keypairs, the stage of the whole
// procedure, the next commands and the rollback.
package status

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeduration "k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Report is the -o json|yaml form: a KeysetRotationStatus.
type Report = v1alpha1.KeysetRotationStatus

// Options of `kops-rotate status`.
type Options struct {
	Cluster    *clusterflags.Flags
	Output     string
	PrintFlags *genericclioptions.JSONYamlPrintFlags
	Now        func() time.Time
	genericiooptions.IOStreams
}

// NewCmdStatus returns the `status` command.
func NewCmdStatus(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Cluster: cluster, PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), Now: time.Now, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "status [KEYSET...]",
		DisableFlagsInUseLine: true,
		Short:                 "Show each rotatable keyset, the stage of the procedure, the next commands and the rollback",
		Example: templates.Examples(fmt.Sprintf(`
			# Where the rotation stands, worked out from the keysets themselves
			%[1]s status --name k8s.example.com --state s3://kops-state

			# One keyset, as JSON
			%[1]s status kubernetes-ca -o json`, name)),
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(output.ValidateTableFormat(o.Output))
			cmdutil.CheckErr(o.Run(cmd.Context(), args))
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: table (default), json or yaml.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Run prints the status.
func (o *Options) Run(ctx context.Context, names []string) error {
	s, err := o.Cluster.Open(ctx)
	if err != nil {
		return err
	}
	sts, err := s.Status(ctx, names)
	if err != nil {
		return err
	}
	rec, err := s.ReadRecord(ctx)
	if err != nil {
		return err
	}
	stage := kops.Overall(sts)
	rep := &Report{TypeMeta: v1alpha1.TypeMeta(v1alpha1.KindKeysetRotationStatus),
		Cluster: o.Cluster.Name, StateStore: o.Cluster.State, Stage: string(stage), Keysets: apiKeysets(sts),
		Rollback: rec.CLI.RollbackCommands(ctx, stage, o.Cluster.Name, o.Cluster.State)}
	if len(rec.Done) > 0 {
		rep.Record = apiRecord(rec)
	}
	rep.Next = kops.NextCommands(ctx, stage, rec, o.Cluster.Name, o.Cluster.State)
	if o.Output == "json" || o.Output == "yaml" {
		return output.PrintObject(o.PrintFlags, o.Output, rep, o.Out)
	}
	tw := printers.GetNewTabWriter(o.Out)
	fmt.Fprintln(tw, "KEYSET\tSTAGE\tPRIMARY\tPRIMARY AGE\tPRIMARY EXPIRES\tSTAGED\tPREVIOUS\tDISTRUSTED\tTRUST-ONLY")
	for _, st := range sts {
		expires := "-"
		if st.Primary.NotAfter != nil {
			expires = st.Primary.NotAfter.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", st.Name, st.Stage, st.Primary.ID,
			kubeduration.HumanDuration(o.Now().Sub(st.Primary.Created)), expires, len(st.Staged), len(st.Previous), len(st.Distrusted), len(st.TrustOnly))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nProcedure stage: %s\n", stage)
	var byHand []string
	for _, st := range sts {
		if st.DistrustedByHand {
			byHand = append(byHand, st.Name)
		}
	}
	if len(byHand) > 0 {
		fmt.Fprintf(o.Out, "Distrusted by hand (no kops-rotate journal for these keys): %s. If kops update cluster, rolling-update and export ran after it, that rotation is over; if not, `run --yes` runs them.\n", strings.Join(byHand, ", "))
	}
	if rec.Waiting != "" {
		fmt.Fprintf(o.Out, "Waiting for a person: %s (`run --yes` printed what to do; re-run it with --done %s once it is done)\n", rec.Waiting, rec.Waiting)
	}
	if len(rep.Next) > 0 {
		fmt.Fprintf(o.Out, "Next:\n  %s\n", strings.Join(rep.Next, "\n  "))
	}
	if len(rep.Rollback) > 0 {
		fmt.Fprintf(o.Out, "Rollback of this stage:\n  %s\n", strings.Join(rep.Rollback, "\n  "))
	}
	return nil
}

// apiKeysets converts the model's keyset stages to the printed form.
func apiKeysets(sts []kops.KeysetStatus) []v1alpha1.Keyset {
	out := make([]v1alpha1.Keyset, 0, len(sts))
	for _, st := range sts {
		out = append(out, v1alpha1.Keyset{Name: st.Name, Primary: apiKeypair(st.Primary), Staged: apiKeypairs(st.Staged),
			Previous: apiKeypairs(st.Previous), Distrusted: apiKeypairs(st.Distrusted), TrustOnly: apiKeypairs(st.TrustOnly), Stage: string(st.Stage)})
	}
	return out
}

func apiKeypairs(items []kops.Item) []v1alpha1.KeysetKeypair {
	if items == nil {
		return nil
	}
	out := make([]v1alpha1.KeysetKeypair, 0, len(items))
	for _, it := range items {
		out = append(out, apiKeypair(it))
	}
	return out
}

func apiKeypair(it kops.Item) v1alpha1.KeysetKeypair {
	return v1alpha1.KeysetKeypair{ID: it.ID, Created: metav1.NewTime(it.Created), Distrusted: v1alpha1.TimePtr(it.Distrusted), NotAfter: v1alpha1.TimePtr(it.NotAfter), Fingerprint: it.Fingerprint}
}

// apiRecord converts the journal's steps done to the printed form.
func apiRecord(r *kops.Record) *v1alpha1.KeysetRotationRecord {
	out := &v1alpha1.KeysetRotationRecord{Started: v1alpha1.TimePtr(r.Started), Done: map[string]metav1.Time{}, Waiting: r.Waiting}
	for step, t := range r.Done {
		out.Done[step] = metav1.NewTime(t)
	}
	return out
}
