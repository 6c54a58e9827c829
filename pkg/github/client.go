// Package github keeps issues and pull requests of one GitHub repository in
// the state the caller wants, through the GitHub REST API (go-github).
//
// It is written for a scheduled GitHub Action: every operation is idempotent
// across runs (issues are found again by label plus a hidden marker, pull
// requests by their head branch), safe requests are retried on transient
// failures, and errors are one line saying what failed and how to fix it.
package github

import (
	"context"
	"errors"
	"fmt"
	gogithub "github.com/google/go-github/v92/github"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// userAgent is sent with every request.
const userAgent = "kube-rotate"

// defaultTimeout bounds one HTTP request when the caller gives no client.
const defaultTimeout = 60 * time.Second

// Client talks to one repository through the GitHub REST API.
type Client struct {
	gh    *gogithub.Client
	owner string
	repo  string
	token string
	rt    *retryTransport
}

// New returns a Client for owner/repo. apiURL is the REST API root, such as
// https://api.github.com (or $GITHUB_API_URL, or a test server's URL); a
// missing trailing slash is added. httpClient may be nil; it is copied, not
// modified, and its transport is wrapped with the retry logic.
func New(apiURL, token, owner, repo string, httpClient *http.Client) (*Client, error) {
	if token == "" {
		return nil, errors.New("github_token is empty: pass a token (for example ${{ github.token }}) with access to the repository")
	}
	if owner == "" || repo == "" || strings.Contains(owner, "/") || strings.Contains(repo, "/") {
		return nil, fmt.Errorf("repository %q/%q is not valid: want an owner and a name, as in owner/repo", owner, repo)
	}
	if apiURL == "" {
		apiURL = "https://api.github.com/"
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not valid: want an absolute http(s) URL such as https://api.github.com", apiURL)
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}

	var hc http.Client
	if httpClient != nil {
		hc = *httpClient
	} else {
		hc.Timeout = defaultTimeout
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := newRetryTransport(base)
	hc.Transport = rt

	gh, err := gogithub.NewClient(
		gogithub.WithHTTPClient(&hc),
		gogithub.WithAuthToken(token),
		gogithub.WithURLs(&apiURL, &apiURL),
		gogithub.WithUserAgent(userAgent),
	)
	if err != nil {
		return nil, fmt.Errorf("creating GitHub client for %s: %w", apiURL, err)
	}
	return &Client{gh: gh, owner: owner, repo: repo, token: token, rt: rt}, nil
}

// SetRetryBackoff sets the wait before the first retry of a safe request
// (doubled for each further retry; the default is one second). A
// Retry-After header from GitHub takes precedence. Tests use a tiny value.
func (c *Client) SetRetryBackoff(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.rt.backoff = d
}

// Repo returns "owner/repo".
func (c *Client) Repo() string { return c.owner + "/" + c.repo }

// DefaultBranch returns the repository's default branch.
func (c *Client) DefaultBranch(ctx context.Context) (string, error) {
	r, _, err := c.gh.Repositories.Get(ctx, c.owner, c.repo)
	if err != nil {
		return "", c.fail("reading repository", err, "contents: read")
	}
	b := r.GetDefaultBranch()
	if b == "" {
		return "", fmt.Errorf("reading repository %s: GitHub returned no default branch (is the repository empty?)", c.Repo())
	}
	return b, nil
}

// Error is returned for requests GitHub answered with an error status. Its
// message is one line: what failed, GitHub's reason, and how to fix it.
// Unwrap gives the underlying go-github error (*github.ErrorResponse,
// *github.RateLimitError, ...).
type Error struct {
	// StatusCode is the HTTP status GitHub returned, 0 when no response came.
	StatusCode int
	msg        string
	err        error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the underlying go-github or transport error.
func (e *Error) Unwrap() error { return e.err }

// StatusCode returns the HTTP status of a failed GitHub request found in
// err's chain, or 0.
func StatusCode(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.StatusCode
	}
	if e, ok := errors.AsType[*gogithub.ErrorResponse](err); ok && e.Response != nil {
		return e.Response.StatusCode
	}
	return 0
}

const prSettingHint = "enable Settings > Actions > General > 'Allow GitHub Actions to create and approve pull requests', or use a token that may"

// fail turns a go-github error into a one-line *Error. op says what was
// being done ("creating issue ..."); perm names the workflow permission the
// operation needs ("issues: write").
func (c *Client) fail(op string, err error, perm string) error {
	where := op + " in " + c.Repo()
	e := &Error{err: err}
	var msg string
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("%s: %v", where, err)
	case asRateLimit(err) != "":
		e.StatusCode = statusOf(err)
		msg = fmt.Sprintf("%s: %s", where, asRateLimit(err))
	default:
		er, ok := errors.AsType[*gogithub.ErrorResponse](err)
		if !ok || er.Response == nil {
			msg = fmt.Sprintf("%s: %s", where, oneLine(err.Error()))
			break
		}
		code := er.Response.StatusCode
		e.StatusCode = code
		reason := describe(er)
		status := fmt.Sprintf("%d %s", code, reason)
		switch {
		case code == http.StatusUnauthorized:
			msg = fmt.Sprintf("%s: %s: the token was rejected; check that github_token is a valid, unexpired token", where, status)
		case code == http.StatusForbidden && strings.Contains(strings.ToLower(reason), "not permitted to create or approve pull requests"):
			msg = fmt.Sprintf("%s: %s: %s", where, status, prSettingHint)
		case code == http.StatusForbidden:
			msg = fmt.Sprintf("%s: %s: the token may not do this; grant `permissions: %s` in the workflow job, or use a token that may", where, status, perm)
		case code == http.StatusNotFound:
			msg = fmt.Sprintf("%s: %s: repository %s was not found or the token cannot access it; check the repository name and that the token has `%s` access", where, status, c.Repo(), perm)
		case code == http.StatusConflict:
			msg = fmt.Sprintf("%s: %s: the branch changed while it was being updated; run again", where, status)
		case code == http.StatusUnprocessableEntity:
			msg = fmt.Sprintf("%s: %s", where, status)
		case code >= 500:
			tried := fmt.Sprintf("after %d attempts", maxAttempts)
			if req := er.Response.Request; req != nil && !retriable(req) {
				tried = "not retried, to avoid duplicates"
			}
			msg = fmt.Sprintf("%s: %s: GitHub failed to answer (%s); run again later", where, status, tried)
		default:
			msg = fmt.Sprintf("%s: %s", where, status)
		}
	}
	e.msg = c.redact(msg)
	return e
}

// redact removes the token from s, should anything ever echo it.
func (c *Client) redact(s string) string {
	if len(c.token) >= 4 {
		s = strings.ReplaceAll(s, c.token, "***")
	}
	return s
}

// asRateLimit describes a rate-limit error, or returns "".
func asRateLimit(err error) string {
	if rl, ok := errors.AsType[*gogithub.RateLimitError](err); ok {
		return fmt.Sprintf("%s: GitHub API rate limit exhausted until %s; run again later",
			strings.TrimSpace(fmt.Sprintf("%d %s", statusOf(err), trimDot(oneLine(rl.Message)))), rl.Rate.Reset.Format(time.RFC3339))
	}
	if ab, ok := errors.AsType[*gogithub.AbuseRateLimitError](err); ok {
		wait := ""
		if ab.RetryAfter != nil {
			wait = fmt.Sprintf(" (GitHub asks to wait %v)", ab.RetryAfter.Round(time.Second))
		}
		return fmt.Sprintf("%d %s: GitHub secondary rate limit hit%s; run again later", statusOf(err), trimDot(oneLine(ab.Message)), wait)
	}
	return ""
}

func statusOf(err error) int {
	if rl, ok := errors.AsType[*gogithub.RateLimitError](err); ok && rl.Response != nil {
		return rl.Response.StatusCode
	}
	if ab, ok := errors.AsType[*gogithub.AbuseRateLimitError](err); ok && ab.Response != nil {
		return ab.Response.StatusCode
	}
	return 0
}

// describe renders GitHub's message plus validation details on one line.
func describe(er *gogithub.ErrorResponse) string {
	parts := []string{}
	if m := trimDot(oneLine(er.Message)); m != "" {
		parts = append(parts, m)
	}
	for _, d := range er.Errors {
		switch {
		case d.Message != "":
			parts = append(parts, trimDot(oneLine(d.Message)))
		case d.Field != "" || d.Code != "":
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %s %s", d.Resource, d.Field, d.Code)))
		}
	}
	if len(parts) == 0 {
		return http.StatusText(er.Response.StatusCode)
	}
	return strings.Join(parts, ": ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func trimDot(s string) string { return strings.TrimSuffix(strings.TrimSpace(s), ".") }

// isNotFound reports whether err is a 404 from GitHub.
func isNotFound(err error) bool {
	er, ok := errors.AsType[*gogithub.ErrorResponse](err)
	return ok && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

// is422 reports whether err is a 422 from GitHub whose text contains sub.
func is422(err error, sub string) bool {
	er, ok := errors.AsType[*gogithub.ErrorResponse](err)
	if !ok || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	return strings.Contains(strings.ToLower(describe(er)), strings.ToLower(sub))
}
