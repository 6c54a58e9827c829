// Package ciliumipsec implements `kops-rotate cilium-ipsec-key` (alias
// ciliumpassword): the rotation of a kOps cluster's Cilium IPsec key as
// kOps' docs/operations/rotate-secrets.md and Cilium's "Key Rotation"
// describe it: the next key in the ciliumpassword secret, then kops
// update cluster --yes and kops rolling-update cluster --yes. The rules
// and the files that set them are documented on kops.CiliumPasswordSecret
// and in pkg/model/ciliumipsec.
package ciliumipsec

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/kopsrotate/clusterflags"
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops"
)

// Kind is the -o json|yaml record's kind.
const Kind = "CiliumIPsecKeyRotation"

// Report is the -o json|yaml form: where the rotation stands (or what it
// did), without key bytes.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Cluster         string `json:"cluster"`
	StateStore      string `json:"stateStore"`
	// DryRun says nothing was changed (no --yes).
	DryRun               bool `json:"dryRun,omitempty"`
	kops.CiliumIPsecPlan `json:",inline"`
}

// DeepCopyObject implements runtime.Object.
func (r *Report) DeepCopyObject() runtime.Object {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	out := &Report{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

// Options of `kops-rotate cilium-ipsec-key`.
type Options struct {
	Cluster    *clusterflags.Flags
	Yes        bool
	Output     string
	PrintFlags *genericclioptions.JSONYamlPrintFlags
	// Name is how the tool is run, for the commands it suggests.
	Name string
	// Runner runs the kops CLI; nil means kops from PATH.
	Runner kops.Runner
	// KopsVersion reports the kops CLI's version; nil means kops from PATH.
	KopsVersion func(context.Context) (string, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the key source; nil means crypto/rand.
	Rand io.Reader

	progress io.Writer
	genericiooptions.IOStreams
}

// NewCmd returns the `cilium-ipsec-key` command.
func NewCmd(name string, cluster *clusterflags.Flags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Cluster: cluster, PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), Name: name, IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "cilium-ipsec-key [--yes] [-o json|yaml]",
		Aliases:               []string{"ciliumpassword"},
		DisableFlagsInUseLine: true,
		Short:                 "Rotate the Cilium IPsec key (the ciliumpassword secret): next key id, kops update cluster, kops rolling-update cluster",
		Long: templates.LongDesc(`
			Rotate the cluster's Cilium IPsec key as kOps and Cilium document it. The
			state store's ciliumpassword secret (what kops create secret ciliumpassword
			wrote; kOps deploys it as the kube-system Secret cilium-ipsec-keys) gets a new
			key line with the next key id (1 to 15, 15 wraps to 1), the same algorithm,
			key length, ICV length and "+" (per-tunnel keys), and new random key bytes.
			Then kops update cluster --yes applies the Cilium addon with it, and kops
			rolling-update cluster --yes replaces the nodes the addon update marks. Cilium
			agents load the new key from their mounted Secret and drop the old one
			ipsec-key-rotation-duration (kOps sets 5m) later.

			The key is written through kOps' secret store, never on a command line, and
			never printed. Each step is recorded in the state store
			(backups/kops-rotate/cilium-ipsec.yaml under the cluster's config base, which
			kops delete cluster accepts), so a re-run after a failure resumes where it
			stopped and never writes a second key; once every step is done, the next run
			starts the next rotation. Without --yes it prints what it would do and changes
			nothing.`),
		Example: templates.Examples(fmt.Sprintf(`
			# What the rotation would do: current key id -> next, and the kops commands
			%[1]s cilium-ipsec-key --name k8s.example.com --state s3://kops-state

			# Rotate: write the next key, kops update cluster --yes, kops rolling-update cluster --yes
			# (re-run the same command after any failure to resume)
			%[1]s cilium-ipsec-key --yes --name k8s.example.com --state s3://kops-state

			# The same, with kOps' name for the secret, and the record as JSON
			%[1]s ciliumpassword --yes -o json`, name)),
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(cmd, args))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "Write the new key and run kops update cluster --yes and kops rolling-update cluster --yes (default: print what would be done).")
	output.AddOutputFlag(cmd, o.PrintFlags, &o.Output)
	return cmd
}

