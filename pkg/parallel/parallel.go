// Package parallel runs a batch of API calls with bounded concurrency,
// and prints their progress lines in the order of the batch, not in the
// order they finished: a rotation of many Secrets overlaps its writes
// but its output reads as if it had made them one after another.
package parallel

import (
	"context"
	"io"
	"strings"
	"sync"
)

// DefaultWorkers is the concurrency of a batch when none is given: the
// client's rate limits (QPS, burst) bound the request rate; the workers
// bound how many requests are in flight.
const DefaultWorkers = 8

// ForEach calls fn for i in [0, n) with at most workers calls at once (0:
// DefaultWorkers). After a call fails no new call starts; the calls under
// way finish. It returns the error of the lowest index that failed, so
// the error is the same whatever the timing.
func ForEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if workers > n {
		workers = n
	}
	errs := make([]error, n)
	var (
		mu     sync.Mutex
		next   int
		failed bool
		wg     sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || next >= n || ctx.Err() != nil {
			return 0, false
		}
		i := next
		next++
		return i, true
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					errs[i], failed = err, true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Ordered writes the output of the items of a batch to W in the items'
// order: item i's text goes out once items 0..i-1 are done (Done), so
// the lines are as live as the order allows. Safe for concurrent use.
type Ordered struct {
	w    io.Writer
	mu   sync.Mutex
	next int
	held map[int]string
	bufs map[int]*strings.Builder
}

// NewOrdered returns an Ordered writing to w (nil: discard).
func NewOrdered(w io.Writer) *Ordered {
	if w == nil {
		w = io.Discard
	}
	return &Ordered{w: w, held: map[int]string{}, bufs: map[int]*strings.Builder{}}
}

// Item returns a writer for item i's lines; they go out at Done(i).
func (o *Ordered) Item(i int) io.Writer { return itemWriter{o, i} }

type itemWriter struct {
	o *Ordered
	i int
}

func (iw itemWriter) Write(p []byte) (int, error) {
	iw.o.mu.Lock()
	defer iw.o.mu.Unlock()
	b := iw.o.bufs[iw.i]
	if b == nil {
		b = &strings.Builder{}
		iw.o.bufs[iw.i] = b
	}
	return b.Write(p)
}

// Done marks item i done: its text, and that of the done items after it
// in order, is written. Every index in [0, n) of the batch must be marked
// Done (skipped items too), or the items after it are held back until
// Flush.
func (o *Ordered) Done(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	text := ""
	if b := o.bufs[i]; b != nil {
		text = b.String()
		delete(o.bufs, i)
	}
	o.held[i] = text
	for {
		t, ok := o.held[o.next]
		if !ok {
			return
		}
		delete(o.held, o.next)
		o.next++
		if t != "" {
			_, _ = io.WriteString(o.w, t)
		}
	}
}

// Flush writes what is held back (after a batch stopped on an error),
// in order.
func (o *Ordered) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.bufs {
		o.held[i] = o.bufs[i].String()
		delete(o.bufs, i)
	}
	for len(o.held) > 0 {
		if t, ok := o.held[o.next]; ok && t != "" {
			_, _ = io.WriteString(o.w, t)
		}
		delete(o.held, o.next)
		o.next++
	}
}

// SyncWriter returns w made safe for concurrent Write calls: each call's
// bytes go out together (nil: discard).
func SyncWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	if _, ok := w.(*syncWriter); ok {
		return w
	}
	return &syncWriter{w: w}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
