// Package secret implements `kubectl rotate secret`: staged rotation of
// Secret values with consumer restarts.
package secret

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	rotatesecret "github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

var (
	long = templates.LongDesc(`
		Rotate values of one or more Secrets as a staged procedure: plan, keep the
		previous values in NAME-previous, write the new values (guarded by the
		resourceVersion read), restart each workload that reads a changed key once,
		and wait until every rollout completes. Values are never printed, logged,
		annotated or taken from the command line: fingerprints (short sha256
		prefixes) stand in for them.

		A run interrupted after the values were written resumes on re-run at the first
		step not done (the restarts not yet done, then the wait) instead of rotating
		again: a workload the journal on the Secret says was restarted for these
		values is not restarted twice. Undo with 'kubectl rotate undo', drop
		the previous values with 'kubectl rotate finish'.`)

	examples = templates.Examples(`
		# New random auth state key (32 random bytes, base64), restart its users
		kubectl rotate secret diracx-dynamic-secrets --key DIRACX_SERVICE_AUTH_STATE_KEY --generate random:32

		# See the plan first: keys, fingerprints, consumers, undo command
		kubectl rotate secret diracx-dynamic-secrets --key DIRACX_SERVICE_AUTH_STATE_KEY --generate random:32 --dry-run=client

		# One new password in every SQL connection URL; nothing else in the URLs changes
		kubectl rotate secret diracx-sql-connection-urls --url-password DIRACX_DB_URL_AUTHDB,DIRACX_DB_URL_JOBDB

		# A value you set elsewhere first (read from a file or stdin, never an argument)
		kubectl rotate secret diracx-sql-connection-urls --url-password DIRACX_DB_URL_AUTHDB --password-from-file ./new-db-password
		vault read -field=key secret/app | kubectl rotate secret app-secrets --from-stdin API_KEY

		# One field of a JSON value: the S3 secret key, and the password inside OpenSearch "hosts"
		kubectl rotate secret diracx-secrets --json-field DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS:aws_secret_access_key:password:40 --from-file-field DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS:aws_access_key_id=./new-key-id
		kubectl rotate secret diracx-os-connection-urls --json-field DIRACX_OS_DB_JOBPARAMETERSDB:hosts:url-password

		# DiracX legacy exchange key: store sha256(token) here, hand the token over once in a 0600 file
		kubectl rotate secret diracx-secrets --hashed DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY --deliver file:./legacy-api-key --deliver-format 'diracx:legacy:{{.Base64URL}}'

		# Deepdesk: the new account secret is in Secret Manager; keep the old one as the
		# back-compat copy, make External Secrets sync now, restart the services
		kubectl rotate secret admin-secrets -n acme --force-sync

		# The same, with the new value made here and pushed to the store by the operator
		# (a PushSecret the command owns; kube-rotate never needs the store's credentials)
		kubectl rotate secret admin-secrets -n acme --force-sync --push ADMIN_ACCOUNT_SECRET=hex:32

		# Every namespace a ClusterExternalSecret provisioned, each consumer restarted once
		kubectl rotate secret clusterexternalsecret/registry-credentials --force-sync

		# Several Secrets at once: all writes first, one restart per workload, then the waits
		kubectl rotate secret -l app.kubernetes.io/part-of=diracx --key token --generate hex:32 --undo-on-failure`)
)

// Options of `kubectl rotate secret`.
type Options struct {
	Names    []string
	Selector string

	Keys             []string
	Generate         string
	FromFile         []string
	FromStdin        string
	URLPassword      []string
	PasswordSpec     string
	PasswordFromFile string
	JSONFields       []string
	FromFileField    []string
	Hashed           string
	TokenBytes       int
	Deliver          string
	DeliverFormat    string

	CreateKey       bool
	NoKeepPrevious  bool
	ReplacePrevious bool
	PreviousTTL     time.Duration
	Restart         string
	RestartTargets  []string
	Timeout         time.Duration
	UndoOnFailure   bool
	ForceSync       bool
	Push            []string

	// clusterExternalSecret is NAME of a clusterexternalsecret/NAME argument.
	clusterExternalSecret string
	pushChanges           []rotatesecret.Change

	PrintFlags *genericclioptions.JSONYamlPrintFlags
	Output     string
	DryRun     rotatesecret.DryRun

	clients *kube.Clients
	changes []rotatesecret.Change
	hashed  *hashedToken
	targets []consumers.Workload
	genericiooptions.IOStreams
}

// NewOptions returns Options with defaults.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{
		PreviousTTL:   rotatesecret.DefaultPrevious,
		Restart:       "rollout",
		Timeout:       consumers.DefaultTimeout,
		PasswordSpec:  "password:32",
		TokenBytes:    values.DefaultTokenBytes,
		DeliverFormat: defaultDeliverFormat,
		PrintFlags:    genericclioptions.NewJSONYamlPrintFlags(),
		IOStreams:     streams,
	}
}

