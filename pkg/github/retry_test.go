package github

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func reply(status int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(`{"message":"x"}`))}
}

func TestRetryTransport(t *testing.T) {
	netErr := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		answers []any // *http.Response or error, in order
		tries   int
		waits   []time.Duration
		status  int
	}{
		{"GET 500 then ok", "GET", "/x", []any{reply(500), reply(502), reply(200)}, 3, []time.Duration{time.Second, 2 * time.Second}, 200},
		{"GET gives up after 3", "GET", "/x", []any{reply(503), reply(503), reply(503), reply(200)}, 3, []time.Duration{time.Second, 2 * time.Second}, 503},
		{"GET network error", "GET", "/x", []any{netErr, reply(200)}, 2, []time.Duration{time.Second}, 200},
		{"GET 404 not retried", "GET", "/x", []any{reply(404)}, 1, nil, 404},
		{"GET 403 permission not retried", "GET", "/x", []any{reply(403)}, 1, nil, 403},
		{"GET 403 secondary limit retried", "GET", "/x", []any{reply(403, "Retry-After", "5"), reply(200)}, 2, []time.Duration{5 * time.Second}, 200},
		{"GET 429 too long a wait", "GET", "/x", []any{reply(429, "Retry-After", "3600"), reply(200)}, 1, nil, 429},
		{"GET 429 without header", "GET", "/x", []any{reply(429), reply(200)}, 2, []time.Duration{time.Second}, 200},
		{"PATCH 500 retried", "PATCH", "/x", []any{reply(500), reply(200)}, 2, []time.Duration{time.Second}, 200},
		{"PUT 502 retried", "PUT", "/x", []any{reply(502), reply(200)}, 2, []time.Duration{time.Second}, 200},
		{"POST 500 not retried", "POST", "/repos/o/r/issues", []any{reply(500), reply(200)}, 1, nil, 500},
		{"POST network error not retried", "POST", "/repos/o/r/pulls", []any{netErr, reply(200)}, 1, nil, 0},
		{"POST labels retried", "POST", "/repos/o/r/issues/3/labels", []any{reply(500), reply(200)}, 2, []time.Duration{time.Second}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bodies []string
			n := 0
			rt := newRetryTransport(rtFunc(func(r *http.Request) (*http.Response, error) {
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				a := tc.answers[n]
				n++
				if err, ok := a.(error); ok {
					return nil, err
				}
				return a.(*http.Response), nil
			}))
			var waits []time.Duration
			rt.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(`{"a":1}`))
			resp, err := rt.RoundTrip(req)
			if n != tc.tries {
				t.Errorf("%d tries, want %d", n, tc.tries)
			}
			if len(waits) != len(tc.waits) || (len(waits) > 0 && waits[0] != tc.waits[0]) || (len(waits) > 1 && waits[1] != tc.waits[1]) {
				t.Errorf("waits %v, want %v", waits, tc.waits)
			}
			for _, b := range bodies {
				if b != `{"a":1}` {
					t.Errorf("body sent as %q", b)
				}
			}
			if tc.status == 0 {
				if err == nil {
					t.Errorf("no error")
				}
				return
			}
			if err != nil || resp.StatusCode != tc.status {
				t.Errorf("got %v, %v; want %d", resp, err, tc.status)
			}
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	called := make(chan struct{}, 10)
	rt := newRetryTransport(rtFunc(func(*http.Request) (*http.Response, error) {
		called <- struct{}{}
		return reply(500), nil
	}))
	rt.backoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://x/", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode != 500 {
			err = errors.New("unexpected answer")
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			done <- err
			return
		}
		done <- nil
	}()
	<-called
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retry did not stop on cancel")
	}
	if len(called) != 0 {
		t.Fatal("retried after cancel")
	}
}
