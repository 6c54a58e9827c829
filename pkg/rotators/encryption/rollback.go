package encryption

import (
	"bytes"
	"context"
	"fmt"

	clusterenc "github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// The rollbacks, one per stage: which one runs is read from the
// configuration (and, for a rollback in progress, from the journal).
const (
	RollbackRetire  = "retire"
	RollbackPromote = "promote"
	RollbackStage   = "stage"
)

// rollbackKind decides which stage a rollback undoes: the one in progress
// (journaled), else the configuration's: promoted -> the promote; staged
// -> the stage; idle with the retired keys kept -> the retire.
func (o *Options) rollbackKind(ctx context.Context, st *State, r *procedure.Record) (string, []byte, error) {
	kept, err := o.Source.Kept(ctx)
	if err != nil {
		return "", nil, err
	}
	if kind := r.String(factRollback); kind != "" {
		return kind, kept, nil
	}
	switch st.Stage {
	case encryptionconfig.StagePromoted:
		return RollbackPromote, kept, nil
	case encryptionconfig.StageStaged:
		return RollbackStage, kept, nil
	}
	if kept == nil {
		return "", nil, fmt.Errorf("%s has one key (%s) and no retired keys are kept (%s): nothing to roll back", o.Source, st.Key, o.Source.KeptAt())
	}
	if err := o.matchesKept(st, kept); err != nil {
		return "", nil, err
	}
	return RollbackRetire, kept, nil
}

// matchesKept checks that the configuration is what the retire made of
// the kept one: restoring it then loses nothing written since.
func (o *Options) matchesKept(st *State, kept []byte) error {
	want, err := edit(kept, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) { return c.Retire(p) })
	if err != nil || !bytes.Equal(want, st.Doc) {
		return fmt.Errorf("%s changed since the retire, so the retired keys in %s cannot be put back as they were: nothing was changed; add them back by hand, or delete %s", o.Source, o.Source.KeptAt(), o.Source.KeptAt())
	}
	return nil
}

// rollbackSteps are the steps of one rollback.
func (o *Options) rollbackSteps(kind string, kept []byte) []procedure.Step {
	var steps []procedure.Step
	add := func(name, what string, done func(st *State, r *procedure.Record) bool, do func(ctx context.Context, st *State, r *procedure.Record) error) {
		steps = append(steps, o.step(name, what, done, func(ctx context.Context, st *State, r *procedure.Record) error {
			if err := r.Put(factRollback, kind); err != nil {
				return err
			}
			return do(ctx, st, r)
		}))
	}
	switch kind {
	case RollbackRetire:
		add(stepRestore, "put the retired keys back after the first (as before the retire)",
			func(st *State, r *procedure.Record) bool { return bytes.Equal(st.Doc, kept) },
			func(ctx context.Context, st *State, r *procedure.Record) error {
				if err := o.matchesKept(st, kept); err != nil {
					return err
				}
				if err := r.Put(factKey, st.Key); err != nil {
					return err
				}
				// The retire ran only after the rewrite completed under the
				// kept configuration, and since then only the first key
				// wrote: nothing is under the old keys.
				if err := r.Put(factRewrittenUnder, clusterenc.ConfigHash(kept)); err != nil {
					return err
				}
				return o.Source.Write(ctx, st.Doc, kept)
			})
	case RollbackPromote:
		add(stepDemote, "make the old key first again (the new key still decrypts)",
			func(st *State, r *procedure.Record) bool { return st.Stage == encryptionconfig.StageStaged },
			func(ctx context.Context, st *State, r *procedure.Record) error {
				if st.Stage != encryptionconfig.StagePromoted {
					return fmt.Errorf("%s is %s: nothing promoted to roll back", o.Source, st.Stage)
				}
				delete(r.Facts, factRewrittenUnder)
				if err := r.Put(factPromoted, true); err != nil {
					return err
				}
				doc, err := edit(st.Doc, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) {
					return c.Demote(p, st.Old[0])
				})
				if err != nil {
					return fmt.Errorf("%s: %w", o.Source, err)
				}
				return o.Source.Write(ctx, st.Doc, doc)
			})
	case RollbackStage:
		// A stage whose key was ever first may have objects under it:
		// they are stored again with the old key before the key goes.
		steps = append(steps, o.rewriteBack())
		add(stepUnstage, "remove the staged key",
			func(st *State, r *procedure.Record) bool { return st.Stage == encryptionconfig.StageIdle },
			func(ctx context.Context, st *State, r *procedure.Record) error {
				if st.Stage != encryptionconfig.StageStaged {
					return fmt.Errorf("%s is %s: nothing staged to roll back", o.Source, st.Stage)
				}
				doc, err := edit(st.Doc, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) {
					return c.Unstage(p)
				})
				if err != nil {
					return fmt.Errorf("%s: %w", o.Source, err)
				}
				return o.Source.Write(ctx, st.Doc, doc)
			})
	}
	o.addLoaded(&steps, "rollback", stepLoadedRollback, nil)
	if kind == RollbackPromote {
		steps = append(steps, o.rewriteBack())
	}
	return steps
}

