package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/delivery"
	"github.com/kube-rotate/kube-rotate/pkg/display"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/parallel"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// planned is one Secret's rotation, worked out before any write.
type planned struct {
	secret *corev1.Secret
	// companion is NAME-previous as read at planning (nil: none), until
	// keep-previous writes it.
	companion *corev1.Secret
	newData   map[string][]byte // changed keys only
	oldData   map[string][]byte // previous values of changed keys that existed
	created   []string          // keys that did not exist
	resumed   bool
	keys      []string // changed (or, when resumed, recorded) keys
	result    SecretResult
}

// Rotate rotates the Secrets of o as a procedure on the engine
// (pkg/procedure): every Secret is read and planned first (any bad input
// stops the run there, before a write), then the steps run in order:
//
//  1. keep-previous: NAME-previous holds the values about to change;
//  2. write: the new values and the records, phase written, with the
//     resourceVersion read at planning as precondition;
//  3. restart: each consuming workload once;
//  4. wait: until they are healthy;
//  5. complete: phase complete.
//
// State: steps 1, 2 and 5 are read from the objects (the companion's
// generation and data, the Secret's generation and phase annotations);
// step 3's restarts are journaled (JournalAnnotation on the first Secret,
// see secretJournal) for the write they were made for; step 4 is read
// again by waiting. A re-run of a run killed after its write resumes at
// the first step not done: it never writes other values, and never
// restarts a workload the journal says was restarted for these values.
func Rotate(ctx context.Context, c Clients, o Options) (*Result, error) {
	if o.DryRun == DryRunClient {
		res, _, err := Plan(ctx, c, o)
		return res, err
	}
	rt, err := newRotation(ctx, c, o)
	if err != nil {
		return nil, err
	}
	return rt.run(ctx)
}

// Plan is Rotate's client dry run: what Rotate would do (the Result), and
// the procedure's steps (procedure.Procedure.Plan), each with whether it is
// done already (a run to resume). Nothing is written.
func Plan(ctx context.Context, c Clients, o Options) (*Result, []procedure.StepStatus, error) {
	o.DryRun = DryRunClient
	rt, err := newRotation(ctx, c, o)
	if err != nil {
		return nil, nil, err
	}
	steps, _, err := rt.procedure(ctx).Plan(ctx)
	if err != nil {
		return nil, nil, err
	}
	return rt.res, steps, nil
}

// rotation is one run of Rotate: the plans, and what the steps share.
type rotation struct {
	o       *Options
	c       Clients
	plans   []*planned
	targets []consumers.Workload
	res     *Result
	journal *secretJournal
	// index is the workloads as listed at planning: restarts are
	// computed from these objects, not read again.
	index *consumers.Index
	// written names the Secrets whose new values are in place (resumed or
	// written by this run), for the undo command of a failed write.
	written []string
	// readers are, by Secret, the targets whose healthy rollout proves
	// its new values: the restarted workloads reading its changed keys,
	// and every --restart-target.
	readers map[string][]consumers.Workload
}

func newRotation(ctx context.Context, c Clients, o Options) (*rotation, error) {
	o.defaults()
	res := &Result{TypeMeta: typeMeta(KindRotation), Phase: PhasePlanned}
	if o.DryRun != DryRunNone {
		res.DryRun = string(o.DryRun)
	}
	if len(o.Secrets) == 0 {
		return nil, errors.New("no Secret named: give one or more names, or -l SELECTOR")
	}
	if len(o.Changes) == 0 {
		return nil, errors.New("nothing to change: give --key with --generate, --from-file, --from-stdin, --url-password or --json-field")
	}

	// Read and plan everything; any bad input stops here, before a write.
	rt := &rotation{o: &o, c: c, res: res}
	sn, err := readSnapshot(ctx, c.Kube, o.Namespace, o.Secrets, o.KeepPrevious, o.Workers)
	if err != nil {
		return nil, err
	}
	first, err := sn.get(ctx, o.Secrets[0])
	if err != nil {
		return nil, err
	}
	// The first Secret holds the journal and is recorded complete in the
	// write that removes it: only the others can be complete and named.
	interrupted := interruptedWrites(first, rt.name())
	delete(interrupted, o.Secrets[0])
	for _, name := range o.Secrets {
		p, err := o.plan(ctx, c, sn, name, interrupted)
		if err != nil {
			return nil, err
		}
		rt.plans = append(rt.plans, p)
		res.Secrets = append(res.Secrets, p.result)
	}
	if err := checkTargets(ctx, c, o.Namespace, o.ExtraTargets); err != nil {
		return nil, err
	}
	ix := o.Index
	if ix == nil {
		if ix, err = consumers.NewIndex(ctx, c.Kube, o.Namespace); err != nil {
			return nil, err
		}
	}
	rt.index = ix
	rt.targets = collectTargets(ix, rt.plans, o.ExtraTargets, o.Restart, res)
	rt.readers = readersOf(ix, rt.plans, rt.targets, o.ExtraTargets)
	rt.journal = newSecretJournal(c.Kube, o.Namespace, o.Secrets[0], rt.name(), StepRestart)
	if o.DryRun == DryRunNone {
		// The journal's reads and writes of the first Secret start from,
		// and leave their result in, the rotation's plan of it.
		rt.journal.obj = &rt.plans[0].secret
	}
	return rt, nil
}

