// Package procedure is the staged-procedure engine every rotation runs on:
// steps that must happen in order, each safe to re-run, a journal that
// survives kill -9, a dry-run list of what would happen, and undo in
// reverse order.
//
// The state rule (mkectl's): a step's state is derived from the objects
// first. Step.Done looks at the objects the step changes (a key in a set,
// a value in a Secret, a keypair in a keyset) and wins over the journal; a
// stale journal entry never skips a step whose effect is missing. The
// journal (a Record, kept by a Journal with a precondition on every write)
// holds only what the objects cannot show: restarts done, hook results,
// CLI steps run, and the facts a step was made for (the kid it published,
// the key ids it staged).
//
// The engine owns resume (the first step whose Done is false runs next),
// the dry-run list (Plan), undo in reverse order (Undo), and one wording
// for a failure: "step X of Y (NAME) failed: …: re-run the same command to
// resume, or undo with …".
package procedure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/parallel"
)

// Step is one step of a procedure. Done, Do and Undo get the run's Record:
// the facts earlier steps journaled, and the marks of steps the objects
// cannot show.
type Step interface {
	// Name is a short, stable name ("publish", "restart-verifiers").
	Name() string
	// Describe says what Do does, for the dry-run list; never a value.
	Describe() string
	// Done reports whether the step's effect is in place, derived from the
	// objects where they can show it (Journaled when they cannot).
	Done(ctx context.Context, r *Record) (bool, error)
	// Do makes the step's effect; safe to run again after a crash.
	Do(ctx context.Context, r *Record) error
	// Undo reverts a done step, or says in its error why it cannot.
	Undo(ctx context.Context, r *Record) error
}

// Func is a Step made of functions. A nil DoneFunc is Journaled: the step
// is done once the journal marks it. A nil UndoFunc undoes nothing.
type Func struct {
	StepName, What string
	DoneFunc       func(ctx context.Context, r *Record) (bool, error)
	DoFunc         func(ctx context.Context, r *Record) error
	UndoFunc       func(ctx context.Context, r *Record) error
	// DeferSave leaves the journal write after the step to the next one
	// (its mark and facts go out with it): for a step whose Done is
	// derived from the objects alone, so that a run killed before that
	// write finds it done anyway.
	DeferSave bool
}

// Deferred is implemented by steps whose journal write may wait for the
// next step's (Func.DeferSave).
type Deferred interface {
	SaveDeferred() bool
}

// SaveDeferred implements Deferred.
func (f *Func) SaveDeferred() bool { return f.DeferSave }

// Name implements Step.
func (f *Func) Name() string { return f.StepName }

// Describe implements Step.
func (f *Func) Describe() string { return f.What }

// Done implements Step.
func (f *Func) Done(ctx context.Context, r *Record) (bool, error) {
	if f.DoneFunc == nil {
		return r.Marked(f.StepName), nil
	}
	return f.DoneFunc(ctx, r)
}

// Do implements Step.
func (f *Func) Do(ctx context.Context, r *Record) error { return f.DoFunc(ctx, r) }

// Undo implements Step.
func (f *Func) Undo(ctx context.Context, r *Record) error {
	if f.UndoFunc == nil {
		return nil
	}
	return f.UndoFunc(ctx, r)
}

