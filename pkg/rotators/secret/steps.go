package secret

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/parallel"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Steps of the procedures (procedure.Step names).
const (
	// StepKeepPrevious writes NAME-previous with the values about to change.
	StepKeepPrevious = "keep-previous"
	// StepWrite writes the new values and the records (phase written).
	StepWrite = "write"
	// StepRestore writes the previous values back (undo; phase written).
	StepRestore = "restore"
	// StepRequestSync sets force-sync on the ExternalSecret.
	StepRequestSync = "request-sync"
	// StepWaitSync waits until the operator has changed the data, and
	// records the change (phase written).
	StepWaitSync = "wait-sync"
	// StepRestart restarts each consumer once (journaled).
	StepRestart = "restart"
	// StepWait waits until the consumers are healthy.
	StepWait = "wait"
	// StepComplete records phase complete.
	StepComplete = "complete"
)

// Journal facts.
const (
	// FactWritten maps each Secret to the write its restarts are for (its
	// UID, generation, rotated-at and fingerprints): restarts journaled for
	// another write are not done for this one.
	FactWritten = "written"
	// FactRestarted lists the workloads restarted for it (kind/name).
	FactRestarted = "restarted"
)

// restarts are the restart and wait steps of a procedure, and the phase
// it records on its Secrets.
type restarts struct {
	c Clients
	// secrets the procedure wrote; the first one holds the journal (a
	// journaled procedure writes in one namespace).
	secrets []types.NamespacedName
	// enabled is --restart=rollout.
	enabled bool
	// targets returns the workloads to restart, each once.
	targets  func() []consumers.Workload
	timeout  time.Duration
	progress io.Writer
	res      *Result
	// journal keeps the restarts done; nil keeps them in memory for the
	// run only.
	journal *secretJournal
	// proc names the procedure, for messages.
	proc string
	now  func() time.Time
	// current, if set, returns the procedure's Secrets as it last read
	// or wrote them, by name: the writes restarted for are derived from
	// them instead of reading each Secret again.
	current func() map[string]*corev1.Secret
	// index, if set, holds the workloads as listed when the procedure
	// planned: restarts are computed from those objects.
	index *consumers.Index
	// workers bounds the restarts in flight (0: parallel.DefaultWorkers).
	workers int
	// rollouts are the waits begun by the restart step, each as soon as
	// its workload was restarted; the wait step waits for them.
	rollouts *consumers.Rollouts
	// out is progress, safe for the restarts and the waits writing at once.
	out io.Writer
	// readers are, by Secret, the targets whose rollout proves it; nil:
	// every Secret waits for every target (recorded complete together).
	readers map[string][]consumers.Workload
	// completed marks the Secrets the wait step recorded complete as soon
	// as their readers were healthy (by index in secrets).
	completed []bool
	// writesJournaled: FactWritten is in the journal as the run wrote it.
	writesJournaled bool
}

// journalWrites puts the writes the procedure made (FactWritten) in the
// journal and writes it, before any Secret but the journal's own is
// recorded complete: a re-run knows those Secrets as its own.
func (rs *restarts) journalWrites(ctx context.Context, r *procedure.Record) error {
	if rs.writesJournaled {
		return nil
	}
	var got map[string]string
	if ok, _ := r.Get(FactWritten, &got); !ok {
		ids, _, err := rs.writeIDs(ctx)
		if err != nil {
			return err
		}
		if err := r.Put(FactWritten, ids); err != nil {
			return err
		}
	}
	if err := rs.save(ctx, r); err != nil {
		return err
	}
	rs.writesJournaled = true
	return nil
}