// rewriteBack stores every object again with the old key, once a promote
// was rolled back: done when the new key never was first, or when the
// rewrite completed under the configuration as it is.
func (o *Options) rewriteBack() procedure.Step {
	return o.step(stepRewriteBack, "store every object of the encrypted resources again, so that none is left under the key rolled back",
		func(st *State, r *procedure.Record) bool {
			var promoted bool
			_, _ = r.Get(factPromoted, &promoted)
			return !promoted || r.String(factRewrittenBack) == clusterenc.ConfigHash(st.Doc)
		},
		func(ctx context.Context, st *State, r *procedure.Record) error {
			if st.Stage == encryptionconfig.StagePromoted {
				return fmt.Errorf("%s is promoted again: nothing to store back", o.Source)
			}
			if _, err := o.rewrite(ctx, st, r, "rewrite-back-under"); err != nil {
				return err
			}
			return r.Put(factRewrittenBack, clusterenc.ConfigHash(st.Doc))
		})
}

// Rollback undoes the current stage: a promote (the old key first again,
// every API server reloads, every object stored again with it), a stage
// (the staged key removed, after such a rewrite if it was ever first), or
// a retire (the retired keys put back). Killed at any point, the same
// command resumes it.
func (o *Options) Rollback(ctx context.Context) (string, error) {
	p, kind, err := o.rollbackProcedure(ctx)
	if err != nil {
		return "", err
	}
	r, err := p.Run(ctx)
	if err != nil {
		return kind, err
	}
	// The stage is undone: forget its steps, so that the forward stage runs
	// again.
	undone := map[string][]string{
		RollbackRetire:  {StepRetire, StepLoadedRetire},
		RollbackPromote: {StepPromote, StepLoadedPromote, StepRewrite, StepCheckOld, StepRetire, StepLoadedRetire},
	}[kind]
	forwardRollout := map[string][]string{RollbackRetire: {StepRetire}, RollbackPromote: {StepPromote, StepRetire}}[kind]
	for _, after := range forwardRollout {
		if o.Rollout != nil {
			for _, rs := range o.Rollout(after) {
				undone = append(undone, rs.Name)
			}
		}
	}
	for _, s := range append(undone, stepNames(p.Steps)...) {
		r.Unmark(s)
	}
	delete(r.Facts, factRollback)
	switch kind {
	case RollbackStage:
		if o.Journal != nil {
			return kind, o.Journal.Delete(ctx)
		}
		return kind, nil
	case RollbackPromote:
		delete(r.Facts, factPromoted)
		delete(r.Facts, factRewrittenBack)
	case RollbackRetire:
		if err := o.Source.Drop(ctx); err != nil {
			return kind, err
		}
	}
	if o.Journal == nil {
		return kind, nil
	}
	return kind, o.Journal.Save(ctx, r)
}

// RollbackPlan is the dry run of Rollback: which stage it undoes and its
// steps. Nothing is written.
func (o *Options) RollbackPlan(ctx context.Context) (string, []procedure.StepStatus, error) {
	p, kind, err := o.rollbackProcedure(ctx)
	if err != nil {
		return "", nil, err
	}
	steps, _, err := p.Plan(ctx)
	return kind, steps, err
}

func (o *Options) rollbackProcedure(ctx context.Context) (*procedure.Procedure, string, error) {
	r, err := o.loadRecord(ctx)
	if err != nil {
		return nil, "", err
	}
	st, err := o.state(ctx)
	if err != nil {
		return nil, "", err
	}
	kind, kept, err := o.rollbackKind(ctx, st, r)
	if err != nil {
		return nil, "", err
	}
	return &procedure.Procedure{Name: "rollback of the " + kind + " of " + o.Source.String(), Steps: o.rollbackSteps(kind, kept),
		Journal: o.Journal, Progress: o.Out, Now: o.Now, KeepJournal: true}, kind, nil
}

func (o *Options) loadRecord(ctx context.Context) (*procedure.Record, error) {
	if o.Journal == nil {
		return &procedure.Record{}, nil
	}
	r, err := o.Journal.Load(ctx)
	if err != nil || r != nil {
		return r, err
	}
	return &procedure.Record{}, nil
}

func stepNames(steps []procedure.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name())
	}
	return out
}
