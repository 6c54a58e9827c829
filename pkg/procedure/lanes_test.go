package procedure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// laneStep is a Laned step whose effect lives in a shared set.
type laneStep struct {
	Func
	wave int
	lane string
}

func (l *laneStep) Lane() (int, string) { return l.wave, l.lane }

// laneWorld is what lane steps change, and what they saw.
type laneWorld struct {
	mu      sync.Mutex
	effects map[string]bool
	order   []string // Do calls, in the order they began
	// journaled: for each step, whether the journal held the mark of the
	// step before it in its lane when it began.
	journaled map[string]bool
	failAt    string
	gate      chan struct{} // closed once every lane's first step began
	begun     int
}

// lanes builds, for each lane name, steps NAME/1..NAME/n in one wave,
// then a step "after" that is not Laned.
func (w *laneWorld) procedure(j *memJournal, workers int, lanes []string, n int, rendezvous bool) *Procedure {
	var steps []Step
	for _, lane := range lanes {
		for k := 1; k <= n; k++ {
			name := fmt.Sprintf("%s/%d", lane, k)
			prev := fmt.Sprintf("%s/%d", lane, k-1)
			s := &laneStep{wave: 0, lane: lane, Func: Func{StepName: name, What: "set " + name,
				DoneFunc: func(context.Context, *Record) (bool, error) {
					w.mu.Lock()
					defer w.mu.Unlock()
					return w.effects[name], nil
				},
				DoFunc: func(ctx context.Context, r *Record) error {
					w.mu.Lock()
					w.order = append(w.order, name)
					if k > 1 {
						w.journaled[name] = stored(j, prev)
					}
					fail := w.failAt == name
					if fail {
						w.failAt = ""
					}
					w.mu.Unlock()
					if rendezvous && k == 1 {
						// Every lane's first step is under way before any
						// goes on: one step at a time would wait here
						// until the test's deadline.
						w.mu.Lock()
						w.begun++
						if w.begun == len(lanes) {
							close(w.gate)
						}
						w.mu.Unlock()
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-w.gate:
						}
					}
					if fail {
						return errors.New("the server said no")
					}
					w.mu.Lock()
					w.effects[name] = true
					w.mu.Unlock()
					return nil
				}}}
			steps = append(steps, s)
		}
	}
	steps = append(steps, &Func{StepName: "after", What: "after every lane",
		DoneFunc: func(context.Context, *Record) (bool, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.effects["after"], nil
		},
		DoFunc: func(context.Context, *Record) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, lane := range lanes {
				if !w.effects[fmt.Sprintf("%s/%d", lane, n)] {
					return fmt.Errorf("lane %s is not done", lane)
				}
			}
			w.order = append(w.order, "after")
			w.effects["after"] = true
			return nil
		}})
	return &Procedure{Name: "lanes", Steps: steps, Journal: j, Workers: workers, UndoCommand: "undo-it", KeepJournal: true}
}

// stored reports whether the stored journal marks step.
func stored(j *memJournal, step string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if *j.stored == nil {
		return false
	}
	r := &Record{}
	if err := json.Unmarshal(*j.stored, r); err != nil {
		return false
	}
	_, ok := r.Steps[step]
	return ok
}

func newLaneWorld() *laneWorld {
	return &laneWorld{effects: map[string]bool{}, journaled: map[string]bool{}}
}

