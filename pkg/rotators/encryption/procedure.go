package encryption

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	clusterenc "github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// The steps of a rotation, in order. Options.Rollout adds the steps that
// bring a written configuration to the API servers before each loaded-*
// step.
const (
	StepStage          = "stage"
	StepLoadedStage    = "loaded-after-stage"
	StepPromote        = "promote"
	StepLoadedPromote  = "loaded-after-promote"
	StepRewrite        = "rewrite"
	StepCheckOld       = "check-old-keys"
	StepRetire         = "retire"
	StepLoadedRetire   = "loaded-after-retire"
	stepRewriteBack    = "rewrite-back"
	stepRestore        = "restore-retired"
	stepDemote         = "demote"
	stepUnstage        = "unstage"
	stepLoadedRollback = "loaded-after-rollback"
)

// Journal facts.
const (
	factKey            = "key"             // the rotation's new key name
	factRewrittenUnder = "rewritten-under" // ConfigHash the rewrite completed under
	factRewriteUnder   = "rewrite-under"   // ConfigHash the rewrite in progress runs under
	factPromoted       = "promoted"        // the new key was first: a rollback of the stage rewrites back
	factRewrittenBack  = "rewritten-back"  // ConfigHash the rewrite back to the old key completed under
	factRollback       = "rollback"        // the rollback in progress: stage, promote or retire
	factSummary        = "rewrite-summary" // the last rewrite's summaries
)

// RolloutStep is one step that brings a written configuration to the API
// servers (kops update cluster, kops rolling-update cluster).
type RolloutStep struct {
	Name, What string
	Do         func(ctx context.Context) error
}

// Options of a rotation.
type Options struct {
	Source Source
	// Journal keeps what the configuration cannot show, with a
	// precondition on every write.
	Journal procedure.Journal
	// Kube reads which API servers applied a configuration.
	Kube kubernetes.Interface
	// Metadata lists and writes the objects back in the rewrite (object
	// metadata only, protobuf).
	Metadata metadata.Interface
	// Rollout returns the steps that bring the configuration written by
	// the named step (stage, promote, retire, rollback) to every API
	// server; nil: none, the API servers reload the file themselves
	// (--encryption-provider-config-automatic-reload).
	Rollout func(after string) []RolloutStep
	// Distribute says what a person does when an API server has not
	// applied the configuration in LoadTimeout ("copy FILE to every
	// control-plane node").
	Distribute string
	// LoadTimeout bounds each wait for the API servers (default 3m: they
	// look at the file every minute); PollInterval is how often Loaded is
	// asked (default 2s).
	LoadTimeout, PollInterval time.Duration
	// Workers and PageSize of the rewrite (defaults of
	// clusterenc.RewriteOptions).
	Workers  int
	PageSize int64
	// Stored, when set, counts the objects of the resources stored under
	// each prefix, read from etcd; the retire then also waits until none
	// is left under the old keys, and status shows the counts.
	Stored func(ctx context.Context, resources []string, prefixes []string) (map[string]int64, error)
	// Command is how messages name a verb of the tool, %s standing for the
	// verb ("kubectl rotate encryption %s --config /etc/kubernetes/enc.yaml").
	Command string
	Out     io.Writer
	Now     func() time.Time
	// Rand is crypto/rand.Reader when nil.
	Rand io.Reader
	// hook, for tests: called before and after each step's work.
	hook func(step, phase string) error
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) printf(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, format+"\n", args...)
	}
}

func (o *Options) at(step, phase string) error {
	if o.hook != nil {
		return o.hook(step, phase)
	}
	return nil
}

func (o *Options) cmd(verb string) string {
	return "`" + fmt.Sprintf(o.Command, verb) + "`"
}

// state reads the configuration and its stage.
func (o *Options) state(ctx context.Context) (*State, error) {
	doc, err := o.Source.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	return ReadState(doc, o.Source.String())
}

// retired: the rotation's key is alone, its old keys removed.
func retired(st *State, r *procedure.Record) bool {
	return st.Stage == encryptionconfig.StageIdle && r.String(factKey) != "" && r.String(factKey) == st.Key
}

