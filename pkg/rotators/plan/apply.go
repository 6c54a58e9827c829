package plan

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/parallel"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Options of Apply and Undo.
type Options struct {
	Plan    *planspec.Plan
	Clients secret.Clients
	// Namespace is the kubeconfig's, for items and plans that name none.
	Namespace string
	// PlanFile is the plan's file as the user named it, for the undo
	// command in messages; "" says PLAN.yaml.
	PlanFile string
	// On names the cluster in the run's first line ("cluster prod
	// (context ..., server ...)"); "" leaves it out.
	On       string
	By       string
	Progress io.Writer
	Now      func() time.Time
	// Workers is how many items of one phase run at once (0:
	// parallel.DefaultWorkers; 1: one item after another).
	Workers int
}

// run is one plan run: its items in order, and where its journal lives.
type run struct {
	o     Options
	items []*planspec.Item
	// journal is the ConfigMap kube-rotate-plan-NAME; steps that must
	// journal a fact before they act (the kid published, the values'
	// fingerprints before finish) write it through here too.
	journal procedure.Journal
	// tool is the name kubectl-rotate runs as, for the commands suggested.
	tool string
	// indexes are the workloads of each namespace, listed once a run:
	// a plan of 500 items does not list its namespace 500 times.
	indexes map[string]*consumers.Index
	// waves are the items' phases (planspec.Plan.Phases), by name.
	waves map[string]int
	// indexMu guards indexes: items of different lanes finish at once.
	indexMu sync.Mutex
}

// index returns namespace ns's workloads, listing them the first time.
func (pr *run) index(ctx context.Context, ns string) (*consumers.Index, error) {
	pr.indexMu.Lock()
	defer pr.indexMu.Unlock()
	if ix := pr.indexes[ns]; ix != nil {
		return ix, nil
	}
	ix, err := consumers.NewIndex(ctx, pr.o.Clients.Kube, ns)
	if err != nil {
		return nil, err
	}
	if pr.indexes == nil {
		pr.indexes = map[string]*consumers.Index{}
	}
	pr.indexes[ns] = ix
	return ix, nil
}

func newRun(ctx context.Context, o Options) (*run, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Workers == 0 {
		o.Workers = parallel.DefaultWorkers
	}
	// Items of one phase run side by side: their lines must not mix.
	o.Progress = parallel.SyncWriter(o.Progress)
	// The items phase by phase (a valid order: planspec.Plan.Phases),
	// so that the items of a phase are consecutive steps the engine runs
	// side by side.
	phases, err := o.Plan.Phases()
	if err != nil {
		return nil, err
	}
	var items []*planspec.Item
	waves := map[string]int{}
	for w, phase := range phases {
		for _, it := range phase {
			items = append(items, it)
			waves[it.Name] = w
		}
	}
	ns := o.Plan.Spec.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	name := o.Plan.Metadata.Name
	return &run{o: o, tool: display.KubectlRotate(ctx), items: items, waves: waves, journal: &procedure.ConfigMapJournal{Client: o.Clients.Kube, Namespace: ns,
		Name: JournalName(name), Labels: map[string]string{PlanLabel: name}, Legacy: readLegacy}}, nil
}

// undoCommand is what rolls the run back, as the user types it.
func (pr *run) undoCommand() string {
	file := pr.o.PlanFile
	if file == "" {
		return pr.tool + " undo -f PLAN.yaml"
	}
	if strings.ContainsAny(file, " \t'\"$`\\;&|<>()*?[]#~") {
		file = "'" + strings.ReplaceAll(file, "'", `'\''`) + "'"
	}
	return pr.tool + " undo -f " + file
}

// step is one step of the run; item is nil for start and restart.
type step struct {
	procedure.Func
	item  *planspec.Item
	short string // create, set, test, finish (or start, restart)
	// wave and lane place an item's step on the engine (procedure.Laned):
	// the items of one phase (planspec.Plan.Phases) run side by side, the
	// items of one Secret one after another, in one lane.
	wave int
	lane string
}

// laned is an item's step, which runs beside the other items' of its
// phase.
type laned struct{ *step }