func (rt *rotation) name() string {
	return fmt.Sprintf("rotate %s -n %s", refs(rt.o.Secrets), rt.o.Namespace)
}

// undoCommands are the commands that put the previous values of names
// back (none for a Secret whose previous values were not kept).
func (rt *rotation) undoCommands(ctx context.Context, names []string) string {
	var cmds []string
	for _, p := range rt.plans {
		for _, n := range names {
			if p.secret.Name == n && p.result.Previous != "" {
				cmds = append(cmds, UndoCommand(ctx, rt.o.Namespace, n))
			}
		}
	}
	return strings.Join(cmds, " && ")
}

// procedure is the rotation on the engine. A server dry run is the first
// two steps with dryRun=All and no journal.
func (rt *rotation) procedure(ctx context.Context) *procedure.Procedure {
	o := rt.o
	rs := &restarts{c: rt.c, secrets: inNamespace(o.Namespace, o.Secrets...), enabled: o.Restart,
		targets: func() []consumers.Workload { return rt.targets }, timeout: o.Timeout, progress: o.Progress,
		res: rt.res, journal: rt.journal, proc: rt.name(), now: o.Now,
		current: rt.current, index: rt.index, workers: o.Workers, readers: rt.readers}
	p := &procedure.Procedure{Name: rt.name(), Journal: rt.journal, UndoCommand: rt.undoCommands(ctx, o.Secrets),
		Progress: o.Progress, Now: o.Now,
		Steps: []procedure.Step{rt.keepPreviousStep(), rt.writeStep(), rs.restartStep(), rs.waitStep(),
			rs.completeStep("record phase complete on " + refs(o.Secrets))}}
	if o.DryRun == DryRunServer {
		p.Steps, p.Journal = p.Steps[:2], nil
	}
	return p
}

func (rt *rotation) keepPreviousStep() procedure.Step {
	o := rt.o
	s := &procedure.Func{StepName: StepKeepPrevious, What: "keep the values about to change in NAME-previous (" + refs(companions(o.Secrets)) + ")",
		// Derived from the companions read at planning: one that holds
		// this generation's previous values was written by a run that
		// stopped after it.
		DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
			if o.DryRun == DryRunServer {
				return false, nil // the API server checks every write
			}
			for _, p := range rt.plans {
				if !p.resumed && !companionHolds(p.companion, p) {
					return false, nil
				}
			}
			return true, nil
		},
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			now := o.Now().UTC().Truncate(time.Second)
			return parallel.ForEach(ctx, len(rt.plans), o.Workers, func(ctx context.Context, i int) error {
				p := rt.plans[i]
				if p.resumed || o.DryRun == DryRunNone && companionHolds(p.companion, p) {
					return nil
				}
				return o.writeCompanion(ctx, rt.c, p, now, o.dryRunOpt())
			})
		},
	}
	if !o.KeepPrevious {
		s.What = "previous values not kept (--no-keep-previous)"
		s.DoneFunc = func(context.Context, *procedure.Record) (bool, error) { return true, nil }
	}
	return s
}

func companions(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = CompanionName(n)
	}
	return out
}