// NewCmdSecret returns the `secret` command.
func NewCmdSecret(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(streams)
	cmd := &cobra.Command{
		Use:                   "secret (NAME... | -l SELECTOR) [flags]",
		ValidArgsFunction:     completion.ResourceNameCompletionFunc(f, "secret"),
		DisableFlagsInUseLine: true,
		Short:                 "Rotate Secret values: keep the previous ones, restart only consumers, wait until healthy",
		Long:                  long,
		Example:               examples,
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f, cmd, args))
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run(cmd.Context()))
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Selector, "selector", "l", o.Selector, "Rotate every Secret matching this label selector (companions excluded).")
	fl.StringArrayVar(&o.Keys, "key", nil, "Key to give a new generated value (repeatable); needs --generate.")
	fl.StringVar(&o.Generate, "generate", "", "Generator for --key values: "+values.SpecHelp+".")
	fl.StringArrayVar(&o.FromFile, "from-file", nil, "KEY=PATH: new value of KEY read from a file (repeatable).")
	fl.StringVar(&o.FromStdin, "from-stdin", "", "KEY: new value of KEY read from standard input.")
	fl.StringSliceVar(&o.URLPassword, "url-password", nil, "Keys holding connection URLs (scheme://user:PASSWORD@host/...); one new password replaces the password part of all of them.")
	fl.StringVar(&o.PasswordSpec, "password-generate", o.PasswordSpec, "Generator of the new password for --url-password and json-field url-password.")
	fl.StringVar(&o.PasswordFromFile, "password-from-file", "", "Read the new password for --url-password from this file instead of generating it.")
	fl.StringArrayVar(&o.JSONFields, "json-field", nil, "KEY:FIELD[:SPEC]: replace one top-level string field of a JSON value (repeatable); SPEC is a generator (default password:32) or url-password.")
	fl.StringArrayVar(&o.FromFileField, "from-file-field", nil, "KEY:FIELD=PATH: set one JSON field of KEY to the content of a file (repeatable).")
	fl.StringVar(&o.Hashed, "hashed", "", "KEY: generate a token, store its sha256 (hex) in KEY and deliver the token once with --deliver.")
	fl.IntVar(&o.TokenBytes, "token-bytes", o.TokenBytes, "Random bytes in a --hashed token.")
	fl.StringVar(&o.Deliver, "deliver", "", "Where the --hashed token goes, once: file:PATH (created 0600, must not exist) or secret:NAME:KEY (another Secret in the namespace).")
	fl.StringVar(&o.DeliverFormat, "deliver-format", o.DeliverFormat, "Template of the delivered token: .Base64URL, .Base64URLRaw, .Base64, .Hex (e.g. 'diracx:legacy:{{.Base64URL}}').")
	fl.BoolVar(&o.CreateKey, "create-key", false, "Allow changing keys the Secret does not have yet.")
	fl.BoolVar(&o.NoKeepPrevious, "no-keep-previous", false, "Do not keep the previous values in NAME-previous (no undo).")
	fl.BoolVar(&o.ReplacePrevious, "replace-previous", false, "Replace NAME-previous even when it still holds the values of an earlier rotation that was not finished and has not expired (refused otherwise: those values would be lost).")
	fl.Var(duration.Value{D: &o.PreviousTTL}, "previous-ttl", "How long the previous values are meant to be kept (recorded as expires-at), e.g. 7d, 36h.")
	fl.StringVar(&o.Restart, "restart", o.Restart, "rollout: restart consumers and wait; none: only write the values.")
	fl.StringArrayVar(&o.RestartTargets, "restart-target", nil, "KIND/NAME of another workload to restart as well (deployment/x, statefulset/y, daemonset/z).")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each rollout.")
	fl.BoolVar(&o.UndoOnFailure, "undo-on-failure", false, "If a rollout fails, restore the previous values and restart again.")
	fl.BoolVar(&o.ForceSync, "force-sync", false, "For Secrets written by ExternalSecrets (NAME..., -l SELECTOR, or clusterexternalsecret/NAME for every namespace it provisioned): keep the current values in NAME-previous, set force-sync, wait until the operator changes the data, restart each consumer once.")
	fl.StringArrayVar(&o.Push, "push", nil, "KEY=GENERATOR with --force-sync: make a new value of KEY ("+values.SpecHelp+") and have the External Secrets operator push it to the store as a new version (a PushSecret this command owns) before the sync (repeatable).")
	cmdutil.AddDryRunFlag(cmd)
	output.AddOutputFlag(cmd, o.PrintFlags, &o.Output)
	return cmd
}

