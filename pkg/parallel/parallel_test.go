package parallel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestForEachBoundsTheCallsInFlight(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			var in, most atomic.Int32
			var calls atomic.Int32
			err := ForEach(context.Background(), 50, workers, func(context.Context, int) error {
				n := in.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				calls.Add(1)
				in.Add(-1)
				return nil
			})
			if err != nil || calls.Load() != 50 || most.Load() > int32(workers) {
				t.Errorf("err %v, %d calls, %d at once with %d workers", err, calls.Load(), most.Load(), workers)
			}
		})
	}
}

func TestForEachReturnsTheLowestIndexError(t *testing.T) {
	// Items 3 and 7 fail; whatever the timing, the error is item 3's, and
	// once one failed no later item starts (one worker: none after 3).
	var ran []int
	var mu sync.Mutex
	err := ForEach(context.Background(), 10, 1, func(_ context.Context, i int) error {
		mu.Lock()
		ran = append(ran, i)
		mu.Unlock()
		if i == 3 || i == 7 {
			return fmt.Errorf("item %d failed", i)
		}
		return nil
	})
	if err == nil || err.Error() != "item 3 failed" {
		t.Errorf("err %v, want item 3's", err)
	}
	if len(ran) != 4 {
		t.Errorf("items run: %v, want 0..3", ran)
	}
	err = ForEach(context.Background(), 10, 8, func(_ context.Context, i int) error {
		if i == 3 || i == 7 {
			return fmt.Errorf("item %d failed", i)
		}
		return nil
	})
	if err == nil || err.Error() != "item 3 failed" {
		t.Errorf("with 8 workers: err %v, want item 3's", err)
	}
}

func TestForEachStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	err := ForEach(ctx, 10, 2, func(context.Context, int) error { calls.Add(1); return nil })
	if !errors.Is(err, context.Canceled) || calls.Load() != 0 {
		t.Errorf("err %v after %d calls, want context.Canceled and none", err, calls.Load())
	}
}

func TestOrderedWritesInItemOrder(t *testing.T) {
	var out bytes.Buffer
	o := NewOrdered(&out)
	// Items finish 2, 0, 1: the text goes out 0, 1, 2, each as soon as
	// the items before it are done.
	fmt.Fprintln(o.Item(2), "two")
	o.Done(2)
	if out.Len() != 0 {
		t.Fatalf("item 2 went out before 0 and 1: %q", out.String())
	}
	fmt.Fprintln(o.Item(0), "zero")
	o.Done(0)
	if got := out.String(); got != "zero\n" {
		t.Fatalf("after item 0: %q", got)
	}
	fmt.Fprintln(o.Item(1), "one")
	o.Done(1)
	if got := out.String(); got != "zero\none\ntwo\n" {
		t.Errorf("got %q", got)
	}
}

func TestOrderedFlushWritesWhatIsHeld(t *testing.T) {
	var out bytes.Buffer
	o := NewOrdered(&out)
	fmt.Fprintln(o.Item(0), "zero")
	fmt.Fprintln(o.Item(2), "two")
	o.Done(2)
	o.Flush() // item 1 never came: the batch stopped
	if got := out.String(); got != "zero\ntwo\n" {
		t.Errorf("got %q", got)
	}
}