func (rt *rotation) writeStep() procedure.Step {
	o := rt.o
	return &procedure.Func{StepName: StepWrite, What: "write the new values and the records (phase written) to " + refs(o.Secrets) + ", guarded by the resourceVersion read",
		// Derived from the Secrets read at planning: the ones an
		// interrupted run wrote are resumed (phase written or failed).
		DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
			if o.DryRun == DryRunServer {
				return false, nil
			}
			for _, p := range rt.plans {
				if !p.resumed {
					return false, nil
				}
			}
			return true, nil
		},
		DoFunc: func(ctx context.Context, _ *procedure.Record) error {
			out := parallel.NewOrdered(o.Progress)
			defer out.Flush()
			wrote := make([]bool, len(rt.plans))
			err := parallel.ForEach(ctx, len(rt.plans), o.Workers, func(ctx context.Context, i int) error {
				defer out.Done(i)
				p := rt.plans[i]
				if p.resumed {
					return nil
				}
				if err := o.write(ctx, rt.c, p, out.Item(i)); err != nil {
					return err
				}
				wrote[i] = true
				return nil
			})
			// In the plans' order, whatever the order of the writes: only
			// what was written can be undone.
			for i, p := range rt.plans {
				if wrote[i] {
					rt.written = append(rt.written, p.secret.Name)
					rt.res.Secrets[i] = p.result
				}
			}
			return err
		},
	}
}

// current returns the rotated Secrets as this run last read or wrote
// them, by name: the restart step derives the writes it restarts for from
// them instead of reading every Secret again.
func (rt *rotation) current() map[string]*corev1.Secret {
	m := make(map[string]*corev1.Secret, len(rt.plans))
	for _, p := range rt.plans {
		m[p.secret.Name] = p.secret
	}
	return m
}

func (rt *rotation) run(ctx context.Context) (*Result, error) {
	o, res := rt.o, rt.res
	writes := false
	for _, p := range rt.plans {
		writes = writes || !p.resumed
		if p.resumed {
			rt.written = append(rt.written, p.secret.Name)
		}
	}
	acting(o, "rotating")
	var handedOver *delivery.Delivered
	if h := o.Handover; writes && o.DryRun == DryRunNone && h != nil {
		d, err := delivery.Deliver(ctx, rt.c.Kube, h.Target, h.Token)
		if err != nil {
			return nil, err
		}
		handedOver = d
	}
	for _, p := range rt.plans {
		if p.resumed {
			fmt.Fprintf(o.Progress, "secret/%s: resuming generation %d: new values were already written by an interrupted run\n", p.secret.Name, p.result.Generation)
		}
	}
	proc := rt.procedure(ctx)
	rec, err := proc.Run(ctx)
	res.Restarted = append(res.Restarted, restartedIn(rec)...)
	var serr *procedure.StepError
	failed := ""
	if errors.As(err, &serr) {
		failed = serr.Step
	}
	if err == nil || failed != "" && failed != StepKeepPrevious && failed != StepWrite {
		for _, p := range rt.plans {
			res.Undo = append(res.Undo, UndoCommand(ctx, o.Namespace, p.secret.Name))
		}
	}
	if err == nil {
		return res, nil
	}
	switch failed {
	case StepKeepPrevious, StepWrite:
		if len(rt.written) == 0 && handedOver != nil {
			errOut := o.Handover.ErrOut
			if errOut == nil {
				errOut = io.Discard
			}
			handedOver.TakeBack(ctx, rt.c.Kube, errOut)
		}
		// Only what was written can be undone.
		serr.UndoCommand = rt.undoCommands(ctx, rt.written)
		return res, serr
	case StepWait:
		var we *consumers.WaitError
		if !errors.As(err, &we) || !o.UndoOnFailure {
			return res, err
		}
	default:
		return res, err
	}
	waitErr := serr.Err
	fmt.Fprintf(o.Progress, "rollout failed; restoring the previous values (--undo-on-failure)\n")
	var stillBad []string
	for _, p := range rt.plans {
		ur, err := Undo(ctx, rt.c, UndoOptions{Namespace: o.Namespace, Name: p.secret.Name, Restart: true, Timeout: o.Timeout,
			By: o.By, Now: o.Now, Progress: o.Progress})
		if err != nil && (ur == nil || ur.Phase != PhaseFailed) {
			var userr *procedure.StepError
			if errors.As(err, &userr) {
				err = userr.Err
			}
			return res, fmt.Errorf("%w; undo after the failed rollout also failed: %v: put the previous values back with %s", waitErr, err, UndoCommand(ctx, o.Namespace, p.secret.Name))
		}
		if ur != nil {
			for _, u := range ur.Unhealthy {
				stillBad = append(stillBad, u.Workload.Ref())
			}
		}
	}
	res.Phase = PhaseUndone
	if len(stillBad) > 0 {
		return res, fmt.Errorf("%w; the previous values were restored, but %s still did not become healthy: the failure is not caused by the new values", waitErr, strings.Join(stillBad, ", "))
	}
	return res, fmt.Errorf("%w; the previous values were restored", waitErr)
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.PreviousTTL == 0 {
		o.PreviousTTL = DefaultPrevious
	}
	if o.Timeout == 0 {
		o.Timeout = consumers.DefaultTimeout
	}
	if o.DryRun == "" {
		o.DryRun = DryRunNone
	}
}