// Lane implements procedure.Laned.
func (l laned) Lane() (int, string) { return l.wave, l.lane }

// stepOf returns the run's step behind an engine step.
func stepOf(s procedure.Step) *step {
	if l, ok := s.(laned); ok {
		return l.step
	}
	return s.(*step)
}

// procedure is the run on the engine: start, each item's create, set,
// test and finish in plan order, then (restart: coalesced) the restart of
// every consumer once.
func (pr *run) procedure() *procedure.Procedure {
	steps := []procedure.Step{pr.startStep()}
	for _, it := range pr.items {
		var its []*step
		ns, secretName := it.Namespace(pr.o.Namespace), it.SecretName()
		if it.JWKS != nil {
			its = (&keySetItem{pr: pr, it: it}).steps()
			secretName = it.JWKS.Secret
		} else {
			its = (&secretItem{pr: pr, it: it, ns: ns}).steps()
		}
		for _, s := range its {
			s.wave, s.lane = pr.waves[it.Name], ns+"/"+secretName
			steps = append(steps, laned{s})
		}
	}
	if pr.o.Plan.Spec.Restart == planspec.RestartCoalesced {
		steps = append(steps, pr.restartStep())
	}
	return &procedure.Procedure{Name: "plan " + pr.o.Plan.Metadata.Name, Steps: steps, Journal: pr.journal,
		UndoCommand: pr.undoCommand(), KeepJournal: true, Progress: pr.o.Progress, Now: pr.o.Now, Workers: pr.o.Workers}
}

// Apply runs every item of the plan through create, set, test and finish
// on the procedure engine, then restarts the consumers of every changed
// Secret once (coalesced). A re-run resumes at the first step whose
// effect is missing; a finished run is reported, not repeated.
func Apply(ctx context.Context, o Options) (*Journal, error) {
	pr, err := newRun(ctx, o)
	if err != nil {
		return nil, err
	}
	return pr.apply(ctx, pr.procedure())
}

func (pr *run) apply(ctx context.Context, proc *procedure.Procedure) (*Journal, error) {
	p := pr.o.Plan
	rec, err := pr.journal.Load(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		if err := Preflight(ctx, pr.o.Clients.Kube, p, pr.o.Namespace); err != nil {
			return nil, err
		}
	case rec.String(factFingerprint) != p.Fingerprint():
		return view(p, rec), fmt.Errorf("plan %s changed since rotation %s started: apply the plan it started with, or undo it (%s) first",
			p.Metadata.Name, rec.String(factRotationID), pr.undoCommand())
	default:
		statuses, rec, err := proc.Plan(ctx)
		if err != nil {
			return view(p, rec), err
		}
		done := true
		for _, s := range statuses {
			done = done && s.Done
		}
		if done {
			fmt.Fprintf(pr.o.Progress, "plan %s: rotation %s already finished (%s); nothing to do: `%s` rolls it back\n",
				p.Metadata.Name, rec.String(factRotationID), rec.Updated.Format(time.RFC3339), pr.undoCommand())
			return view(p, rec), nil
		}
		fmt.Fprintf(pr.o.Progress, "plan %s: resuming rotation %s\n", p.Metadata.Name, rec.String(factRotationID))
	}
	rec, err = proc.Run(ctx)
	if err == nil {
		fmt.Fprintf(pr.o.Progress, "plan %s: rotation %s complete\n", p.Metadata.Name, rec.String(factRotationID))
	}
	return view(p, rec), err
}

// checkpoint writes the journal in the middle of a step, for a fact that
// must be kept before the step acts on it.
func (pr *run) checkpoint(ctx context.Context, r *procedure.Record) error {
	return r.Checkpoint(ctx)
}

// started reports whether the run has a rotation id: before start, no
// step of the run can be done.
func started(r *procedure.Record) bool { return r.String(factRotationID) != "" }