// steps are the whole rotation, in order.
func (o *Options) steps() []procedure.Step {
	var steps []procedure.Step
	add := func(name, what string, done func(st *State, r *procedure.Record) bool, do func(ctx context.Context, st *State, r *procedure.Record) error) {
		steps = append(steps, o.step(name, what, done, do))
	}
	add(StepStage, "add a new key second in every rotatable provider (it decrypts; the first key still encrypts)",
		func(st *State, r *procedure.Record) bool {
			return st.Stage != encryptionconfig.StageIdle || retired(st, r)
		}, o.doStage)
	o.addLoaded(&steps, StepStage, StepLoadedStage, func(st *State, r *procedure.Record) bool {
		return st.Stage == encryptionconfig.StagePromoted || retired(st, r)
	})
	add(StepPromote, "make the new key first (every API server encrypts with it; the old key still decrypts)",
		func(st *State, r *procedure.Record) bool {
			return st.Stage == encryptionconfig.StagePromoted || retired(st, r)
		}, o.doPromote)
	o.addLoaded(&steps, StepPromote, StepLoadedPromote, func(st *State, r *procedure.Record) bool { return retired(st, r) })
	add(StepRewrite, "store every object of the encrypted resources again, so that each is encrypted with the new key",
		func(st *State, r *procedure.Record) bool {
			return retired(st, r) || r.String(factRewrittenUnder) == clusterenc.ConfigHash(st.Doc)
		}, o.doRewrite)
	add(StepCheckOld, "check that nothing is left under the old keys",
		func(st *State, r *procedure.Record) bool {
			return retired(st, r) || (r.Marked(StepCheckOld) && r.String(factRewrittenUnder) == clusterenc.ConfigHash(st.Doc))
		}, o.doCheckOld)
	add(StepRetire, "remove the old keys (kept aside for a rollback of the retire)",
		func(st *State, r *procedure.Record) bool { return retired(st, r) }, o.doRetire)
	o.addLoaded(&steps, StepRetire, StepLoadedRetire, nil)
	return steps
}

// step makes a procedure step that reads the state for Done and Do.
func (o *Options) step(name, what string, done func(st *State, r *procedure.Record) bool, do func(ctx context.Context, st *State, r *procedure.Record) error) procedure.Step {
	return &procedure.Func{
		StepName: name, What: what,
		DoneFunc: func(ctx context.Context, r *procedure.Record) (bool, error) {
			st, err := o.state(ctx)
			if err != nil {
				return false, err
			}
			return done(st, r), nil
		},
		DoFunc: func(ctx context.Context, r *procedure.Record) error {
			o.printf("==> %s: %s", name, what)
			st, err := o.state(ctx)
			if err != nil {
				return err
			}
			if err := o.at(name, "before"); err != nil {
				return err
			}
			if err := do(ctx, st, r); err != nil {
				return err
			}
			return o.at(name, "after")
		},
		UndoFunc: func(ctx context.Context, _ *procedure.Record) error {
			return fmt.Errorf("roll back one stage at a time with %s", o.cmd("rollback"))
		},
	}
}

// addLoaded adds the rollout steps after the edit step and the wait until
// every API server applied the configuration. past says when they are
// done because the configuration moved on (nil: never).
func (o *Options) addLoaded(steps *[]procedure.Step, after, name string, past func(st *State, r *procedure.Record) bool) {
	done := func(step string) func(st *State, r *procedure.Record) bool {
		return func(st *State, r *procedure.Record) bool {
			return r.Marked(step) || (past != nil && past(st, r))
		}
	}
	if o.Rollout != nil {
		for _, rs := range o.Rollout(after) {
			rs := rs
			*steps = append(*steps, o.step(rs.Name, rs.What, done(rs.Name), func(ctx context.Context, _ *State, _ *procedure.Record) error {
				return rs.Do(ctx)
			}))
		}
	}
	*steps = append(*steps, o.step(name, "wait until every kube-apiserver applied the configuration", done(name),
		func(ctx context.Context, st *State, _ *procedure.Record) error { return o.waitLoaded(ctx, st) }))
}

func (o *Options) doStage(ctx context.Context, st *State, r *procedure.Record) error {
	if st.Stage != encryptionconfig.StageIdle {
		return fmt.Errorf("%s is %s already", o.Source, st.Stage)
	}
	if err := o.Source.Drop(ctx); err != nil {
		return err
	}
	name := encryptionconfig.KeyName(o.now())
	doc, err := edit(st.Doc, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) {
		_, secret, err := encryptionconfig.NewKey(p.Type, o.now(), o.Rand)
		if err != nil {
			return nil, err
		}
		return c.Stage(p, name, secret)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o.Source, err)
	}
	clearRotation(r)
	if err := r.Put(factKey, name); err != nil {
		return err
	}
	if err := o.Source.Write(ctx, st.Doc, doc); err != nil {
		return err
	}
	o.printf("    staged key %s in %s", name, st.providers())
	return nil
}

// clearRotation forgets the facts of an earlier rotation.
func clearRotation(r *procedure.Record) {
	for k := range r.Facts {
		delete(r.Facts, k)
	}
	for k := range r.Steps {
		r.Unmark(k)
	}
}

