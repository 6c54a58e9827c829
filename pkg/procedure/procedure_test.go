package procedure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// memJournal is a Journal in memory with a version as its precondition,
// shared by the runs of one test as a ConfigMap is by processes.
type memJournal struct {
	mu      *sync.Mutex
	stored  *[]byte
	version *int
	read    int // the version this handle last read or wrote
}

func newMem() *memJournal {
	var b []byte
	v := 0
	return &memJournal{mu: &sync.Mutex{}, stored: &b, version: &v}
}

// another returns a second handle on the same journal (another process).
func (m *memJournal) another() *memJournal {
	return &memJournal{mu: m.mu, stored: m.stored, version: m.version}
}

func (m *memJournal) String() string { return "memory" }

func (m *memJournal) Load(context.Context) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.read = *m.version
	if *m.stored == nil {
		return nil, nil
	}
	r := &Record{}
	return r, json.Unmarshal(*m.stored, r)
}

func (m *memJournal) Save(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.read != *m.version {
		return fmt.Errorf("%w (version %d, read %d)", ErrConflict, *m.version, m.read)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	*m.stored = b
	*m.version++
	m.read = *m.version
	return nil
}

func (m *memJournal) Delete(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	*m.stored = nil
	*m.version++
	m.read = *m.version
	return nil
}

// world is what the steps change: effects the objects show (derived) and
// a log of every call.
type world struct {
	effects map[string]bool
	calls   []string
	failAt  string // the step whose Do fails once
}

func (w *world) steps(names ...string) []Step {
	var out []Step
	for _, n := range names {
		derived := !strings.HasPrefix(n, "restart")
		s := &Func{StepName: n, What: "do " + n}
		if derived {
			s.DoneFunc = func(context.Context, *Record) (bool, error) { return w.effects[n], nil }
		}
		s.DoFunc = func(_ context.Context, r *Record) error {
			w.calls = append(w.calls, "do "+n)
			if w.failAt == n {
				w.failAt = ""
				return errors.New(n + " broke")
			}
			w.effects[n] = true
			return r.Put(n+"-fact", n)
		}
		s.UndoFunc = func(context.Context, *Record) error {
			w.calls = append(w.calls, "undo "+n)
			delete(w.effects, n)
			return nil
		}
		out = append(out, s)
	}
	return out
}

var names = []string{"publish", "restart-verifiers", "promote", "restart-signers"}

// TestResumeAtEveryStep: a run that fails at any step is finished by the
// re-run, which does each missing step once and never one already done.
func TestResumeAtEveryStep(t *testing.T) {
	for i, failing := range names {
		t.Run(failing, func(t *testing.T) {
			w := &world{effects: map[string]bool{}, failAt: failing}
			j := newMem()
			p := &Procedure{Name: "test", Steps: w.steps(names...), Journal: j, UndoCommand: "kubectl rotate undo x"}
			_, err := p.Run(context.Background())
			want := fmt.Sprintf("step %d of 4 (%s) failed: %s broke: re-run the same command to resume, or undo with kubectl rotate undo x", i+1, failing, failing)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v, want %q", err, want)
			}
			var se *StepError
			if !errors.As(err, &se) || se.Index != i+1 {
				t.Errorf("not a StepError for step %d: %T", i+1, err)
			}
			w.calls = nil
			p2 := &Procedure{Name: "test", Steps: w.steps(names...), Journal: j.another()}
			if _, err := p2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var wantCalls []string
			for _, n := range names[i:] {
				wantCalls = append(wantCalls, "do "+n)
			}
			if !reflect.DeepEqual(w.calls, wantCalls) {
				t.Errorf("re-run did %v, want %v", w.calls, wantCalls)
			}
			if *j.stored != nil {
				t.Error("a finished run left its journal")
			}
		})
	}
}

// TestDerivedStateWins: a journal marking a step whose effect is gone does
// not skip it; an effect in place without a mark is not done again.
func TestDerivedStateWins(t *testing.T) {
	w := &world{effects: map[string]bool{"promote": true}}
	j := newMem()
	stale := &Record{Procedure: "test", Steps: map[string]time.Time{"publish": time.Now(), "restart-verifiers": time.Now()}}
	if err := j.Save(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	p := &Procedure{Name: "test", Steps: w.steps(names...), Journal: j.another()}
	plan, _, err := p.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var done []bool
	for _, s := range plan {
		done = append(done, s.Done)
	}
	if !reflect.DeepEqual(done, []bool{false, true, true, false}) {
		t.Errorf("plan says done %v: publish's effect is missing (stale mark), promote's is there (no mark)", done)
	}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"do publish", "do restart-signers"}; !reflect.DeepEqual(w.calls, want) {
		t.Errorf("did %v, want %v", w.calls, want)
	}
}

