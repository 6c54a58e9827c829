// Package jwk implements `kubectl rotate jwk`: the lifecycle of signing
// keys in a JWKS kept in a Secret or a file (list, add, promote, retire,
// delete, rotate, public).
package jwk

import (
	"context"
	"errors"
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
	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Options shared by the jwk subcommands.
type Options struct {
	Secret, Key, File string
	Layout            string
	Output            string
	DryRun            secret.DryRun
	PrintFlags        *genericclioptions.JSONYamlPrintFlags

	// add
	Alg, KIDScheme string
	// delete / rotate
	MinOverlap, DeleteOlderThan time.Duration
	Force                       bool
	// rotate
	Restart string
	Timeout time.Duration

	clients *kube.Clients
	store   keystore.Store
	Now     func() time.Time
	genericiooptions.IOStreams
}

// NewCmdJWK returns `kubectl rotate jwk` and its subcommands.
func NewCmdJWK(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jwk",
		Short: "Manage signing keys in a JWKS (Secret or file): list, add, promote, retire, delete, rotate, public",
		Long: templates.LongDesc(`
			Rotate JWT signing keys without breaking tokens: a new key is published first
			(next) so verifiers learn it, then promoted to the signing key (active) while the
			previous one keeps verifying (retiring) until tokens it signed have expired, then
			deleted. Reads and writes the DiracX and Slurm layouts as they are; keys a command
			does not touch are kept byte for byte. Private key material is never printed.`),
		Run: func(cmd *cobra.Command, args []string) { cmd.Help() },
	}
	cmd.AddCommand(
		sub(f, streams, "list", "List the keys: kid, algorithm, use, state, created, age", 0, listExamples, (*Options).runList, nil),
		sub(f, streams, "add", "Generate a key and publish it as next (verify only, not yet signing)", 0, addExamples, (*Options).runAdd, addFlags),
		sub(f, streams, "promote [KID]", "Make KID (default: the newest next key) the signing key; the previous one becomes retiring", 1, promoteExamples, (*Options).runPromote, nil),
		sub(f, streams, "retire KID", "Keep a next key from ever signing; it stays published for verification", 1, retireExamples, (*Options).runRetire, nil),
		sub(f, streams, "delete KID", "Remove a key; refuses the signing key and retiring keys inside the overlap", 1, deleteExamples, (*Options).runDelete, deleteFlags),
		sub(f, streams, "rotate", "Add, restart the verifiers, promote, restart again (the whole DiracX procedure); a --file takes one step per run", 0, rotateExamples, (*Options).runRotate, rotateFlags),
		sub(f, streams, "public", "Print the public JWKS (what /.well-known/jwks.json serves): no private members, no symmetric keys", 0, publicExamples, (*Options).runPublic, nil),
	)
	return cmd
}

func sub(f cmdutil.Factory, streams genericiooptions.IOStreams, use, short string, maxArgs int, examples string,
	run func(*Options, context.Context, []string) error, flags func(*cobra.Command, *Options)) *cobra.Command {
	o := &Options{Key: jwks.DefaultSecretKey, PrintFlags: genericclioptions.NewJSONYamlPrintFlags(), IOStreams: streams,
		MinOverlap: 24 * time.Hour, Restart: "rollout", Timeout: consumers.DefaultTimeout, Now: time.Now}
	name := strings.Fields(use)[0]
	cmd := &cobra.Command{
		Use:                   use,
		DisableFlagsInUseLine: true,
		Short:                 short,
		Example:               templates.Examples(examples),
		Args:                  cobra.MaximumNArgs(maxArgs),
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f, cmd, name, args))
			cmdutil.CheckErr(o.Validate(name, args))
			ctx := cmd.Context()
			cmdutil.CheckErr(run(o, ctx, args))
		},
	}
	cmd.Flags().StringVar(&o.Secret, "secret", "", "Secret holding the key set.")
	cmd.Flags().StringVar(&o.Key, "key", o.Key, "Key of the Secret holding the key set.")
	cmd.Flags().StringVar(&o.File, "file", "", "Key-set file (offline use); written atomically, mode 0600; key records in FILE.kube-rotate.json.")
	cmd.Flags().StringVar(&o.Layout, "layout", "", "diracx, slurm or generic; default: detected from the set (an empty set needs it).")
	if name != "public" {
		output.AddOutputFlag(cmd, o.PrintFlags, &o.Output)
	}
	if name != "list" && name != "public" {
		cmdutil.AddDryRunFlag(cmd)
	}
	if flags != nil {
		flags(cmd, o)
	}
	return cmd
}

func addFlags(cmd *cobra.Command, o *Options) {
	cmd.Flags().StringVar(&o.Alg, "alg", "", "Ed25519, EdDSA, ES256, RS256 or HS256; default: the layout's (DiracX: the signing key's Ed25519 or EdDSA, Slurm: HS256, generic: EdDSA).")
	cmd.Flags().StringVar(&o.KIDScheme, "kid-scheme", "", "uuid7, uuid4 or thumbprint; default: the layout's (uuid7 carries the creation time).")
}

func deleteFlags(cmd *cobra.Command, o *Options) {
	cmd.Flags().Var(duration.Value{D: &o.MinOverlap}, "min-overlap", "How long a key must have stopped signing before it may be deleted (token lifetime + JWKS cache).")
	cmd.Flags().BoolVar(&o.Force, "force", false, "Delete even inside the overlap (tokens the key signed stop verifying now).")
}