// Record is a run's journal: when each step was marked done, the last
// failure, and facts steps keep for later steps and re-runs. It holds no
// secret value.
type Record struct {
	Procedure string               `json:"procedure"`
	Started   time.Time            `json:"started"`
	Updated   time.Time            `json:"updated"`
	Steps     map[string]time.Time `json:"steps,omitempty"`
	// Failed is the step that failed last, with its error (one line).
	Failed string `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	// Waiting is the step that stopped the run for a person (WaitError),
	// until that step is done.
	Waiting string                     `json:"waiting,omitempty"`
	Facts   map[string]json.RawMessage `json:"facts,omitempty"`

	// mu guards the Record while steps of several lanes run at once: its
	// methods, and its JSON encoding, hold it.
	mu sync.Mutex
	// commit, set while a Procedure runs, writes the journal (Checkpoint).
	commit func(ctx context.Context) error
}

// record is Record without its methods, for the JSON encoding.
type record Record

// MarshalJSON encodes the Record as it is at one moment.
func (r *Record) MarshalJSON() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return json.Marshal((*record)(r))
}

// Checkpoint writes the journal in the middle of a step, for a fact the
// step must keep before it acts on it (the values' fingerprints before
// they move). It returns once the journal holds every change made to the
// Record before the call; steps of other lanes that checkpoint or finish
// at the same time share the write.
func (r *Record) Checkpoint(ctx context.Context) error {
	if r.commit == nil {
		return errors.New("no journal is being written: a checkpoint needs a running procedure")
	}
	return r.commit(ctx)
}

// Mark records that step is done.
func (r *Record) Mark(step string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mark(step, now)
}

func (r *Record) mark(step string, now time.Time) {
	if r.Steps == nil {
		r.Steps = map[string]time.Time{}
	}
	r.Steps[step] = now.UTC().Truncate(time.Second)
	if r.Failed == step {
		r.Failed, r.Error = "", ""
	}
}

// Marked reports whether step was marked done.
func (r *Record) Marked(step string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.Steps[step]
	return ok
}

// Unmark forgets that step was done.
func (r *Record) Unmark(step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.Steps, step)
}

// Modify reads fact key into v (left as it is when the fact is not
// there), calls change, and keeps v as the fact, with the Record held
// throughout: steps of other lanes that modify the same fact do not lose
// each other's changes. change must not call the Record's methods.
func (r *Record) Modify(key string, v any, change func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.Facts[key]; ok {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("journal fact %s: %w", key, err)
		}
	}
	if err := change(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal fact %s: %w", key, err)
	}
	if r.Facts == nil {
		r.Facts = map[string]json.RawMessage{}
	}
	r.Facts[key] = b
	return nil
}

// Put keeps a fact (JSON-encoded) for later steps and re-runs.
func (r *Record) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal fact %s: %w", key, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Facts == nil {
		r.Facts = map[string]json.RawMessage{}
	}
	r.Facts[key] = b
	return nil
}

// Get reads a fact into v and reports whether it was there.
func (r *Record) Get(key string, v any) (bool, error) {
	r.mu.Lock()
	b, ok := r.Facts[key]
	r.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("journal fact %s: %w", key, err)
	}
	return true, nil
}

// String returns a string fact, or "".
func (r *Record) String(key string) string {
	var s string
	_, _ = r.Get(key, &s)
	return s
}

// ErrConflict is what a Journal's Save returns (wrapped) when the journal
// changed since it was read: another run is going on.
var ErrConflict = errors.New("the journal changed under this run")

// Journal keeps a Record with a precondition on every write
// (resourceVersion, or the state store's equivalent).
type Journal interface {
	// Load returns the Record, or nil when there is none.
	Load(ctx context.Context) (*Record, error)
	// Save writes the Record if the journal is as Load (or the last Save)
	// left it; else an error wrapping ErrConflict.
	Save(ctx context.Context, r *Record) error
	// Delete removes the journal (the procedure finished or was undone).
	Delete(ctx context.Context) error
	// String names where the journal lives, for messages.
	String() string
}

// Procedure is a list of steps and where their journal lives.
type Procedure struct {
	// Name says what runs, for the journal and messages
	// ("jwk rotate secret/diracx-jwks key jwks.json").
	Name  string
	Steps []Step
	// Journal, nil for a procedure whose every step derives its state.
	Journal Journal
	// UndoCommand is the command that undoes a partial run ("" when undo
	// is not offered); it goes into the failure message.
	UndoCommand string
	// KeepJournal keeps the journal when the run completes (plans keep
	// theirs so that a finished plan is not repeated); else it is deleted,
	// and the next run starts afresh.
	KeepJournal bool
	// Progress gets a line per step run or resumed; nil for none.
	Progress io.Writer
	Now      func() time.Time
	// Workers is how many lanes of Laned steps run at once (0 or 1: one
	// step at a time, in order).
	Workers int

	progressMu sync.Mutex
}

// Laned is a Step that may run beside the steps of other lanes: one
// plan item's steps, say, next to another item's. Consecutive Laned
// steps of one wave form a batch: its lanes run side by side (up to
// Procedure.Workers at once), the steps of one lane in their order, and
// the batch is done before the next step starts. A step that is not Laned
// runs alone, after every step before it.
type Laned interface {
	Step
	// Lane returns the step's wave (steps of different waves never run
	// at once) and lane (its steps run in order, one at a time).
	Lane() (wave int, lane string)
}

// StepStatus is one line of the dry-run list.
type StepStatus struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	What  string `json:"what"`
	Done  bool   `json:"done"`
}

// StepError is a failed step, worded the same way for every procedure.
type StepError struct {
	Index, Total int
	Step         string
	UndoCommand  string
	Err          error
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %d of %d (%s) failed: %v: re-run the same command to resume", e.Index, e.Total, e.Step, e.Err)
	if e.UndoCommand != "" {
		msg += ", or undo with " + e.UndoCommand
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// WaitError is returned by a step's Do when the step is a person's: the
// run stops there, not failed, with the step journaled as Waiting, and
// goes on when the caller says the person did it. Message says what to do.
type WaitError struct {
	Step    string
	Message string
}

func (e *WaitError) Error() string { return e.Message }

func (p *Procedure) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Procedure) progress(format string, args ...any) {
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	if p.Progress != nil {
		fmt.Fprintf(p.Progress, format+"\n", args...)
	}
}

func (p *Procedure) load(ctx context.Context) (*Record, error) {
	var r *Record
	if p.Journal != nil {
		var err error
		if r, err = p.Journal.Load(ctx); err != nil {
			return nil, err
		}
	}
	if r == nil {
		now := p.now().UTC().Truncate(time.Second)
		r = &Record{Procedure: p.Name, Started: now}
	}
	return r, nil
}

// Plan is the dry run: every step, what it does, and whether it is done
// already. Nothing is written. With Workers, the steps' Done checks run
// side by side.
func (p *Procedure) Plan(ctx context.Context) ([]StepStatus, *Record, error) {
	r, err := p.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]StepStatus, len(p.Steps))
	workers := p.Workers
	if workers < 1 {
		workers = 1
	}
	err = parallel.ForEach(ctx, len(p.Steps), workers, func(ctx context.Context, i int) error {
		s := p.Steps[i]
		done, err := s.Done(ctx, r)
		if err != nil {
			return &StepError{Index: i + 1, Total: len(p.Steps), Step: s.Name(), UndoCommand: p.UndoCommand, Err: err}
		}
		out[i] = StepStatus{Index: i + 1, Name: s.Name(), What: s.Describe(), Done: done}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, r, nil
}

// batches splits the steps into what Run takes one after another: a step
// alone, or the lanes of a batch of Laned steps (step indexes, each
// lane's in order).
func (p *Procedure) batches() [][][]int {
	var out [][][]int
	for i := 0; i < len(p.Steps); {
		l, ok := p.Steps[i].(Laned)
		if !ok || p.Workers <= 1 {
			out = append(out, [][]int{{i}})
			i++
			continue
		}
		wave, _ := l.Lane()
		var lanes [][]int
		at := map[string]int{}
		for ; i < len(p.Steps); i++ {
			l, ok := p.Steps[i].(Laned)
			if !ok {
				break
			}
			w, lane := l.Lane()
			if w != wave {
				break
			}
			j, seen := at[lane]
			if !seen {
				j = len(lanes)
				at[lane] = j
				lanes = append(lanes, nil)
			}
			lanes[j] = append(lanes[j], i)
		}
		out = append(out, lanes)
	}
	return out
}

// failure is a step that stopped a run: its index and error.
type failure struct {
	i   int
	err error
}

func (f *failure) Error() string { return f.err.Error() }

// Run takes every step that is not done, in order (lanes of Laned steps
// side by side, with Workers), journaling each one; a re-run resumes at
// the first step of each lane whose effect is missing. It returns the
// Record (facts for the caller's output).
func (p *Procedure) Run(ctx context.Context) (*Record, error) {
	r, err := p.load(ctx)
	if err != nil {
		return nil, err
	}
	c := &committer{p: p, r: r}
	r.commit = c.commit
	defer func() { r.commit = nil }()
	resumed := len(r.Steps) > 0
	for _, lanes := range p.batches() {
		var stop sync.Mutex
		stopped := false
		err := parallel.ForEach(ctx, len(lanes), p.Workers, func(ctx context.Context, li int) error {
			for _, i := range lanes[li] {
				stop.Lock()
				halt := stopped
				stop.Unlock()
				if halt {
					return nil
				}
				if err := p.runStep(ctx, r, c, i, resumed); err != nil {
					stop.Lock()
					stopped = true
					stop.Unlock()
					return err
				}
			}
			return nil
		})
		if err == nil {
			continue
		}
		var f *failure
		if !errors.As(err, &f) {
			// Cancelled between steps: the batch's first step did not run.
			f = &failure{lanes[0][0], err}
		}
		var werr *WaitError
		if errors.As(f.err, &werr) {
			return r, p.wait(ctx, r, f.i, werr)
		}
		if f.i < 0 {
			return r, f.err
		}
		return r, p.fail(ctx, r, f.i, f.err)
	}
	if err := c.flush(ctx); err != nil {
		return r, err
	}
	if p.Journal != nil && !p.KeepJournal {
		if err := p.Journal.Delete(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// runStep takes step i if it is not done, and journals it.
func (p *Procedure) runStep(ctx context.Context, r *Record, c *committer, i int, resumed bool) error {
	s := p.Steps[i]
	done, err := s.Done(ctx, r)
	if err != nil {
		return &failure{i, err}
	}
	if done {
		if !r.Marked(s.Name()) {
			r.Mark(s.Name(), p.now())
		}
		if resumed {
			p.progress("step %d of %d (%s): done already", i+1, len(p.Steps), s.Name())
		}
		return nil
	}
	// The objects win: a step the journal marked whose effect is missing
	// runs again.
	r.Unmark(s.Name())
	if err := s.Do(ctx, r); err != nil {
		return &failure{i, err}
	}
	r.mu.Lock()
	if r.Waiting == s.Name() {
		r.Waiting = ""
	}
	r.mark(s.Name(), p.now())
	r.mu.Unlock()
	if d, ok := s.(Deferred); ok && d.SaveDeferred() {
		c.defer1()
		return nil
	}
	if err := c.commit(ctx); err != nil {
		return &failure{-1, err}
	}
	return nil
}

// committer writes the journal for steps that finish at once, one write
// for all of them (group commit): a step's commit returns once a write
// begun after its changes succeeded.
type committer struct {
	p *Procedure
	r *Record

	mu      sync.Mutex
	cond    *sync.Cond
	changes uint64 // commits asked for
	saved   uint64 // commits a successful write included
	saving  bool
	// deferred: a step's changes wait for the next write (DeferSave).
	deferred bool
}

// defer1 notes changes left for the next write.
func (c *committer) defer1() {
	c.mu.Lock()
	c.deferred = true
	c.mu.Unlock()
}

// flush writes deferred changes no later write took.
func (c *committer) flush(ctx context.Context) error {
	c.mu.Lock()
	d := c.deferred
	c.mu.Unlock()
	if !d {
		return nil
	}
	return c.commit(ctx)
}

func (c *committer) commit(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cond == nil {
		c.cond = sync.NewCond(&c.mu)
	}
	c.changes++
	want := c.changes
	for c.saved < want {
		if c.saving {
			c.cond.Wait()
			continue
		}
		c.saving = true
		upto := c.changes
		c.deferred = false
		c.mu.Unlock()
		err := c.p.save(ctx, c.r)
		c.mu.Lock()
		c.saving = false
		c.cond.Broadcast()
		if err != nil {
			c.deferred = true
			return err
		}
		c.saved = upto
	}
	return nil
}

// Undo reverts the done steps in reverse order, then deletes the journal.
// A step that cannot be undone stops it with that step's reason.
func (p *Procedure) Undo(ctx context.Context) error {
	r, err := p.load(ctx)
	if err != nil {
		return err
	}
	c := &committer{p: p, r: r}
	r.commit = c.commit
	defer func() { r.commit = nil }()
	for i := len(p.Steps) - 1; i >= 0; i-- {
		s := p.Steps[i]
		done, err := s.Done(ctx, r)
		if err != nil {
			return &StepError{Index: i + 1, Total: len(p.Steps), Step: s.Name(), Err: err}
		}
		if !done && !r.Marked(s.Name()) {
			continue
		}
		if err := s.Undo(ctx, r); err != nil {
			return fmt.Errorf("undo of step %d of %d (%s): %w", i+1, len(p.Steps), s.Name(), err)
		}
		r.Unmark(s.Name())
		if len(r.Steps) > 0 {
			if err := p.save(ctx, r); err != nil {
				return err
			}
		}
	}
	if p.Journal != nil {
		return p.Journal.Delete(ctx)
	}
	return nil
}

func (p *Procedure) save(ctx context.Context, r *Record) error {
	if p.Journal == nil {
		return nil
	}
	r.mu.Lock()
	r.Procedure = p.Name
	r.Updated = p.now().UTC().Truncate(time.Second)
	r.mu.Unlock()
	if err := p.Journal.Save(ctx, r); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%s: %w: another run of %s is going on; let it finish, then re-run", p.Journal, err, p.Name)
		}
		return fmt.Errorf("writing the journal %s: %w", p.Journal, err)
	}
	return nil
}

// fail journals the failure (even when ctx was cancelled: Ctrl-C must
// still leave a journal the re-run can read) and words the error.
func (p *Procedure) fail(ctx context.Context, r *Record, i int, err error) error {
	s := p.Steps[i]
	r.Failed, r.Error = s.Name(), oneLine(err.Error())
	serr := &StepError{Index: i + 1, Total: len(p.Steps), Step: s.Name(), UndoCommand: p.UndoCommand, Err: err}
	if p.Journal != nil && len(r.Steps) > 0 {
		if jerr := p.save(context.WithoutCancel(ctx), r); jerr != nil {
			return fmt.Errorf("%w (and the journal could not be written: %v)", serr, jerr)
		}
	}
	return serr
}

// wait journals that the run stopped for a person at step i.
func (p *Procedure) wait(ctx context.Context, r *Record, i int, werr *WaitError) error {
	werr.Step = p.Steps[i].Name()
	r.Waiting, r.Failed, r.Error = werr.Step, "", ""
	if p.Journal != nil {
		if err := p.save(context.WithoutCancel(ctx), r); err != nil {
			return fmt.Errorf("%w (and the journal could not be written: %v)", werr, err)
		}
	}
	return werr
}

func oneLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