// earlyComplete records phase complete on each Secret but the journal's
// as soon as its readers are healthy, while the other rollouts go on; it
// returns a function that waits for these writes. Without a journal, or
// for one Secret, it does nothing: the complete step records them.
func (rs *restarts) earlyComplete(ctx context.Context, r *procedure.Record) (func(), error) {
	rs.completed = make([]bool, len(rs.secrets))
	if rs.journal == nil || len(rs.secrets) < 2 || rs.readers == nil {
		return func() {}, nil
	}
	if err := rs.journalWrites(ctx, r); err != nil {
		return nil, err
	}
	workers := rs.workers
	if workers <= 0 {
		workers = parallel.DefaultWorkers
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := 1; i < len(rs.secrets); i++ {
		ref := rs.secrets[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !rs.rollouts.Complete(ctx, rs.readers[ref.Name]) {
				return
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			if setPhaseOf(ctx, rs.c, ref.Namespace, ref.Name, v1alpha1.PhaseComplete) == nil {
				rs.completed[i] = true
			}
		}()
	}
	return wg.Wait, nil
}

// writeIDs identifies the write of each Secret the restarts are for; ok
// is false when one of them is not written (phase written or failed).
func (rs *restarts) writeIDs(ctx context.Context) (map[string]string, bool, error) {
	ids := map[string]string{}
	ok := true
	var cur map[string]*corev1.Secret
	if rs.current != nil {
		cur = rs.current()
	}
	for _, ref := range rs.secrets {
		name := ref.Name
		s := cur[name]
		if s == nil {
			var err error
			if s, err = rs.c.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
				return nil, false, describeAPIError(err, "get", "secret/"+name, ref.Namespace)
			}
		}
		ph := s.Annotations[v1alpha1.Phase]
		if ph != v1alpha1.PhaseWritten && ph != v1alpha1.PhaseFailed {
			ok = false
		}
		ids[name] = writeID(s)
	}
	return ids, ok, nil
}

// writeID identifies the last write of a Secret's values: the Secret (its
// UID), the generation, when, and the fingerprints of the values written.
func writeID(s *corev1.Secret) string {
	return fmt.Sprintf("uid %s generation %s rotated-at %s fingerprints %s", s.UID, s.Annotations[v1alpha1.Generation],
		s.Annotations[v1alpha1.RotatedAt], s.Annotations[v1alpha1.Fingerprints])
}

func sameIDs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// journaledRestarts returns the workloads the journal says were restarted
// for the writes in place now, and those writes.
func (rs *restarts) journaledRestarts(ctx context.Context, r *procedure.Record) ([]string, map[string]string, bool, error) {
	ids, written, err := rs.writeIDs(ctx)
	if err != nil || !written {
		return nil, ids, false, err
	}
	var got map[string]string
	if ok, err := r.Get(FactWritten, &got); !ok || err != nil || !sameIDs(got, ids) {
		return nil, ids, false, nil
	}
	var done []string
	if _, err := r.Get(FactRestarted, &done); err != nil {
		return nil, ids, false, nil
	}
	return done, ids, true, nil
}

func (rs *restarts) none() bool { return !rs.enabled || len(rs.targets()) == 0 }

func (rs *restarts) restartStep() procedure.Step {
	what := "restart each workload that reads a changed key, once"
	if !rs.enabled {
		what = "no restart (--restart=none)"
	}
	return &procedure.Func{StepName: StepRestart, What: what,
		DoneFunc: func(ctx context.Context, r *procedure.Record) (bool, error) {
			if rs.none() {
				return true, nil
			}
			if rs.journal == nil {
				return r.Marked(StepRestart), nil
			}
			// Derived first: restarts journaled for another write (an
			// earlier rotation, an undo) are not done for this one.
			_, _, match, err := rs.journaledRestarts(ctx, r)
			return match && r.Marked(StepRestart), err
		},
		DoFunc: rs.restart,
	}
}

// markOf names the writes ids (Secret -> writeID) on the pod templates
// of the workloads restarted for them (v1alpha1.RestartedFor): a digest,
// holding no value.
func markOf(ids map[string]string) string {
	names := make([]string, 0, len(ids))
	for n := range ids {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, ids[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (rs *restarts) progressOut() io.Writer {
	if rs.out == nil {
		rs.out = parallel.SyncWriter(rs.progress)
	}
	return rs.out
}

func (rs *restarts) waiter() *consumers.Waiter {
	return &consumers.Waiter{Client: rs.c.Dynamic, Out: rs.progressOut(), Timeout: rs.timeout}
}

// restart restarts each target once, workers at a time, and begins
// waiting for each rollout as soon as its restart is made. Each restart
// marks the pod template with the writes it is for (markOf) in the same
// patch: a re-run after a kill at any moment finds the workloads it
// restarted for these values, journaled or not, and does not restart
// them again. The journal keeps the list for the record; the engine
// saves it when the step ends (or fails).
func (rs *restarts) restart(ctx context.Context, r *procedure.Record) error {
	var done []string
	d, ids, match, err := rs.journaledRestarts(ctx, r)
	if err != nil {
		return err
	}
	switch {
	case rs.journal != nil && match:
		done = d
	case rs.journal != nil:
		if err := r.Put(FactWritten, ids); err != nil {
			return err
		}
	default:
		_, _ = r.Get(FactRestarted, &done)
	}
	if err := r.Put(FactRestarted, done); err != nil {
		return err
	}
	mark := markOf(ids)
	restarted := map[string]bool{}
	for _, ref := range done {
		restarted[ref] = true
	}
	targets := rs.targets()
	rs.rollouts = consumers.NewRollouts(rs.waiter(), targets)
	out := parallel.NewOrdered(rs.progressOut())
	defer out.Flush()
	made := make([]string, len(targets))
	err = parallel.ForEach(ctx, len(targets), rs.workers, func(ctx context.Context, i int) error {
		defer out.Done(i)
		w, ref, pw := targets[i], rs.ref(targets[i]), out.Item(i)
		if restarted[ref] {
			fmt.Fprintf(pw, "%s: restarted already by an interrupted run (journal %s); not restarted again\n", ref, rs.journal.String())
			rs.rollouts.Begin(ctx, w, 0)
			return nil
		}
		got, err := consumers.RestartFor(ctx, rs.c.Kube, w, rs.index.Object(w), mark)
		if err != nil {
			return describeAPIError(err, "patch", w.Ref(), w.Namespace)
		}
		if got.Already {
			fmt.Fprintf(pw, "%s: restarted already by an interrupted run (its pod template is marked %s for these values); not restarted again\n", ref, v1alpha1.RestartedFor)
		} else {
			fmt.Fprintf(pw, "%s restarted\n", ref)
		}
		made[i] = ref
		rs.rollouts.Begin(ctx, w, got.Generation)
		return nil
	})
	for _, ref := range made {
		if ref != "" {
			done = append(done, ref)
		}
	}
	if perr := r.Put(FactRestarted, done); perr != nil && err == nil {
		err = perr
	}
	if err == nil {
		// Journaled inside the step, so that a journal that cannot be
		// written fails this step (the engine would save it after).
		err = rs.save(ctx, r)
	}
	if err != nil {
		rs.rollouts.Stop()
		rs.rollouts = nil
	}
	return err
}

// ref names a workload in the journal and the output: KIND/NAME in the
// namespace of the procedure's first Secret (where a journal is kept),
// with "-n NAMESPACE" in any other.
func (rs *restarts) ref(w consumers.Workload) string {
	if len(rs.secrets) > 0 && w.Namespace != rs.secrets[0].Namespace {
		return w.Ref() + " -n " + w.Namespace
	}
	return w.Ref()
}

// save writes the journal from inside the restart step (the engine saves
// after each step; this is after each workload).
func (rs *restarts) save(ctx context.Context, r *procedure.Record) error {
	if rs.journal == nil {
		return nil
	}
	r.Procedure = rs.proc
	r.Updated = rs.now().UTC().Truncate(time.Second)
	if err := rs.journal.Save(ctx, r); err != nil {
		if errors.Is(err, procedure.ErrConflict) {
			return fmt.Errorf("%s: %w: another run of %s is going on; let it finish, then re-run", rs.journal, err, rs.proc)
		}
		return fmt.Errorf("writing the journal %s: %w", rs.journal, err)
	}
	return nil
}

// interruptedWrites returns the writes (Secret name -> writeID) that the
// journal on s (a procedure's first Secret) says procedure proc made, if
// that procedure was interrupted: nil when there is none.
func interruptedWrites(s *corev1.Secret, proc string) map[string]string {
	if s == nil || s.Annotations[JournalAnnotation] == "" {
		return nil
	}
	r := &procedure.Record{}
	if err := json.Unmarshal([]byte(s.Annotations[JournalAnnotation]), r); err != nil || r.Procedure != proc {
		return nil
	}
	var ids map[string]string
	if ok, err := r.Get(FactWritten, &ids); !ok || err != nil {
		return nil
	}
	return ids
}

// restarted returns the workloads the run's Record says were restarted.
func restartedIn(r *procedure.Record) []string {
	var done []string
	if r != nil {
		_, _ = r.Get(FactRestarted, &done)
	}
	return done
}

func (rs *restarts) waitStep() procedure.Step {
	what := "wait until every restarted workload is healthy (rollout complete)"
	if !rs.enabled {
		what = "no wait (--restart=none)"
	}
	return &procedure.Func{StepName: StepWait, What: what,
		// Never skipped while there is something to wait for: waiting is
		// how the state (healthy now) is read, and returns at once when
		// the rollouts are complete.
		DoneFunc: func(context.Context, *procedure.Record) (bool, error) { return rs.none(), nil },
		// The rollouts begun by the restart step are waited for; the
		// others (a re-run whose restarts were done) are begun here.
		DoFunc: func(ctx context.Context, r *procedure.Record) error {
			targets := rs.targets()
			if rs.rollouts == nil {
				rs.rollouts = consumers.NewRollouts(rs.waiter(), targets)
			}
			for _, w := range targets {
				rs.rollouts.Begin(ctx, w, 0)
			}
			recorded, err := rs.earlyComplete(ctx, r)
			if err != nil {
				rs.rollouts.Stop()
				return err
			}
			err = rs.rollouts.Wait()
			recorded()
			var we *consumers.WaitError
			if errors.As(err, &we) {
				rs.res.Unhealthy = we.Unhealthy
				rs.res.Phase = PhaseFailed
				_ = parallel.ForEach(ctx, len(rs.secrets), rs.workers, func(ctx context.Context, i int) error {
					if rs.completed[i] {
						return nil // its own readers are healthy
					}
					ref := rs.secrets[i]
					_ = setPhaseOf(ctx, rs.c, ref.Namespace, ref.Name, v1alpha1.PhaseFailed)
					return nil
				})
			}
			return err
		},
	}
}

// completeStep records phase complete on every Secret; the journal goes
// in the same write.
func (rs *restarts) completeStep(what string) procedure.Step {
	return &procedure.Func{StepName: StepComplete, What: what,
		DoneFunc: func(context.Context, *procedure.Record) (bool, error) { return false, nil },
		// Several Secrets cannot be recorded complete in one write. The
		// first one, which holds the journal, is recorded last, in the
		// write that removes the journal, and the journal says first which
		// writes the procedure made (FactWritten): a run killed between
		// two of these writes leaves Secrets complete that a re-run knows
		// as its own (interruptedWrites), not as rotations to start anew.
		DoFunc: func(ctx context.Context, r *procedure.Record) error {
			first := 0
			if rs.journal != nil && len(rs.secrets) > 1 {
				first = 1
				if err := rs.journalWrites(ctx, r); err != nil {
					return err
				}
			}
			// The wait step recorded those whose readers were healthy.
			err := parallel.ForEach(ctx, len(rs.secrets)-first, rs.workers, func(ctx context.Context, i int) error {
				if i+first < len(rs.completed) && rs.completed[i+first] {
					return nil
				}
				ref := rs.secrets[i+first]
				if i+first == 0 && rs.journal != nil {
					return rs.journal.finish(ctx, map[string]string{v1alpha1.Phase: v1alpha1.PhaseComplete})
				}
				return setPhaseOf(ctx, rs.c, ref.Namespace, ref.Name, v1alpha1.PhaseComplete)
			})
			if err == nil && first == 1 {
				err = rs.journal.finish(ctx, map[string]string{v1alpha1.Phase: v1alpha1.PhaseComplete})
			}
			if err != nil {
				return err
			}
			rs.res.Phase = PhaseComplete
			return nil
		},
	}
}

// setPhaseOf records a procedure's phase on a Secret.
func setPhaseOf(ctx context.Context, c Clients, namespace, name, phase string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.Phase, phase)
	_, err := c.Kube.CoreV1().Secrets(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return describeAPIError(err, "patch", "secret/"+name, namespace)
	}
	return nil
}

// inNamespace returns the references of the named Secrets of namespace.
func inNamespace(namespace string, names ...string) []types.NamespacedName {
	out := make([]types.NamespacedName, len(names))
	for i, n := range names {
		out[i] = types.NamespacedName{Namespace: namespace, Name: n}
	}
	return out
}

// refs names Secrets for a procedure's name.
func refs(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "secret/" + n
	}
	return strings.Join(out, " ")
}
