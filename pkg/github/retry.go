package github

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// maxAttempts is how often a safe request is tried in all.
	maxAttempts = 3
	// defaultBackoff is the wait before the first retry.
	defaultBackoff = time.Second
	// maxRetryWait is the longest wait GitHub may ask for (Retry-After or
	// rate-limit reset) that is still waited out; longer ones fail at once.
	maxRetryWait = 60 * time.Second
)

// retryTransport retries requests that are safe to repeat: GET, HEAD, PUT,
// PATCH, DELETE and adding labels (POST .../labels, which only adds what is
// missing). POST requests that create things are never retried: a duplicate
// issue or pull request is worse than a failed run.
//
// Retried: transport errors, 500/502/503/504, 429, and 403 that carry
// Retry-After or an exhausted rate limit (secondary/primary rate limits).
type retryTransport struct {
	next     http.RoundTripper
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
	sleep    func(ctx context.Context, d time.Duration) error
}

func newRetryTransport(next http.RoundTripper) *retryTransport {
	return &retryTransport{
		next:     next,
		attempts: maxAttempts,
		backoff:  defaultBackoff,
		maxWait:  maxRetryWait,
		sleep:    sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retriable reports whether req may be sent more than once.
func retriable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	case http.MethodPost:
		return strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/labels")
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !retriable(req) || t.attempts <= 1 {
		return t.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		resp, err := t.next.RoundTrip(r)
		if attempt >= t.attempts || ctx.Err() != nil {
			return resp, err
		}
		wait, again := t.retryAfter(resp, err, attempt)
		if !again {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		if serr := t.sleep(ctx, wait); serr != nil {
			return nil, serr
		}
	}
}

// retryAfter decides whether to try again and how long to wait first.
func (t *retryTransport) retryAfter(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	backoff := t.backoff << (attempt - 1)
	if err != nil {
		return backoff, true
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if d, ok := headerWait(resp); ok {
			return d, d <= t.maxWait
		}
		return backoff, true
	case http.StatusTooManyRequests, http.StatusForbidden:
		d, ok := headerWait(resp)
		if !ok {
			if resp.StatusCode == http.StatusForbidden {
				return 0, false // a plain permission error
			}
			d = backoff
		}
		if d < backoff {
			d = backoff
		}
		return d, d <= t.maxWait
	}
	return 0, false
}

// headerWait reads how long GitHub asks to wait: Retry-After (seconds or an
// HTTP date), else the reset time of an exhausted rate limit.
func headerWait(resp *http.Response) (time.Duration, bool) {
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if when, err := http.ParseTime(ra); err == nil {
			return max(time.Until(when), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(reset, 0)), 0) + time.Second, true
		}
	}
	return 0, false
}