// plan reads one Secret, checks it can be rotated and computes its new values.
//
// interrupted are the writes of this rotation the journal names: a Secret
// recorded complete with the write named there is one an interrupted run
// of this rotation wrote and recorded, and is resumed, not rotated again.
func (o *Options) plan(ctx context.Context, c Clients, sn *snapshot, name string, interrupted map[string]string) (*planned, error) {
	s, err := sn.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, describeAPIError(apierrors.NewNotFound(corev1.Resource("secrets"), name), "get", "secret/"+name, o.Namespace)
	}
	if err := o.refuseOperatorKeys(ctx, c, s); err != nil {
		return nil, err
	}
	gen, err := v1alpha1.GenerationOf(s.Annotations)
	if err != nil {
		return nil, fmt.Errorf("secret/%s: %w: fix or remove the annotation", name, err)
	}
	p := &planned{secret: s, newData: map[string][]byte{}, oldData: map[string][]byte{}}
	p.result = SecretResult{Namespace: s.Namespace, Name: s.Name}
	if o.KeepPrevious {
		if p.companion, err = sn.get(ctx, CompanionName(name)); err != nil {
			return nil, err
		}
	}
	if w := helmWarning(s); w != "" {
		p.result.Warnings = append(p.result.Warnings, w)
		fmt.Fprintf(o.Progress, "Warning: %s\n", w)
	}

	// An interrupted run wrote the values but did not see consumers healthy:
	// resume it instead of generating again.
	ph := s.Annotations[v1alpha1.Phase]
	if ph == v1alpha1.PhaseWritten || ph == v1alpha1.PhaseFailed || ph == v1alpha1.PhaseComplete && interrupted[name] != "" && interrupted[name] == writeID(s) {
		p.resumed = true
		p.keys = splitKeys(s.Annotations[v1alpha1.Keys])
		p.result.Resumed = true
		p.result.Generation = gen
		p.result.Previous = s.Annotations[v1alpha1.Previous]
		fps := map[string]string{}
		_ = jsonUnmarshal(s.Annotations[v1alpha1.Fingerprints], &fps)
		for _, k := range p.keys {
			p.result.Keys = append(p.result.Keys, KeyChange{Key: k, New: fps[k]})
		}
		return p, nil
	}

	if ptr.Deref(s.Immutable, false) {
		return nil, fmt.Errorf("secret/%s is immutable: its data cannot change; create a new Secret and point the workloads at it", name)
	}
	for _, ch := range o.Changes {
		old, exists := s.Data[ch.Key]
		if !exists && s.StringData != nil {
			_, exists = s.StringData[ch.Key]
		}
		if !exists && !o.CreateKeys {
			return nil, fmt.Errorf("secret/%s has no key %q (keys: %s): check the name, or pass --create-key to add it", name, ch.Key, strings.Join(sortedKeys(s.Data), ", "))
		}
		v, err := ch.Make(old, exists)
		if err != nil {
			return nil, fmt.Errorf("secret/%s key %s: %w", name, ch.Key, err)
		}
		p.newData[ch.Key] = v
		p.keys = append(p.keys, ch.Key)
		kc := KeyChange{Key: ch.Key, Source: ch.Source, New: values.Fingerprint(v), Created: !exists}
		if ch.Generated && o.DryRun == DryRunClient {
			kc.New = "(generated)"
		}
		if exists {
			p.oldData[ch.Key] = old
			kc.Old = values.Fingerprint(old)
		} else {
			p.created = append(p.created, ch.Key)
		}
		p.result.Keys = append(p.result.Keys, kc)
	}
	p.result.Generation = gen + 1
	if o.KeepPrevious {
		if err := checkCompanionOf(ctx, p.companion, s, p.result.Generation, o.ReplacePrevious, o.Now(), "pass --replace-previous"); err != nil {
			return nil, err
		}
		p.result.Previous = CompanionName(name)
		exp := metav1.NewTime(o.Now().Add(o.PreviousTTL).UTC().Truncate(time.Second))
		p.result.ExpiresAt = &exp
	}
	return p, nil
}