// TestUndoInReverseOrder undoes the done steps, last first, and deletes
// the journal.
func TestUndoInReverseOrder(t *testing.T) {
	w := &world{effects: map[string]bool{}, failAt: "promote"}
	j := newMem()
	p := &Procedure{Name: "test", Steps: w.steps(names...), Journal: j}
	if _, err := p.Run(context.Background()); err == nil {
		t.Fatal("want the promote failure")
	}
	w.calls = nil
	if err := p.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"undo restart-verifiers", "undo publish"}; !reflect.DeepEqual(w.calls, want) {
		t.Errorf("undo did %v, want %v", w.calls, want)
	}
	if *j.stored != nil || len(w.effects) != 0 {
		t.Errorf("after undo: journal %s, effects %v", *j.stored, w.effects)
	}
}

// TestJournalPrecondition: two runs at once cannot both make progress.
func TestJournalPrecondition(t *testing.T) {
	j := newMem()
	w := &world{effects: map[string]bool{}, failAt: "promote"}
	p := &Procedure{Name: "test", Steps: w.steps(names...), Journal: j}
	_, _ = p.Run(context.Background())

	first, second := j.another(), j.another()
	r1, _ := first.Load(context.Background())
	r2, _ := second.Load(context.Background())
	if err := first.Save(context.Background(), r1); err != nil {
		t.Fatal(err)
	}
	err := second.Save(context.Background(), r2)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second writer: %v, want ErrConflict", err)
	}
	// Through the engine: another run writes while this one does a step;
	// this run's next write is refused, naming the journal and what to do.
	w2 := &world{effects: map[string]bool{}}
	steps := w2.steps(names...)
	steps[2].(*Func).DoFunc = func(context.Context, *Record) error {
		other := j.another()
		r, _ := other.Load(context.Background())
		return other.Save(context.Background(), r)
	}
	stuck := &Procedure{Name: "jwk rotate x", Steps: steps, Journal: j.another()}
	_, err = stuck.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "memory: the journal changed under this run") || !strings.Contains(err.Error(), "another run of jwk rotate x is going on") {
		t.Errorf("run on a stale journal handle: %v", err)
	}
}

// TestFailureIsJournaledEvenWhenCancelled: Ctrl-C during a step leaves a
// journal that names the failed step.
func TestFailureIsJournaledEvenWhenCancelled(t *testing.T) {
	j := newMem()
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{effects: map[string]bool{}}
	steps := w.steps(names...)
	steps[2].(*Func).DoFunc = func(context.Context, *Record) error { cancel(); return context.Canceled }
	p := &Procedure{Name: "test", Steps: steps, Journal: j}
	if _, err := p.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	r, _ := j.another().Load(context.Background())
	if r == nil || r.Failed != "promote" || !r.Marked("restart-verifiers") || r.String("publish-fact") != "publish" {
		t.Errorf("journal after Ctrl-C: %+v", r)
	}
}

func TestJournalName(t *testing.T) {
	if got := JournalName("kube-rotate-jwk", "diracx-jwks", "jwks.json"); got != "kube-rotate-jwk-diracx-jwks-jwks.json" {
		t.Errorf("got %s", got)
	}
	long := JournalName("kube-rotate-jwk", strings.Repeat("a", 253))
	if len(long) != 253 || long == JournalName("kube-rotate-jwk", strings.Repeat("a", 252)+"b") {
		t.Errorf("long name %d chars, or not unique", len(long))
	}
}

// TestWaitStopsForAPerson: a step that needs a person stops the run
// without failing it, journals where it waits, is not passed by a plain
// re-run, and clears the wait once the person's step is done.
func TestWaitStopsForAPerson(t *testing.T) {
	j := newMem()
	w := &world{effects: map[string]bool{}}
	confirmed := false
	steps := func() []Step {
		s := w.steps(names...)
		s[2].(*Func).DoFunc = func(context.Context, *Record) error {
			w.calls = append(w.calls, "do promote")
			if !confirmed {
				return &WaitError{Message: "hand the new key to the verifiers"}
			}
			w.effects["promote"] = true
			return nil
		}
		return s
	}
	for run := 1; run <= 2; run++ {
		_, err := (&Procedure{Name: "test", Steps: steps(), Journal: j.another()}).Run(context.Background())
		var werr *WaitError
		if !errors.As(err, &werr) || werr.Step != "promote" || err.Error() != "hand the new key to the verifiers" {
			t.Fatalf("run %d: %v, want a wait at promote", run, err)
		}
		var serr *StepError
		if errors.As(err, &serr) {
			t.Errorf("run %d: a wait is worded as a failure: %v", run, err)
		}
		r, _ := j.another().Load(context.Background())
		if r == nil || r.Waiting != "promote" || r.Failed != "" || r.Marked("promote") || !r.Marked("restart-verifiers") {
			t.Fatalf("run %d: journal %+v", run, r)
		}
	}
	if got := strings.Count(strings.Join(w.calls, ","), "do restart-verifiers"); got != 1 {
		t.Errorf("the steps before the wait ran %d times, want once", got)
	}
	confirmed = true
	if _, err := (&Procedure{Name: "test", Steps: steps(), Journal: j.another(), KeepJournal: true}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, _ := j.another().Load(context.Background())
	if r.Waiting != "" || !r.Marked("promote") || !r.Marked("restart-signers") {
		t.Errorf("journal after the person's step: %+v", r)
	}
}
