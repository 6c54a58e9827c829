// Package status implements `kubectl rotate status`: how old every
// credential is, where that figure comes from, the limit a rotation policy
// sets, and the command that rotates it.
package status

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	uexec "k8s.io/utils/exec"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// Exit codes: ExitFailOn when --fail-on is met, ExitUnreadable when a
// cluster could not be read (it wins: the fleet's report is incomplete).
const (
	ExitFailOn     = 3
	ExitUnreadable = 4
)

// DefaultConcurrency is how many clusters a fleet scan reads at once.
const DefaultConcurrency = 4

var examples = templates.Examples(`
	# Every Secret in the current namespace: age, where the age comes from, limit, state
	kubectl rotate status

	# The whole cluster against a policy, with the rule and reason of each line
	kubectl rotate status -A --policy rotation-policy.yaml -o wide

	# In CI: exit 3 when anything is overdue or expired
	kubectl rotate status -A --policy rotation-policy.yaml --fail-on overdue

	# Without a policy file: one limit for everything
	kubectl rotate status -n diracx --max-age 30d --warn-before 7d --overlap 1d

	# kOps keysets and a key-set file kept in a repository, no cluster Secrets
	kubectl rotate status --secrets=false --kops-state s3://kops-state --name k8s.example.com --jwks-file slurm.jwks

	# For scripts: the report with ids, ages in seconds and commands
	kubectl rotate status -A -o json

	# A fleet: three contexts at once, one table with a CLUSTER column
	kubectl rotate status -A --context prod,staging,eu-1 --policy rotation-policy.yaml

	# Every context of the kubeconfig; exit 4 if one cannot be read, 3 if something is overdue
	kubectl rotate status -A --all-contexts --fail-on overdue

	# Name the cluster yourself (ids, -o json, the Action's issues) when its kubeconfig entry is generic
	kubectl rotate status -A --cluster-name prod-eu -o json`)

// Options of `kubectl rotate status`.
type Options struct {
	AllNamespaces bool
	Selector      string
	PolicyFile    string
	MaxAge        time.Duration
	WarnBefore    time.Duration
	Overlap       time.Duration
	Secrets       bool
	KopsState     string
	KopsName      string
	JWKSFiles     []string
	Output        string
	FailOn        string
	// ClusterName is the cluster's identity (one cluster).
	ClusterName string
	// AllContexts and a --context list select a fleet; Concurrency bounds
	// how many clusters are read at once.
	AllContexts bool
	Concurrency int

	PrintFlags *genericclioptions.JSONYamlPrintFlags
	Now        func() time.Time

	build   report.Options
	members []report.Member
	fleet   bool
	genericiooptions.IOStreams
}

// NewOptions returns Options with defaults.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{MaxAge: 90 * 24 * time.Hour, WarnBefore: 14 * 24 * time.Hour, Secrets: true, Concurrency: DefaultConcurrency,
		KopsState: os.Getenv("KOPS_STATE_STORE"), KopsName: os.Getenv("KOPS_CLUSTER_NAME"),
		PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), Now: time.Now, IOStreams: streams}
}