func TestLanesRunSideBySide(t *testing.T) {
	lanes := []string{"a", "b", "c", "d"}
	w := newLaneWorld()
	w.gate = make(chan struct{})
	j := newMem()
	p := w.procedure(j, 4, lanes, 3, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := p.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Each lane in its order, the step after every lane last.
	pos := map[string]int{}
	for i, name := range w.order {
		pos[name] = i
	}
	for _, lane := range lanes {
		for k := 2; k <= 3; k++ {
			if pos[fmt.Sprintf("%s/%d", lane, k-1)] > pos[fmt.Sprintf("%s/%d", lane, k)] {
				t.Errorf("lane %s ran out of order: %v", lane, w.order)
			}
			// A lane's step begins once the journal holds the one before.
			if name := fmt.Sprintf("%s/%d", lane, k); !w.journaled[name] {
				t.Errorf("%s began before the journal held %s/%d", name, lane, k-1)
			}
		}
	}
	if w.order[len(w.order)-1] != "after" {
		t.Errorf("the step after the lanes did not run last: %v", w.order)
	}
	for _, s := range p.Steps {
		if !r.Marked(s.Name()) || !stored(j, s.Name()) {
			t.Errorf("step %s is not marked in the journal", s.Name())
		}
	}
}

func TestLanesOneAtATimeWithOneWorker(t *testing.T) {
	w := newLaneWorld()
	p := w.procedure(newMem(), 1, []string{"a", "b"}, 2, false)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(w.order, " "), "a/1 a/2 b/1 b/2 after"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestLaneFailureIsJournaledAndResumed(t *testing.T) {
	lanes := []string{"a", "b", "c"}
	w := newLaneWorld()
	w.failAt = "b/2"
	j := newMem()
	_, err := w.procedure(j, 3, lanes, 3, false).Run(context.Background())
	var serr *StepError
	if !errors.As(err, &serr) || serr.Step != "b/2" || !strings.Contains(err.Error(), "the server said no") {
		t.Fatalf("Run: %v, want step b/2's error", err)
	}
	if w.effects["after"] || w.effects["b/3"] {
		t.Errorf("steps ran after b/2 failed: %v", w.order)
	}
	r, _ := j.another().Load(context.Background())
	if r == nil || r.Failed != "b/2" {
		t.Fatalf("the journal does not name the failed step: %+v", r)
	}
	// The re-run does what is missing, and each step once in all.
	w2 := &laneWorld{effects: w.effects, journaled: map[string]bool{}}
	if _, err := w2.procedure(j.another(), 3, lanes, 3, false).Run(context.Background()); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	counts := map[string]int{}
	for _, name := range append(w.order, w2.order...) {
		counts[name]++
	}
	for _, lane := range lanes {
		for k := 1; k <= 3; k++ {
			name := fmt.Sprintf("%s/%d", lane, k)
			want := 1
			if name == "b/2" {
				want = 2 // failed once, then done
			}
			if counts[name] != want {
				t.Errorf("%s ran %d times, want %d", name, counts[name], want)
			}
		}
	}
	if counts["after"] != 1 {
		t.Errorf("after ran %d times", counts["after"])
	}
}

func TestCommitsShareWrites(t *testing.T) {
	// Lanes finishing at once share journal writes; every change is in.
	lanes := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	w := newLaneWorld()
	j := &countingJournal{memJournal: newMem()}
	p := w.procedure(j.memJournal, 8, lanes, 4, false)
	p.Journal = j
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every write takes a while (slow), so that the lanes finish steps
	// while one is under way: they wait for the next, one for all.
	if steps := len(p.Steps); j.saves > steps/2 {
		t.Errorf("%d journal writes for %d steps: the lanes did not share them", j.saves, steps)
	}
	for _, s := range p.Steps {
		if !stored(j.memJournal, s.Name()) {
			t.Errorf("the journal lost step %s", s.Name())
		}
	}
}

type countingJournal struct {
	*memJournal
	mu    sync.Mutex
	saves int
}

func (c *countingJournal) Save(ctx context.Context, r *Record) error {
	c.mu.Lock()
	c.saves++
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // slow
	return c.memJournal.Save(ctx, r)
}

func TestModifyKeepsEveryLanesChange(t *testing.T) {
	r := &Record{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cur []int
			_ = r.Modify("list", &cur, func() error {
				cur = append(cur, i)
				return nil
			})
		}()
	}
	wg.Wait()
	var got []int
	if _, err := r.Get("list", &got); err != nil || len(got) != 50 {
		t.Errorf("after 50 concurrent appends the fact holds %d (%v)", len(got), err)
	}
}

func TestDeferredSaveGoesOutWithTheNextWrite(t *testing.T) {
	j := &countingJournal{memJournal: newMem()}
	var effects []string
	step := func(name string, deferred bool) *Func {
		return &Func{StepName: name, DeferSave: deferred,
			DoneFunc: func(context.Context, *Record) (bool, error) { return false, nil },
			DoFunc: func(context.Context, *Record) error {
				effects = append(effects, name)
				// The deferred step's mark is not written before the next
				// step acts, and is written with it.
				if name == "b" && stored(j.memJournal, "a") {
					t.Errorf("step a's mark was written on its own")
				}
				return nil
			}}
	}
	p := &Procedure{Name: "deferred", Journal: j, KeepJournal: true,
		Steps: []Step{step("a", true), step("b", false), step("c", true)}}
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// b's write carries a; c, the last, is flushed at the end.
	if j.saves != 2 {
		t.Errorf("%d journal writes, want 2 (b with a, then c at the end)", j.saves)
	}
	for _, s := range []string{"a", "b", "c"} {
		if !stored(j.memJournal, s) {
			t.Errorf("the journal lost step %s", s)
		}
	}
}