// Complete reads the flags, builds the clients, parses --restart-target
// and makes the changes: files and stdin read, values generated.
func (o *Options) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Names = args
	dr, err := cmdutil.GetDryRunStrategy(cmd)
	if err != nil {
		return err
	}
	o.DryRun = output.DryRun(dr)
	if o.clients, err = kube.NewClients(f); err != nil {
		return err
	}
	for _, t := range o.RestartTargets {
		w, err := parseTarget(t, o.clients.Namespace)
		if err != nil {
			return err
		}
		o.targets = append(o.targets, w)
	}
	if o.ForceSync {
		// The values come from the secret store, or are pushed there;
		// Validate refuses value flags.
		var names []string
		for _, n := range o.Names {
			if kind, name, ok := strings.Cut(n, "/"); ok {
				switch strings.ToLower(kind) {
				case "clusterexternalsecret", "clusterexternalsecrets", "ces", "clusterexternalsecret.external-secrets.io":
					if o.clusterExternalSecret != "" || name == "" {
						return fmt.Errorf("%q: name one clusterexternalsecret/NAME", n)
					}
					o.clusterExternalSecret = name
					continue
				case "secret", "secrets":
					n = name
				default:
					return fmt.Errorf("%q: --force-sync takes Secret names or clusterexternalsecret/NAME", n)
				}
			}
			names = append(names, n)
		}
		o.Names = names
		o.pushChanges, err = pushChanges(o.Push)
		return err
	}
	if len(o.Push) > 0 {
		return errors.New("--push KEY=GENERATOR goes with --force-sync: it has the External Secrets operator write the new value to the store")
	}
	// Files and stdin are read and values generated here, before any API
	// call; Validate only checks what this made.
	o.changes, o.hashed, err = buildChanges(o)
	return err
}

// Validate checks the flags and the changes Complete made; it reads and
// writes nothing.
func (o *Options) Validate() error {
	if len(o.Names) > 0 && o.Selector != "" {
		return errors.New("give Secret names or -l SELECTOR, not both")
	}
	if o.clusterExternalSecret != "" && (len(o.Names) > 0 || o.Selector != "") {
		return fmt.Errorf("clusterexternalsecret/%s syncs every Secret it makes: give no Secret names or -l with it", o.clusterExternalSecret)
	}
	if len(o.Names) == 0 && o.Selector == "" && o.clusterExternalSecret == "" {
		return errors.New("name the Secrets to rotate, or select them with -l SELECTOR")
	}
	if err := output.ValidateFormat(o.Output); err != nil {
		return err
	}
	if o.Restart != "rollout" && o.Restart != "none" {
		return fmt.Errorf("--restart %q is not supported: use rollout or none", o.Restart)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	if len(o.RestartTargets) > 0 && o.Restart == "none" {
		return errors.New("--restart-target restarts workloads, --restart=none restarts none: drop one of them")
	}
	if o.ForceSync {
		if len(o.pushChanges) > 0 && len(o.Names) != 1 {
			return errors.New("--push makes the new value of one Secret: name exactly one Secret with it")
		}
		if len(o.Keys)+len(o.FromFile)+len(o.URLPassword)+len(o.JSONFields)+len(o.FromFileField) > 0 || o.FromStdin != "" || o.Hashed != "" || o.Generate != "" {
			return errors.New("--force-sync takes no value flags: the new value comes from the secret store behind the ExternalSecret")
		}
		return nil
	}
	if len(o.changes) == 0 {
		return errors.New("nothing to change: give --key with --generate, --from-file, --from-stdin, --url-password, --json-field or --hashed")
	}
	seen := map[string]bool{}
	for _, c := range o.changes {
		if seen[c.Key] {
			return fmt.Errorf("key %s is given twice: change each key with one flag", c.Key)
		}
		seen[c.Key] = true
	}
	return nil
}

// Run rotates.
func (o *Options) Run(ctx context.Context) error {
	var names []string
	var err error
	if o.clusterExternalSecret == "" {
		if names, err = o.resolveNames(ctx); err != nil {
			return err
		}
	}
	progress := output.Progress(o.IOStreams, o.Output)
	if o.hashed != nil && len(names) != 1 {
		return errors.New("--hashed delivers one token: rotate one Secret at a time")
	}
	ro := rotatesecret.Options{
		Namespace: o.clients.Namespace, Secrets: names, Changes: o.changes,
		CreateKeys: o.CreateKey, KeepPrevious: !o.NoKeepPrevious, PreviousTTL: o.PreviousTTL, ReplacePrevious: o.ReplacePrevious,
		Restart: o.Restart == "rollout", ExtraTargets: o.targets, Timeout: o.Timeout,
		UndoOnFailure: o.UndoOnFailure, DryRun: o.DryRun, By: kube.WhoAmI(ctx, o.clients.Kube),
		Progress: progress, Method: o.method(), On: o.clients.Target.String(),
	}
	if o.ForceSync {
		ro.Changes = o.pushChanges
		res, err := rotatesecret.ForceSync(ctx, rotatesecret.Clients{Kube: o.clients.Kube, Dynamic: o.clients.Dynamic}, rotatesecret.ForceSyncOptions{Options: ro, ClusterExternalSecret: o.clusterExternalSecret})
		if res != nil {
			if perr := o.print(ctx, res); perr != nil {
				return perr
			}
		}
		return err
	}
	if h := o.hashed; h != nil {
		if err := h.target.Check(names[0]); err != nil {
			return fmt.Errorf("--deliver: %w", err)
		}
		ro.Handover = &rotatesecret.Handover{Target: h.target, Token: h.token, ErrOut: o.ErrOut}
	}
	res, err := rotatesecret.Rotate(ctx, rotatesecret.Clients{Kube: o.clients.Kube, Dynamic: o.clients.Dynamic}, ro)
	if res != nil {
		if perr := o.print(ctx, res); perr != nil {
			return perr
		}
	}
	return err
}

func (o *Options) print(ctx context.Context, res *rotatesecret.Result) error {
	t := o.clients.Target
	res.Target = &t
	if o.Output != "" {
		return output.PrintObject(o.PrintFlags, o.Output, res, o.Out)
	}
	if res.DryRun == string(rotatesecret.DryRunClient) {
		return output.PrintPlan(ctx, o.Out, res)
	}
	return output.PrintSummary(o.Out, res)
}

// resolveNames returns the Secrets named, or those matching the selector.
func (o *Options) resolveNames(ctx context.Context) ([]string, error) {
	if o.Selector == "" {
		return o.Names, nil
	}
	list, err := o.clients.Kube.CoreV1().Secrets(o.clients.Namespace).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	if err != nil {
		return nil, fmt.Errorf("listing secrets matching -l %s in namespace %s: %w", o.Selector, o.clients.Namespace, err)
	}
	var names []string
	for _, s := range list.Items {
		if _, companion := s.Labels[v1alpha1.CompanionOf]; companion {
			continue
		}
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no Secrets match -l %s in namespace %s", o.Selector, o.clients.Namespace)
	}
	sort.Strings(names)
	return names, nil
}

func parseTarget(s, ns string) (consumers.Workload, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || name == "" {
		return consumers.Workload{}, fmt.Errorf("--restart-target %q: use KIND/NAME, e.g. deployment/web", s)
	}
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy", "deployment.apps":
		kind = consumers.KindDeployment
	case "statefulset", "statefulsets", "sts", "statefulset.apps":
		kind = consumers.KindStatefulSet
	case "daemonset", "daemonsets", "ds", "daemonset.apps":
		kind = consumers.KindDaemonSet
	default:
		return consumers.Workload{}, fmt.Errorf("--restart-target %q: only deployment, statefulset and daemonset can be restarted", s)
	}
	return consumers.Workload{Kind: kind, Namespace: ns, Name: name}, nil
}