// NewCmdStatus returns the `status` command.
func NewCmdStatus(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(streams)
	cmd := &cobra.Command{
		Use:                   "status [-A | -n NAMESPACE] [-l SELECTOR] [--policy FILE] [--context A,B,C | --all-contexts] [--kops-state S --name C] [-o wide|json|yaml] [--fail-on overdue|warn]",
		DisableFlagsInUseLine: true,
		Short:                 "Show how old every credential is against a rotation policy, and the command that rotates it",
		Long: templates.LongDesc(`
			Check the age of every credential against a rotation policy: Secrets (age from
			kube-rotate's rotated-at annotation, else the newest managedFields entry that
			wrote data, else creationTimestamp as a lower bound), TLS certificates (also
			their expiry), JWKS signing keys and retiring keys past their overlap (in
			Secrets and key-set files), and kOps keysets.

			Secrets are listed in pages, metadata only; values are read only for TLS
			Secrets and key sets, and never printed.

			Every row and id names its cluster: --cluster-name, else the kubeconfig cluster
			of the context. --context a,b,c or --all-contexts checks several clusters at
			once (--concurrency at a time) in one table with a CLUSTER column; contexts of
			one kubeconfig cluster entry are read once. A cluster that cannot be read is
			one error line, and the others are still listed.

			Exit status: 0; 3 when --fail-on is met; 4 when a cluster could not be read.`),
		Example: examples,
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f, cmd))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Check Secrets in all namespaces.")
	fl.StringVarP(&o.Selector, "selector", "l", "", "Only Secrets matching this label selector.")
	fl.StringVar(&o.PolicyFile, "policy", "", "RotationPolicy file (rotate.kube-rotate.io/v1alpha1); overrides --max-age, --warn-before and --overlap.")
	fl.Var(duration.Value{D: &o.MaxAge}, "max-age", "Without --policy: the age at which a credential is overdue, e.g. 90d.")
	fl.Var(duration.Value{D: &o.WarnBefore}, "warn-before", "Without --policy: warn this long before --max-age (0: no warning).")
	fl.Var(duration.Value{D: &o.Overlap}, "overlap", "Without --policy: how long a retiring JWKS key may stay published (0: not checked).")
	fl.BoolVar(&o.Secrets, "secrets", o.Secrets, "Check the cluster's Secrets (--secrets=false: only kOps keysets and key-set files).")
	fl.StringVar(&o.KopsState, "kops-state", o.KopsState, "kOps state store whose keysets to check (default $KOPS_STATE_STORE).")
	fl.StringVar(&o.KopsName, "name", o.KopsName, "kOps cluster name, with --kops-state (default $KOPS_CLUSTER_NAME).")
	fl.StringArrayVar(&o.JWKSFiles, "jwks-file", nil, "Key-set file to check as well (repeatable).")
	fl.StringVarP(&o.Output, "output", "o", "", "Output format: wide, json or yaml.")
	fl.StringVar(&o.FailOn, "fail-on", "", "Exit 3 when a credential is overdue or expired (overdue), or also due soon or of unknown age (warn).")
	fl.StringVar(&o.ClusterName, "cluster-name", "", "Name of the cluster in ids and rows (default: the kubeconfig cluster of the context).")
	fl.BoolVar(&o.AllContexts, "all-contexts", false, "Check every context of the kubeconfig (a fleet; see --context a,b,c).")
	fl.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "With several contexts: how many clusters to read at once.")
	return cmd
}

// Complete reads the policy and builds the clients.
func (o *Options) Complete(f cmdutil.Factory, cmd *cobra.Command) error {
	var err error
	if o.PolicyFile != "" {
		for _, fl := range []string{"max-age", "warn-before", "overlap"} {
			if cmd.Flags().Changed(fl) {
				return fmt.Errorf("--%s and --policy both set limits: put the limit in the policy file's spec.default", fl)
			}
		}
		b, rerr := os.ReadFile(o.PolicyFile)
		if rerr != nil {
			return fmt.Errorf("reading the policy: %w", rerr)
		}
		if o.build.Policy, err = policy.Parse(b); err != nil {
			return fmt.Errorf("%s: %w", o.PolicyFile, err)
		}
		o.build.PolicyName = o.PolicyFile
	} else {
		if o.build.Policy, err = policy.Default(o.MaxAge, o.WarnBefore, o.Overlap); err != nil {
			return err
		}
		o.build.PolicyName = "--max-age " + duration.Format(o.MaxAge)
		if o.WarnBefore > 0 {
			o.build.PolicyName += " --warn-before " + duration.Format(o.WarnBefore)
		}
		if o.Overlap > 0 {
			o.build.PolicyName += " --overlap " + duration.Format(o.Overlap)
		}
	}
	stateGiven, nameGiven := cmd.Flags().Changed("kops-state"), cmd.Flags().Changed("name")
	switch {
	case o.KopsState != "" && o.KopsName != "":
		o.build.KopsState, o.build.KopsCluster = o.KopsState, o.KopsName
	case stateGiven && o.KopsState != "":
		return errors.New("--kops-state needs the cluster: pass --name or set KOPS_CLUSTER_NAME")
	case nameGiven && o.KopsName != "":
		return errors.New("--name needs the kOps state store: pass --kops-state or set KOPS_STATE_STORE")
	case o.KopsState != "":
		fmt.Fprintln(o.ErrOut, "note: KOPS_STATE_STORE is set but no cluster name: kOps keysets are not checked (pass --name)")
	}
	o.build.JWKSFiles = o.JWKSFiles
	contextFlag := flagValue(cmd, "context")
	o.fleet = o.AllContexts || strings.Contains(contextFlag, ",")
	if !o.Secrets {
		if o.fleet || o.ClusterName != "" {
			return errors.New("--secrets=false checks no cluster: drop --context lists, --all-contexts and --cluster-name")
		}
		return nil
	}
	if o.fleet {
		return o.completeFleet(f, cmd, contextFlag)
	}
	clients, err := kube.NewClients(f)
	if err != nil {
		return err
	}
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building a metadata client: %w", err)
	}
	o.build.Kube, o.build.Metadata, o.build.Selector = clients.Kube, md, o.Selector
	if !o.AllNamespaces {
		o.build.Namespace = clients.Namespace
	}
	t, err := kube.TargetFor(f, o.ClusterName)
	if err != nil {
		return err
	}
	o.build.Cluster, o.build.Context, o.build.Server = t.Cluster, t.Context, t.Server
	return nil
}