// Complete fills in the defaults: kops from PATH, the clock, where
// progress goes.
func (o *Options) Complete(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("cilium-ipsec-key takes no arguments (got %q): the cluster is --name, the state store --state", strings.Join(args, " "))
	}
	o.progress = output.Progress(o.IOStreams, o.Output)
	if o.Runner == nil {
		// kops' own output goes where the progress goes, so -o keeps stdout for the record.
		o.Runner = kops.ExecRunner(o.progress, o.ErrOut)
	}
	if o.KopsVersion == nil {
		o.KopsVersion = kops.ExecKopsVersion
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if err := output.ValidateFormat(o.Output); err != nil {
		return err
	}
	if o.Cluster == nil {
		return fmt.Errorf("internal: no cluster flags")
	}
	return nil
}

// Run prints the plan, or with --yes rotates.
func (o *Options) Run(ctx context.Context) error {
	s, err := o.Cluster.Open(ctx)
	if err != nil {
		return err
	}
	if !o.Yes {
		p, err := s.CiliumIPsecStatus(ctx)
		if err != nil {
			return err
		}
		if o.Output != "" {
			return o.print(s, p, true)
		}
		o.plan(s, p)
		return nil
	}
	p, err := s.CiliumIPsecStatus(ctx)
	if err != nil {
		return err
	}
	if p.Resuming {
		fmt.Fprintf(o.progress, "Resuming the Cilium IPsec key rotation of cluster %s: key id %d -> %d, started %s (record %s).\n", s.Cluster, p.FromSPI, p.ToSPI, p.Started.UTC().Format(time.RFC3339), p.Record)
	} else {
		fmt.Fprintf(o.progress, "Rotating the Cilium IPsec key of cluster %s: key id %d -> %d.\n", s.Cluster, p.FromSPI, p.ToSPI)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(o.progress, "Note: %s.\n", n)
	}
	p, err = s.RunCiliumIPsecRotation(ctx, kops.CiliumIPsecOptions{Yes: true, Runner: o.Runner, Out: o.progress, Now: o.Now, Rand: o.Rand, KopsVersion: o.KopsVersion})
	if err != nil {
		return err
	}
	if o.Output != "" {
		return o.print(s, p, false)
	}
	fmt.Fprintf(o.Out, "Cilium IPsec key rotated: key id %d -> %d; kops update cluster and kops rolling-update cluster ran.\n"+
		"Each cilium-agent loads the new key when the kubelet refreshes /etc/ipsec/keys (about a minute) and removes\n"+
		"the old one ipsec-key-rotation-duration (5m) later. Check with:\n"+
		"  kubectl -n kube-system exec ds/cilium -- cilium-dbg encrypt status\n", p.FromSPI, p.ToSPI)
	return nil
}

// plan prints what a run would do.
func (o *Options) plan(s *kops.Store, p *kops.CiliumIPsecPlan) {
	fmt.Fprintf(o.Out, "Cilium IPsec key of cluster %s (state-store secret %s): key id %d, %s.\n", s.Cluster, kops.CiliumPasswordSecret, p.CurrentSPI, p.Key)
	for _, n := range p.Notes {
		fmt.Fprintf(o.Out, "Note: %s.\n", n)
	}
	if p.Resuming {
		fmt.Fprintf(o.Out, "A rotation is unfinished: key id %d -> %d, started %s (record %s). The key is written; still to run:\n", p.FromSPI, p.ToSPI, p.Started.UTC().Format(time.RFC3339), p.Record)
	} else {
		fmt.Fprintf(o.Out, "Rotation: key id %d -> %d. Steps (nothing was changed; add --yes to run them):\n", p.FromSPI, p.ToSPI)
	}
	for _, st := range p.Steps {
		if st.Done != nil {
			fmt.Fprintf(o.Out, "  done %s  %s\n", st.Done.UTC().Format(time.RFC3339), st.Command)
			continue
		}
		fmt.Fprintf(o.Out, "  %s\n", st.Command)
	}
	if p.Resuming {
		fmt.Fprintf(o.Out, "Go on with:\n  %s cilium-ipsec-key --yes --name %s --state %s\n", o.Name, s.Cluster, s.StateStore)
	}
}

func (o *Options) print(s *kops.Store, p *kops.CiliumIPsecPlan, dry bool) error {
	rep := &Report{TypeMeta: v1alpha1.TypeMeta(Kind), Cluster: s.Cluster, StateStore: s.StateStore, DryRun: dry, CiliumIPsecPlan: *p}
	return output.PrintObject(o.PrintFlags, o.Output, rep, o.Out)
}