// defaultDeliverFormat is --deliver-format's default.
const defaultDeliverFormat = "{{.Base64URL}}"

// method returns the flags that say how the new values are made, without
// values or local paths, for the record.Method annotation: `kubectl rotate
// status` shows them as the command that rotates the Secret again.
// Values that come from outside (files, stdin) are shown as placeholders.
func (o *Options) method() string {
	var args []string
	add := func(a ...string) {
		for i, v := range a {
			if i%2 == 1 {
				v = shellQuote(v)
			}
			args = append(args, v)
		}
	}
	for _, k := range o.Keys {
		add("--key", k)
	}
	if o.Generate != "" {
		add("--generate", o.Generate)
	}
	for _, f := range o.FromFile {
		k, _, _ := strings.Cut(f, "=")
		add("--from-file", k+"=NEW-VALUE-FILE")
	}
	if o.FromStdin != "" {
		add("--from-stdin", o.FromStdin)
	}
	if len(o.URLPassword) > 0 {
		add("--url-password", strings.Join(o.URLPassword, ","))
		if o.PasswordFromFile != "" {
			add("--password-from-file", "NEW-PASSWORD-FILE")
		} else {
			add("--password-generate", o.PasswordSpec)
		}
	}
	for _, j := range o.JSONFields {
		add("--json-field", j)
	}
	for _, f := range o.FromFileField {
		kf, _, _ := strings.Cut(f, "=")
		add("--from-file-field", kf+"=NEW-VALUE-FILE")
	}
	if o.Hashed != "" {
		add("--hashed", o.Hashed)
		add("--deliver", "file:NEW-TOKEN-FILE")
		if o.DeliverFormat != defaultDeliverFormat {
			add("--deliver-format", o.DeliverFormat)
		}
	}
	return strings.Join(args, " ")
}

// shellQuote single-quotes s when it holds characters a shell would read.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:=/@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