func (o *Options) doPromote(ctx context.Context, st *State, r *procedure.Record) error {
	if err := r.Put(factKey, st.Key); err != nil {
		return err
	}
	if err := r.Put(factPromoted, true); err != nil {
		return err
	}
	doc, err := edit(st.Doc, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) {
		return c.Promote(p)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o.Source, err)
	}
	if err := o.Source.Write(ctx, st.Doc, doc); err != nil {
		return err
	}
	verb := "decrypts"
	if len(st.Old) > 1 {
		verb = "decrypt"
	}
	o.printf("    key %s is first: it encrypts every write; %s still %s", st.Key, strings.Join(st.Old, ", "), verb)
	return nil
}

// waitLoaded polls until every API server applied st's configuration.
func (o *Options) waitLoaded(ctx context.Context, st *State) error {
	if o.Kube == nil {
		return fmt.Errorf("no cluster to ask which kube-apiservers applied the configuration")
	}
	timeout, poll := o.LoadTimeout, o.PollInterval
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	seen := map[string]string{}
	start := time.Now()
	for {
		pending, err := clusterenc.Loaded(ctx, o.Kube, st.Doc, seen)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			o.printf("    every kube-apiserver applied %s (%s) after %s", o.Source, clusterenc.ConfigHash(st.Doc)[:19], time.Since(start).Round(time.Second))
			return nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s has not applied %s (%s) after %s", strings.Join(pending, ", "), o.Source, clusterenc.ConfigHash(st.Doc)[:19], timeout)
			if o.Distribute != "" {
				msg += ": " + o.Distribute
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// rewrite stores every object again under st's configuration, its
// progress facts under fact (the in-progress hash) in r.
func (o *Options) rewrite(ctx context.Context, st *State, r *procedure.Record, under string) ([]clusterenc.Summary, error) {
	if o.Metadata == nil || o.Kube == nil {
		return nil, fmt.Errorf("no cluster to rewrite the objects of")
	}
	hash := clusterenc.ConfigHash(st.Doc)
	if r.String(under) != hash {
		// Progress made under another configuration does not count.
		clusterenc.Forget(r)
		if err := r.Put(under, hash); err != nil {
			return nil, err
		}
	}
	res, err := clusterenc.Resolve(o.Kube.Discovery(), st.Resources())
	if err != nil {
		return nil, err
	}
	save := func(ctx context.Context) error {
		if o.Journal == nil {
			return nil
		}
		r.Updated = o.now().UTC().Truncate(time.Second)
		return o.Journal.Save(ctx, r)
	}
	sums, err := clusterenc.RewriteOptions{Metadata: o.Metadata, Resources: res, Workers: o.Workers, PageSize: o.PageSize, Progress: o.Out}.Run(ctx, r, save)
	if err != nil {
		return sums, err
	}
	clusterenc.Forget(r)
	delete(r.Facts, under)
	for _, s := range sums {
		how := ""
		if s.Resumed {
			how = " (by the run this one resumed)"
		}
		o.printf("    %s: %d stored again, %d written meanwhile (skipped), %d deleted meanwhile, %s%s", s.Resource, s.Rewritten, s.Conflicts, s.Gone, s.Elapsed.Round(time.Millisecond), how)
	}
	return sums, r.Put(factSummary, sums)
}

func (o *Options) doRewrite(ctx context.Context, st *State, r *procedure.Record) error {
	if st.Stage != encryptionconfig.StagePromoted {
		return fmt.Errorf("%s is %s: the rewrite follows the promote", o.Source, st.Stage)
	}
	if _, err := o.rewrite(ctx, st, r, factRewriteUnder); err != nil {
		return err
	}
	return r.Put(factRewrittenUnder, clusterenc.ConfigHash(st.Doc))
}

func (o *Options) doCheckOld(ctx context.Context, st *State, r *procedure.Record) error {
	if r.String(factRewrittenUnder) != clusterenc.ConfigHash(st.Doc) {
		return fmt.Errorf("objects may still be stored under %s: the rewrite has not completed under the configuration as it is now; run %s first", strings.Join(st.Old, ", "), o.cmd("rewrite"))
	}
	if o.Stored == nil {
		return nil
	}
	counts, err := o.Stored(ctx, st.Resources(), st.Prefixes(st.Old))
	if err != nil {
		return fmt.Errorf("counting what etcd stores under the old keys: %w", err)
	}
	var left []string
	for _, p := range st.Prefixes(st.Old) {
		if n := counts[p]; n > 0 {
			left = append(left, fmt.Sprintf("%d under %s", n, p))
		}
	}
	if len(left) > 0 {
		// The rewrite must run again.
		delete(r.Facts, factRewrittenUnder)
		return fmt.Errorf("etcd still stores objects under the old keys (%s): nothing was retired; run %s again", strings.Join(left, ", "), o.cmd("rewrite"))
	}
	o.printf("    etcd stores nothing under %s", strings.Join(st.Old, ", "))
	return nil
}

func (o *Options) doRetire(ctx context.Context, st *State, r *procedure.Record) error {
	if st.Stage != encryptionconfig.StagePromoted {
		return fmt.Errorf("%s is %s: retire follows the promote and the rewrite", o.Source, st.Stage)
	}
	if err := r.Put(factKey, st.Key); err != nil {
		return err
	}
	doc, err := edit(st.Doc, func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error) {
		return c.Retire(p)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o.Source, err)
	}
	if err := o.Source.Keep(ctx, st.Doc); err != nil {
		return err
	}
	if err := o.Source.Write(ctx, st.Doc, doc); err != nil {
		return err
	}
	o.printf("    removed %s; kept in %s for a rollback until the next rotation", strings.Join(st.Old, ", "), o.Source.KeptAt())
	return nil
}

// procedure is the rotation through the last step of stage ("" or "run":
// all of it).
func (o *Options) procedure(stage string) (*procedure.Procedure, int, error) {
	steps := o.steps()
	first, last := 0, len(steps)
	if stage != "" && stage != "run" {
		end := map[string]string{StepStage: StepLoadedStage, StepPromote: StepLoadedPromote, StepRewrite: StepRewrite, StepRetire: StepLoadedRetire}[stage]
		begin := map[string]string{StepStage: StepStage, StepPromote: StepPromote, StepRewrite: StepRewrite, StepRetire: StepCheckOld}[stage]
		if end == "" {
			return nil, 0, fmt.Errorf("%q is not a stage: use stage, promote, rewrite or retire", stage)
		}
		for i, s := range steps {
			if s.Name() == begin {
				first = i
			}
			if s.Name() == end {
				last = i + 1
			}
		}
	}
	name := "encryption key rotation of " + o.Source.String()
	return &procedure.Procedure{Name: name, Steps: steps[:last], Journal: o.Journal, Progress: o.Out, Now: o.Now,
		KeepJournal: last < len(steps), UndoCommand: o.cmd("rollback")}, first, nil
}

// Plan is the dry run of stage ("run": every stage): the steps and which
// are done. Nothing is written.
func (o *Options) Plan(ctx context.Context, stage string) ([]procedure.StepStatus, error) {
	if _, err := o.state(ctx); err != nil {
		return nil, err
	}
	p, first, err := o.procedure(stage)
	if err != nil {
		return nil, err
	}
	steps, _, err := p.Plan(ctx)
	if err != nil {
		return nil, err
	}
	return steps[first:], nil
}

// Run runs stage ("run": every stage, resuming where the journal and the
// configuration say). A single stage is refused, with nothing changed,
// while an earlier stage is not done.
func (o *Options) Run(ctx context.Context, stage string) (*procedure.Record, error) {
	// Bad input is refused before anything runs.
	if _, err := o.state(ctx); err != nil {
		return nil, err
	}
	p, first, err := o.procedure(stage)
	if err != nil {
		return nil, err
	}
	if first > 0 {
		steps, r, err := p.Plan(ctx)
		if err != nil {
			return nil, err
		}
		if rb := r.String(factRollback); rb != "" {
			return nil, fmt.Errorf("a rollback of the %s is in progress: finish it with %s", rb, o.cmd("rollback"))
		}
		for _, s := range steps[:first] {
			if !s.Done {
				stage := o.stageOf(s.Name)
				why := ""
				if stage == StepRewrite {
					why = " (objects may still be stored under the old keys)"
				}
				return nil, fmt.Errorf("%s: the %s is not done%s: run %s first", o.Source, stage, why, o.cmd(stage))
			}
		}
		if stage == StepRetire {
			// The retire's gate, before anything runs: a refusal is one line.
			st, err := o.state(ctx)
			if err != nil {
				return nil, err
			}
			if !retired(st, r) && !r.Marked(StepCheckOld) {
				if err := o.doCheckOld(ctx, st, r); err != nil {
					if o.Journal != nil && len(r.Steps) > 0 {
						// The rewrite must run again: journal it.
						if jerr := o.Journal.Save(ctx, r); jerr != nil {
							return nil, fmt.Errorf("%w (and the journal could not be written: %v)", err, jerr)
						}
					}
					return nil, fmt.Errorf("%s: %w", o.Source, err)
				}
			}
		}
	}
	return p.Run(ctx)
}

// stageOf names the stage (command) whose steps include step.
func (o *Options) stageOf(step string) string {
	stage := StepStage
	for _, s := range o.steps() {
		switch s.Name() {
		case StepPromote, StepRewrite:
			stage = s.Name()
		case StepCheckOld:
			stage = StepRetire
		}
		if s.Name() == step {
			break
		}
	}
	return stage
}