// dryRunOpt is the API's dryRun option for o.DryRun.
func (o *Options) dryRunOpt() []string {
	if o.DryRun == DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// write stores the new values in the Secret, with the Secret's read
// resourceVersion as precondition (the previous values are in the
// companion already: step keep-previous).
func (o *Options) write(ctx context.Context, c Clients, p *planned, progress io.Writer) error {
	s := p.secret.DeepCopy()
	now := o.Now().UTC().Truncate(time.Second)
	dryRun := o.dryRunOpt()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range p.newData {
		s.Data[k] = v
		delete(s.StringData, k)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	fps := map[string]string{}
	for _, kc := range p.result.Keys {
		fps[kc.Key] = kc.New
	}
	entry := v1alpha1.Entry{Time: metav1.NewTime(now), Action: v1alpha1.ActionRotate, Generation: p.result.Generation, Keys: fps, By: o.By}
	if err := v1alpha1.Apply(s.Annotations, entry, v1alpha1.PhaseWritten); err != nil {
		return fmt.Errorf("secret/%s: %w", s.Name, err)
	}
	if o.Method != "" {
		s.Annotations[v1alpha1.Method] = o.Method
	}
	if o.KeepPrevious {
		s.Annotations[v1alpha1.Previous] = CompanionName(s.Name)
	} else {
		delete(s.Annotations, v1alpha1.Previous)
	}
	updated, err := c.Kube.CoreV1().Secrets(o.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: dryRun})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("secret/%s changed while it was being rotated (resourceVersion %s is stale): nothing was written to it", s.Name, s.ResourceVersion)
		}
		return describeAPIError(err, "update", "secret/"+s.Name, o.Namespace)
	}
	if o.DryRun == DryRunNone {
		p.secret = updated
		fmt.Fprintf(progress, "secret/%s: %s changed (generation %d)%s\n", s.Name, strings.Join(p.keys, ", "), p.result.Generation, previousNote(p.result))
	}
	return nil
}

func previousNote(r SecretResult) string {
	if r.Previous == "" {
		return "; previous values not kept"
	}
	return "; previous values in secret/" + r.Previous
}

// companionHolds reports whether comp (NAME-previous; nil: none) holds
// what p's keep-previous writes: p's generation, the values about to
// change and the keys p creates (a run stopped between the companion and
// the write left it so).
func companionHolds(comp *corev1.Secret, p *planned) bool {
	return comp != nil && comp.Labels[v1alpha1.CompanionOf] == p.secret.Name &&
		comp.Annotations[v1alpha1.Generation] == fmt.Sprint(p.result.Generation) &&
		comp.Annotations[CreatedKeys] == strings.Join(p.created, ",") &&
		equalData(comp.Data, p.oldData)
}

// checkCompanionOf refuses, at planning, a NAME-previous (comp; nil:
// none) whose replacement would stop the run or lose values:
//   - one that is not this Secret's companion;
//   - one that still holds values of an earlier rotation that was not
//     finished: values the Secret no longer has, kept until an expires-at
//     still to come. "Keep the old value until the new one is proven"
//     holds across rotations: replacing them needs replace
//     (--replace-previous); replaceHint says how its user asks for it.
//
// A companion of generation gen is this rotation's own, left by a run that
// stopped after writing it; one that holds only the Secret's current
// values (after an undo, say) loses nothing when replaced.
func checkCompanionOf(ctx context.Context, comp, s *corev1.Secret, gen int64, replace bool, now time.Time, replaceHint string) error {
	if comp == nil {
		return nil
	}
	name := comp.Name
	if comp.Labels[v1alpha1.CompanionOf] != s.Name {
		return foreignCompanion(name, s.Name)
	}
	if replace || comp.Annotations[v1alpha1.Generation] == fmt.Sprint(gen) {
		return nil
	}
	exp, err := time.Parse(time.RFC3339, comp.Annotations[v1alpha1.ExpiresAt])
	if err == nil && !now.Before(exp) {
		return nil
	}
	var only []string
	for _, k := range sortedKeys(comp.Data) {
		if cur, ok := s.Data[k]; !ok || string(cur) != string(comp.Data[k]) {
			only = append(only, k)
		}
	}
	if len(only) == 0 {
		return nil
	}
	until := "with no expires-at"
	if err == nil {
		until = "until " + exp.Format(time.RFC3339)
	}
	return fmt.Errorf("secret/%s still holds the values of %s from before rotation %s of secret/%s, kept %s and not finished: run `%s finish secret/%s -n %s` once nothing needs them, or %s to drop them",
		name, strings.Join(only, ", "), comp.Annotations[v1alpha1.Generation], s.Name, until, display.KubectlRotate(ctx), s.Name, s.Namespace, replaceHint)
}

