package jwk

import (
	"context"
	"fmt"
	"io"

	"github.com/kube-rotate/kube-rotate/pkg/cli/output"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	rotatejwk "github.com/kube-rotate/kube-rotate/pkg/rotators/jwk"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

const (
	listExamples = `
		# The keys of DiracX's key set, with their state and age
		kubectl rotate jwk list --secret diracx-jwks -n diracx

		# A key-set file kept offline
		kubectl rotate jwk list --file keystore.json -o yaml`
	addExamples = `
		# Publish a new Ed25519 key (DiracX layout detected): verifiers learn it before it signs
		kubectl rotate jwk add --secret diracx-jwks -n diracx

		# A generic set, ES256, kid = RFC 7638 thumbprint
		kubectl rotate jwk add --file jwks.json --alg ES256 --kid-scheme thumbprint`
	promoteExamples = `
		# Sign with the newest published key; the previous signing key keeps verifying
		kubectl rotate jwk promote --secret diracx-jwks -n diracx

		# A given key
		kubectl rotate jwk promote --secret diracx-jwks 0196af4d311579728287cb89c24514e9`
	retireExamples = `
		# A published key that should never sign
		kubectl rotate jwk retire --secret slurm-jwks 6c2f9d4e-57a1-4e0b-9c33-8d2e5f7a1b90`
	deleteExamples = `
		# Drop the old key once tokens it signed have expired (refused inside the 24h overlap)
		kubectl rotate jwk delete --secret diracx-jwks -n diracx 0196af4d0ab27b1299dff55b8617991d

		# Revoke every token it signed, now
		kubectl rotate jwk delete --secret diracx-jwks -n diracx 0196af4d0ab27b1299dff55b8617991d --force`
	rotateExamples = `
		# The whole DiracX procedure: add, restart diracx, promote, restart again
		kubectl rotate jwk rotate --secret diracx-jwks -n diracx

		# ...and delete keys that stopped signing more than 7 days ago
		kubectl rotate jwk rotate --secret diracx-jwks -n diracx --delete-older-than 7d

		# A key file takes one step per run: publish; copy the file to every node and
		# reconfigure; run again to promote
		kubectl rotate jwk rotate --file /etc/slurm/slurm.jwks`
	publicExamples = `
		# What verifiers should see
		kubectl rotate jwk public --secret diracx-jwks -n diracx`
)

func (o *Options) runList(ctx context.Context, _ []string) error {
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	return o.print(r)
}

func (o *Options) runAdd(ctx context.Context, _ []string) error {
	r, err := o.load(ctx, true)
	if err != nil {
		return err
	}
	k, err := r.Add(jwks.AddOptions{Alg: jwks.Alg(o.Alg), Scheme: jwks.KIDScheme(o.KIDScheme)})
	if err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	if err := o.save(ctx, r, "jwk-add"); err != nil {
		return err
	}
	state := r.State(r.Set.Find(k.KID))
	return o.print(r, fmt.Sprintf("%s: key %s added (%s)", o.store, k.KID, state))
}

func (o *Options) runPromote(ctx context.Context, args []string) error {
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	kid := ""
	if len(args) == 1 {
		kid = args[0]
	} else if kid = r.NewestNext(); kid == "" {
		if err := r.Check(); err != nil {
			return fmt.Errorf("%s: %w", o.store, err)
		}
		return fmt.Errorf("%s has no next key to promote: add one first (kubectl rotate jwk add), or name a KID", o.store)
	}
	changed, err := r.Promote(kid)
	if err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	if !changed {
		return o.print(r, fmt.Sprintf("%s: key %s is already the signing key", o.store, kid))
	}
	if err := o.save(ctx, r, "jwk-promote"); err != nil {
		return err
	}
	return o.print(r, fmt.Sprintf("%s: key %s is now the signing key", o.store, kid))
}

func (o *Options) runRetire(ctx context.Context, args []string) error {
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	changed, err := r.Retire(args[0])
	if err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	if changed {
		if err := o.save(ctx, r, "jwk-retire"); err != nil {
			return err
		}
	}
	return o.print(r, fmt.Sprintf("%s: key %s is retiring (verify only)", o.store, args[0]))
}

func (o *Options) runDelete(ctx context.Context, args []string) error {
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	if err := r.Delete(args[0], o.MinOverlap, o.Force); err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	if err := o.save(ctx, r, "jwk-delete"); err != nil {
		return err
	}
	return o.print(r, fmt.Sprintf("%s: key %s deleted", o.store, args[0]))
}

func (o *Options) runPublic(ctx context.Context, _ []string) error {
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	pub, err := r.Public()
	if err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	_, err = fmt.Fprintln(o.Out, string(pub))
	return err
}

// runRotate is DiracX's whole procedure on the engine
// (pkg/rotators/jwk): publish a new key, let every verifier load it, sign
// with it, let every signer load that. A re-run after an interruption
// resumes where it stopped, with the same key.
func (o *Options) runRotate(ctx context.Context, _ []string) error {
	progress := output.Progress(o.IOStreams, o.Output)
	r, err := o.load(ctx, false)
	if err != nil {
		return err
	}
	if o.File != "" {
		return o.rotateFileStep(ctx, r, progress)
	}
	t := &rotatejwk.Target{Kube: o.clients.Kube, Dynamic: o.clients.Dynamic, Namespace: o.clients.Namespace, Secret: o.Secret, Key: o.Key,
		Layout: jwks.Layout(o.Layout), Add: jwks.AddOptions{Alg: jwks.Alg(o.Alg), Scheme: jwks.KIDScheme(o.KIDScheme)},
		DeleteOlderThan: o.DeleteOlderThan, Restart: o.Restart == "rollout", Timeout: o.Timeout,
		By: kube.WhoAmI(ctx, o.clients.Kube), Progress: progress, Now: o.Now}
	p := t.Procedure()
	if o.DryRun != secret.DryRunNone {
		output.Acting(progress, "Plan (dry run) on", o.clients.Target)
		steps, _, err := p.Plan(ctx)
		if err != nil {
			return err
		}
		for _, s := range steps {
			state := ""
			if s.Done {
				state = " (done)"
			}
			fmt.Fprintf(progress, "step %d of %d (%s): %s%s\n", s.Index, len(steps), s.Name, s.What, state)
		}
		return o.print(r)
	}
	rec, err := p.Run(ctx)
	if err != nil {
		return err
	}
	kid := rec.String(rotatejwk.FactKID)
	var changed []string
	if added, _ := rec.Get(rotatejwk.FactAdded, new(bool)); added {
		changed = append(changed, "added "+kid)
	}
	changed = append(changed, "promoted "+kid)
	var gone []string
	_, _ = rec.Get(rotatejwk.FactDeleted, &gone)
	for _, g := range gone {
		changed = append(changed, "deleted "+g)
	}
	if r, err = o.load(ctx, false); err != nil {
		return err
	}
	return o.print(r, changed...)
}

// rotateFileStep takes one step of the procedure on a key file. Nothing
// can tell when a file has reached every verifier (Slurm's nodes read
// their own copies), so the run that publishes a key stops there; the
// next run, once the file has been distributed, promotes it. The same
// steps as the Action's pull requests (jwks.Ring.Advance).
func (o *Options) rotateFileStep(ctx context.Context, r *jwks.Ring, progress io.Writer) error {
	st, err := r.Advance(true, o.DeleteOlderThan, jwks.AddOptions{Alg: jwks.Alg(o.Alg), Scheme: jwks.KIDScheme(o.KIDScheme)})
	if err != nil {
		return fmt.Errorf("%s: %w", o.store, err)
	}
	action := "jwk-promote"
	if st.Added != "" {
		action = "jwk-add"
	}
	if err := o.save(ctx, r, action); err != nil {
		return err
	}
	var changed []string
	for _, gone := range st.Deleted {
		changed = append(changed, "deleted "+gone)
	}
	switch {
	case st.Added != "":
		changed = append(changed, "added "+st.Added)
		fmt.Fprintf(progress, "%s: key %s published as next; copy %s to every verifier (Slurm: every node, then scontrol reconfigure), then run this again to promote it\n",
			o.store, st.Added, o.store)
	case st.Promoted != "":
		changed = append(changed, "promoted "+st.Promoted)
		fmt.Fprintf(progress, "%s: key %s is now the signing key; copy %s to every host (Slurm: then scontrol reconfigure)\n", o.store, st.Promoted, o.store)
	}
	return o.print(r, changed...)
}