// startStep names the rotation. The journal cannot be derived from the
// objects: the id is in it. Undoing the start is the last step of an undo:
// the consumers of every Secret the undo restored restart once
// (coalesced).
func (pr *run) startStep() *step {
	p := pr.o.Plan
	return &step{short: StepStart, Func: procedure.Func{StepName: StepStart,
		What:     "name the rotation (its id keys the pending companions and hook Jobs) and start the journal in configmap/" + JournalName(p.Metadata.Name),
		DoneFunc: func(_ context.Context, r *procedure.Record) (bool, error) { return started(r), nil },
		DoFunc: func(_ context.Context, r *procedure.Record) error {
			id := NewRotationID(pr.o.Now())
			for k, v := range map[string]string{factPlan: p.Metadata.Name, factFingerprint: p.Fingerprint(), factRotationID: id} {
				if err := r.Put(k, v); err != nil {
					return err
				}
			}
			on := ""
			if pr.o.On != "" {
				on = " on " + pr.o.On
			}
			fmt.Fprintf(pr.o.Progress, "plan %s: rotation %s started%s\n", p.Metadata.Name, id, on)
			return nil
		},
		UndoFunc: func(ctx context.Context, r *procedure.Record) error {
			if p.Spec.Restart != planspec.RestartCoalesced {
				return nil
			}
			var names []string
			if _, err := r.Get(factRestored, &names); err != nil {
				return err
			}
			var restored []*planspec.Item
			for _, it := range pr.items {
				for _, n := range names {
					if n == it.Name {
						restored = append(restored, it)
					}
				}
			}
			_, err := restartCoalesced(ctx, pr.o, restored)
			return err
		},
	}}
}

// restartStep restarts every workload reading a changed key once, after
// the last finish. A restart cannot be seen on the objects: it is
// journaled, and a finish that runs again clears it.
func (pr *run) restartStep() *step {
	return &step{short: StepRestart, Func: procedure.Func{StepName: StepRestart,
		What: "restart every workload reading a changed key, once, and wait until they are healthy",
		DoneFunc: func(_ context.Context, r *procedure.Record) (bool, error) {
			return started(r) && r.Marked(StepRestart), nil
		},
		DoFunc: func(ctx context.Context, r *procedure.Record) error {
			restarted, err := restartCoalesced(ctx, pr.o, pr.items)
			if ferr := appendFact(r, factRestarts, restarted...); ferr != nil && err == nil {
				err = ferr
			}
			return err
		},
	}}
}

// restartCoalesced restarts every workload that reads a changed key once,
// after all writes, and waits for them.
func restartCoalesced(ctx context.Context, o Options, items []*planspec.Item) ([]string, error) {
	byNS := map[string]map[string][]string{}
	for _, it := range items {
		ns := it.Namespace(o.Namespace)
		if byNS[ns] == nil {
			byNS[ns] = map[string][]string{}
		}
		byNS[ns][it.SecretName()] = append(byNS[ns][it.SecretName()], it.Keys()...)
	}
	namespaces := make([]string, 0, len(byNS))
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	var all []consumers.Workload
	for _, ns := range namespaces {
		ix, err := consumers.NewIndex(ctx, o.Clients.Kube, ns)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		secrets := make([]string, 0, len(byNS[ns]))
		for s := range byNS[ns] {
			secrets = append(secrets, s)
		}
		sort.Strings(secrets)
		for _, secret := range secrets {
			for _, w := range ix.UsersOf(secret, byNS[ns][secret]) {
				if id := w.Kind + "/" + w.Name; !seen[id] {
					seen[id] = true
					all = append(all, w)
				}
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return consumers.RestartAndWait(ctx, o.Clients.Kube, o.Clients.Dynamic, all, o.Progress, o.Plan.Spec.Timeout.Duration)
}

// deliveries are where the item's hashed tokens go.
func deliveries(it *planspec.Item, pend *Pending) []Delivery {
	h := it.Secret.Hashed
	if h == nil {
		return nil
	}
	name, key, _ := h.DeliverTo()
	return []Delivery{{Secret: name, Key: key, Token: pend.Tokens[h.Key]}}
}

func jobNote(job string) string {
	if job == "" {
		return ""
	}
	return " (job " + job + ", deleted)"
}