// CheckCompanion is checkCompanionOf for a rotation of generation gen
// that other code starts (a plan): it reads NAME-previous and returns it
// (nil: none).
// CheckCompanionOf is CheckCompanion for a companion read already (comp,
// nil when there is none).
func CheckCompanionOf(ctx context.Context, comp, s *corev1.Secret, gen int64, replace bool, now time.Time, replaceHint string) error {
	return checkCompanionOf(ctx, comp, s, gen, replace, now, replaceHint)
}

func CheckCompanion(ctx context.Context, kc kubernetes.Interface, s *corev1.Secret, gen int64, replace bool, now time.Time, replaceHint string) (*corev1.Secret, error) {
	name := CompanionName(s.Name)
	comp, err := kc.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+name, s.Namespace)
	}
	if err := checkCompanionOf(ctx, comp, s, gen, replace, now, replaceHint); err != nil {
		return nil, err
	}
	return comp, nil
}

func foreignCompanion(name, of string) error {
	return fmt.Errorf("secret/%s exists but is not kube-rotate's copy of secret/%s's previous values: rename it, or rotate with --no-keep-previous", name, of)
}

// writeCompanion creates or replaces NAME-previous with the values the
// Secret holds now. It refuses to touch a Secret of that name that is not
// this Secret's companion.
func (o *Options) writeCompanion(ctx context.Context, c Clients, p *planned, now time.Time, dryRun []string) error {
	src := p.secret
	name := CompanionName(src.Name)
	comp := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: src.Namespace,
			Labels:    map[string]string{v1alpha1.CompanionOf: src.Name, v1alpha1.ManagedByLabel: v1alpha1.ManagedBy},
			Annotations: map[string]string{
				v1alpha1.Source:     src.Name,
				v1alpha1.RotatedAt:  now.Format(time.RFC3339),
				v1alpha1.ExpiresAt:  p.result.ExpiresAt.Format(time.RFC3339),
				v1alpha1.Generation: fmt.Sprint(p.result.Generation),
				v1alpha1.Keys:       strings.Join(sortedKeys(p.oldData), ","),
				CreatedKeys:         strings.Join(p.created, ","),
			},
			// Deleted with its source Secret.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: src.Name, UID: src.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: p.oldData,
	}
	secrets := c.Kube.CoreV1().Secrets(src.Namespace)
	existing := p.companion
	if existing == nil {
		created, err := secrets.Create(ctx, comp, metav1.CreateOptions{FieldManager: FieldManager, DryRun: dryRun})
		if err == nil {
			if len(dryRun) == 0 {
				p.companion = created
			}
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return describeAPIError(err, "create", "secret/"+name, src.Namespace)
		}
		// Created since planning: by whom decides.
		if existing, err = secrets.Get(ctx, name, metav1.GetOptions{}); err != nil {
			return describeAPIError(err, "get", "secret/"+name, src.Namespace)
		}
		if companionHolds(existing, p) {
			p.companion = existing
			return nil
		}
	}
	if existing.Labels[v1alpha1.CompanionOf] != src.Name {
		return foreignCompanion(name, src.Name)
	}
	comp.ResourceVersion = existing.ResourceVersion
	updated, err := secrets.Update(ctx, comp, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: dryRun})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("secret/%s changed while it was being written: nothing was rotated; re-run the command", name)
		}
		return describeAPIError(err, "update", "secret/"+name, src.Namespace)
	}
	if len(dryRun) == 0 {
		p.companion = updated
	}
	return nil
}

// CreatedKeys on a companion lists keys the rotation added, so undo removes them.
const CreatedKeys = v1alpha1.CreatedKeys