// completeFleet builds one member per cluster of --context a,b,c or
// --all-contexts.
func (o *Options) completeFleet(f cmdutil.Factory, cmd *cobra.Command, contextFlag string) error {
	if o.AllContexts && contextFlag != "" {
		return errors.New("--all-contexts and --context both select contexts: give one of them")
	}
	if o.ClusterName != "" {
		return errors.New("--cluster-name names one cluster, but several contexts are selected: each context's kubeconfig cluster name is used")
	}
	for _, fl := range []string{"server", "cluster", "user", "token", "as", "certificate-authority", "client-certificate", "client-key", "username", "password"} {
		if flagValue(cmd, fl) != "" {
			return fmt.Errorf("--%s applies to one cluster, but several contexts are selected: put it in each context of the kubeconfig", fl)
		}
	}
	raw, err := f.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	var names []string
	for _, n := range strings.Split(contextFlag, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	members, err := kube.SelectContexts(raw, names, o.AllContexts)
	if err != nil {
		return err
	}
	nsFlag := flagValue(cmd, "namespace")
	qps, burst := float32(kube.DefaultQPS), kube.DefaultBurst
	if v, err := cmd.Flags().GetFloat32("kube-api-qps"); err == nil {
		qps = v
	}
	if v, err := cmd.Flags().GetInt("kube-api-burst"); err == nil {
		burst = v
	}
	var timeout time.Duration
	if v := flagValue(cmd, "request-timeout"); v != "" && v != "0" {
		if timeout, err = time.ParseDuration(v); err != nil {
			if n, nerr := strconv.Atoi(v); nerr == nil {
				timeout, err = time.Duration(n)*time.Second, nil
			} else {
				return fmt.Errorf("--request-timeout %q: use a duration such as 30s", v)
			}
		}
	}
	for _, m := range members {
		cfg, err := kube.RESTConfigFor(raw, m.Context, qps, burst, timeout)
		if err != nil {
			return err
		}
		rm := report.Member{Name: m.Cluster, Context: m.Context, Server: m.Server, AlsoContexts: m.Also, CommandContext: m.Context}
		if rm.Kube, err = kubernetes.NewForConfig(cfg); err == nil {
			rm.Metadata, err = metadata.NewForConfig(cfg)
		}
		if err != nil {
			return fmt.Errorf("context %s: building a client: %w", m.Context, err)
		}
		switch {
		case o.AllNamespaces:
		case nsFlag != "":
			rm.Namespace = nsFlag
		default:
			rm.Namespace = "default"
			if c := raw.Contexts[m.Context]; c != nil && c.Namespace != "" {
				rm.Namespace = c.Namespace
			}
		}
		o.members = append(o.members, rm)
	}
	o.build.Selector = o.Selector
	return nil
}

// flagValue is the value of a flag of the command or its parents ("" when
// it has none).
func flagValue(cmd *cobra.Command, name string) string {
	if fl := cmd.Flags().Lookup(name); fl != nil {
		return fl.Value.String()
	}
	return ""
}

// Validate checks the flags.
func (o *Options) Validate() error {
	switch o.Output {
	case "", "wide", "json", "yaml":
	default:
		return fmt.Errorf("--output %q is not supported: use wide, json or yaml", o.Output)
	}
	switch o.FailOn {
	case "", "overdue", "warn":
	default:
		return fmt.Errorf("--fail-on %q is not supported: use overdue or warn", o.FailOn)
	}
	if o.Concurrency < 1 {
		return fmt.Errorf("--concurrency must be at least 1, got %d", o.Concurrency)
	}
	if !o.Secrets && o.build.KopsCluster == "" && len(o.JWKSFiles) == 0 {
		return errors.New("nothing to check: --secrets=false needs --kops-state/--name or --jwks-file")
	}
	return nil
}

// Run builds the report, prints it, and fails with ExitFailOn when
// --fail-on is met.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	o.build.Now = o.Now()
	var r *report.Report
	var err error
	if o.fleet {
		r, err = report.BuildFleet(ctx, o.build, o.members, o.Concurrency)
	} else {
		r, err = report.Build(ctx, o.build)
	}
	if err != nil {
		return err
	}
	switch o.Output {
	case "json", "yaml":
		if err := output.PrintObject(o.PrintFlags, o.Output, r, o.Out); err != nil {
			return err
		}
	default:
		if err := PrintTable(o.Out, r, o.Output == "wide", o.fleet); err != nil {
			return err
		}
		s := r.Summary
		clusters := ""
		if o.fleet {
			clusters = fmt.Sprintf(" in %d of %d clusters", len(r.Clusters)-len(r.Errors), len(r.Clusters))
		}
		fmt.Fprintf(o.ErrOut, "%d credentials%s: %d ok, %d warn, %d overdue, %d expired, %d unknown (policy: %s)\n",
			s.Total, clusters, s.OK, s.Warn, s.Overdue, s.Expired, s.Unknown, r.Policy)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(o.ErrOut, "error: "+e)
	}
	failing := o.FailOn != "" && r.Failing(o.FailOn)
	if len(r.Errors) > 0 {
		msg := fmt.Sprintf("%d of %d clusters could not be read", len(r.Errors), len(r.Clusters))
		if failing {
			msg += "; credentials of the others are past the policy (--fail-on " + o.FailOn + ")"
		}
		return uexec.CodeExitError{Err: errors.New(msg), Code: ExitUnreadable}
	}
	if failing {
		n := r.Summary.Overdue + r.Summary.Expired
		what := "overdue or expired"
		if o.FailOn == "warn" {
			n += r.Summary.Warn + r.Summary.Unknown
			what = "overdue, expired, due soon or of unknown age"
		}
		return uexec.CodeExitError{Err: fmt.Errorf("%d credentials %s (--fail-on %s)", n, what, o.FailOn), Code: ExitFailOn}
	}
	return nil
}