func rotateFlags(cmd *cobra.Command, o *Options) {
	addFlags(cmd, o)
	cmd.Flags().Var(duration.Value{D: &o.DeleteOlderThan}, "delete-older-than", "Also delete retiring keys that stopped signing longer ago than this (e.g. 7d).")
	cmd.Flags().StringVar(&o.Restart, "restart", o.Restart, "rollout: restart the Secret's consumers after each step and wait; none: only edit the set.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each rollout.")
}

// Complete builds the store.
func (o *Options) Complete(f cmdutil.Factory, cmd *cobra.Command, name string, args []string) error {
	if cmd.Flags().Lookup("dry-run") != nil {
		dr, err := cmdutil.GetDryRunStrategy(cmd)
		if err != nil {
			return err
		}
		o.DryRun = output.DryRun(dr)
	} else {
		o.DryRun = secret.DryRunNone
	}
	if o.File != "" {
		o.store = &keystore.FileStore{Path: o.File}
		return nil
	}
	var err error
	if o.clients, err = kube.NewClients(f); err != nil {
		return err
	}
	st := &keystore.SecretStore{Client: o.clients.Kube, Namespace: o.clients.Namespace, Name: o.Secret, Key: o.Key}
	if o.DryRun == secret.DryRunServer {
		st.DryRun = []string{metav1.DryRunAll}
	}
	o.store = st
	return nil
}

// Validate checks the flags.
func (o *Options) Validate(name string, args []string) error {
	if (o.Secret == "") == (o.File == "") {
		return errors.New("give exactly one of --secret NAME or --file PATH")
	}
	if o.Layout != "" {
		if _, err := jwks.ParseLayout(o.Layout); err != nil {
			return err
		}
	}
	if err := output.ValidateFormat(o.Output); err != nil {
		return err
	}
	if err := (jwks.AddOptions{Alg: jwks.Alg(o.Alg), Scheme: jwks.KIDScheme(o.KIDScheme)}).Check(); err != nil {
		return err
	}
	if (name == "retire" || name == "delete") && len(args) != 1 {
		return fmt.Errorf("name the key: kubectl rotate jwk %s KID", name)
	}
	if o.File != "" && o.DryRun == secret.DryRunServer {
		return errors.New("--dry-run=server needs a Secret: use --dry-run=client with --file")
	}
	if o.Restart != "rollout" && o.Restart != "none" {
		return fmt.Errorf("--restart %q is not supported: use rollout or none", o.Restart)
	}
	return nil
}

func (o *Options) load(ctx context.Context, missingOK bool) (*jwks.Ring, error) {
	set, rec, err := o.store.Load(ctx, missingOK)
	if err != nil {
		return nil, err
	}
	r := jwks.NewRing(set, jwks.Layout(o.Layout), rec)
	r.Now = o.Now
	r.Tool = display.KubectlRotate(ctx)
	return r, nil
}

func (o *Options) save(ctx context.Context, r *jwks.Ring, action string) error {
	if o.DryRun == secret.DryRunClient {
		return nil
	}
	by := ""
	if o.clients != nil {
		by = kube.WhoAmI(ctx, o.clients.Kube)
	}
	return keystore.Save(ctx, o.store, r, action, by)
}

// KeyList is the -o json|yaml form of `jwk list` and of the other
// subcommands' results: a KeySet record.
type KeyList = v1alpha1.KeySet

func (o *Options) print(r *jwks.Ring, changed ...string) error {
	l := &KeyList{TypeMeta: v1alpha1.TypeMeta(v1alpha1.KindKeySet), Store: o.store.String(),
		Layout: string(r.Layout), Keys: r.Rows(), Changed: changed, Warnings: o.warnings(r)}
	if o.DryRun != secret.DryRunNone {
		l.DryRun = string(o.DryRun)
	}
	if o.Output != "" {
		return output.PrintObject(o.PrintFlags, o.Output, l, o.Out)
	}
	for _, w := range l.Warnings {
		fmt.Fprintln(o.ErrOut, "warning: "+w)
	}
	for _, c := range changed {
		fmt.Fprintln(o.Out, c)
	}
	if l.DryRun != "" {
		fmt.Fprintf(o.Out, "(dry run: %s was not changed)\n", o.store)
	}
	expires := false
	for _, row := range l.Keys {
		expires = expires || row.Expires != nil
	}
	tw := printers.GetNewTabWriter(o.Out)
	header := "KID\tTYPE\tUSE\tSTATE\tCREATED\tAGE"
	if expires {
		header += "\tEXPIRES"
	}
	fmt.Fprintln(tw, header)
	now := o.Now()
	for _, row := range l.Keys {
		use := row.Use
		if len(row.KeyOps) > 0 {
			use = strings.Join(row.KeyOps, ",")
		}
		created, age := "unknown", "-"
		if row.Created != nil {
			created = row.Created.UTC().Format(time.RFC3339) + " (" + row.CreatedBy + ")"
			age = kubeduration.HumanDuration(now.Sub(row.Created.Time))
		}
		typ := row.Kty
		if row.Alg != "" {
			typ += "/" + row.Alg
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", row.KID, typ, dash(use), row.State, created, age)
		if expires {
			exp := "-"
			if row.Expires != nil {
				exp = row.Expires.UTC().Format(time.RFC3339)
			}
			line += "\t" + exp
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// warnings are the set's (Ring.Warnings) and, for a key file that others
// may read, that Slurm would refuse it.
func (o *Options) warnings(r *jwks.Ring) []string {
	w := r.Warnings()
	if fs, ok := o.store.(*keystore.FileStore); ok {
		if p := fs.OthersPermission(); p != "" {
			w = append(w, p)
		}
	}
	return w
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