// collectTargets finds the consumers of every changed key and returns the
// restartable ones, each once, plus the extra targets. With restart off,
// the consumers are listed as not restarted, with why. res.Consumers is an
// empty list, not null, when nothing reads the keys.
func collectTargets(ix *consumers.Index, plans []*planned, extra []consumers.Workload, restart bool, res *Result) []consumers.Workload {
	if res.Consumers == nil {
		res.Consumers = []consumers.Workload{}
	}
	seen := map[string]bool{}
	var targets []consumers.Workload
	for _, p := range plans {
		for _, w := range ix.UsersOf(p.secret.Name, p.keys) {
			id := w.Kind + "/" + w.Namespace + "/" + w.Name
			if seen[id] {
				continue
			}
			seen[id] = true
			if w.Restart && !restart {
				w.Restart, w.Note = false, "restarts are off in this run"
			}
			res.Consumers = append(res.Consumers, w)
			if w.Restart {
				targets = append(targets, w)
			}
		}
	}
	for _, w := range extra {
		id := w.Kind + "/" + w.Namespace + "/" + w.Name
		if seen[id] {
			continue
		}
		seen[id] = true
		w.Restart = true
		w.Note = "named with --restart-target"
		res.Consumers = append(res.Consumers, w)
		targets = append(targets, w)
	}
	return targets
}

// readersOf returns, by Secret, the targets that read its changed keys,
// and the extra targets (named by the user, for every Secret).
func readersOf(ix *consumers.Index, plans []*planned, targets, extra []consumers.Workload) map[string][]consumers.Workload {
	id := func(w consumers.Workload) string { return w.Kind + "/" + w.Namespace + "/" + w.Name }
	restarted := map[string]bool{}
	for _, w := range targets {
		restarted[id(w)] = true
	}
	out := make(map[string][]consumers.Workload, len(plans))
	for _, p := range plans {
		rs := []consumers.Workload{}
		for _, w := range ix.UsersOf(p.secret.Name, p.keys) {
			if restarted[id(w)] {
				rs = append(rs, w)
			}
		}
		out[p.secret.Name] = append(rs, extra...)
	}
	return out
}

// refuseOperatorKeys refuses to change keys the External Secrets
// operator writes: its next sync would overwrite them. With creationPolicy
// Owner or Orphan that is every key; with Merge, the keys its field
// manager holds, so the Secret's other keys can still be rotated here.
func (o *Options) refuseOperatorKeys(ctx context.Context, c Clients, s *corev1.Secret) error {
	src, err := externalsecrets.Find(ctx, c.Dynamic, s)
	if err != nil || src == nil {
		return err
	}
	fix := fmt.Sprintf("change the value in the secret store and run `%s secret %s -n %s --force-sync`", display.KubectlRotate(ctx), s.Name, s.Namespace)
	if src.CreationPolicy != externalsecrets.Merge {
		return fmt.Errorf("secret/%s is written by %s (external-secrets.io, creationPolicy %s): a change here would be overwritten; %s", s.Name, src.Ref(), src.CreationPolicy, fix)
	}
	for _, ch := range o.Changes {
		if src.Owns(ch.Key) {
			return fmt.Errorf("key %s of secret/%s is written by %s (external-secrets.io, creationPolicy Merge): a change here would be overwritten; %s, or rotate only the keys it does not write", ch.Key, s.Name, src.Ref(), fix)
		}
	}
	return nil
}

func helmWarning(s *corev1.Secret) string {
	release := s.Annotations["meta.helm.sh/release-name"]
	if release == "" && s.Labels[v1alpha1.ManagedByLabel] != "Helm" {
		return ""
	}
	if release == "" {
		release = "(unknown release)"
	}
	return fmt.Sprintf("secret/%s is managed by Helm release %s: a later `helm upgrade` may overwrite the rotated values; update the chart's values as well", s.Name, release)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func splitKeys(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// equalData reports whether two data maps hold the same values.
func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// checkTargets reads every --restart-target before anything is written: a
// workload that is not there is bad input, refused with nothing changed.
func checkTargets(ctx context.Context, c Clients, namespace string, ws []consumers.Workload) error {
	for _, w := range ws {
		var err error
		switch w.Kind {
		case consumers.KindDeployment:
			_, err = c.Kube.AppsV1().Deployments(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		case consumers.KindStatefulSet:
			_, err = c.Kube.AppsV1().StatefulSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		case consumers.KindDaemonSet:
			_, err = c.Kube.AppsV1().DaemonSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		}
		if err != nil {
			return describeAPIError(err, "get", w.Ref(), namespace)
		}
	}
	return nil
}