// PrintTable prints the report as a table; wide adds the rule, the
// reason and when the value was set; wide or clusters adds the CLUSTER
// column first.
func PrintTable(w io.Writer, r *report.Report, wide, clusters bool) error {
	if len(r.Items) == 0 {
		_, err := fmt.Fprintln(w, "No credentials found.")
		return err
	}
	// One write per 64 KiB, not per cell: for 10,000 rows the unbuffered
	// table made 176,723 write calls, a fifth of the scan's CPU (make
	// bench, fleet profile).
	bw := bufio.NewWriterSize(w, 64<<10)
	tw := printers.GetNewTabWriter(bw)
	head := "CREDENTIAL\tKIND\tAGE\tSOURCE\tLIMIT\tSTATE\tROTATE"
	clusters = clusters || wide
	if clusters {
		head = "CLUSTER\t" + head
	}
	if wide {
		head += "\tRULE\tSINCE\tREASON"
	}
	fmt.Fprintln(tw, head)
	for _, it := range r.Items {
		age := it.Age
		if it.Since == nil {
			age = "<unknown>"
		}
		source := it.AgeSource
		if source == "" {
			source = "-"
		}
		cmd := "-"
		if len(it.Commands) > 0 {
			cmd = strings.Join(it.Commands, " && ")
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", it.Credential, it.Kind, age, source, it.MaxAge, it.State, cmd)
		if clusters {
			c := it.Cluster
			if c == "" {
				c = "-"
			}
			line = c + "\t" + line
		}
		if wide {
			since := "-"
			if it.Since != nil {
				since = it.Since.Format(time.RFC3339)
			}
			reason := it.Reason
			if reason == "" {
				reason = "-"
			}
			line += fmt.Sprintf("\t%s\t%s\t%s", it.Rule, since, reason)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}
