package github

import (
	"context"
	"errors"
	"fmt"
	gogithub "github.com/google/go-github/v92/github"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Issue and pull request actions reported in results.
const (
	ActionOpened       = "opened"
	ActionUpdated      = "updated"
	ActionUnchanged    = "unchanged"
	ActionClosed       = "closed"
	ActionWouldOpen    = "would open"
	ActionWouldUpdate  = "would update"
	ActionWouldClose   = "would close"
	markerPrefix       = "<!-- kube-rotate:"
	markerSuffix       = " -->"
	closeStateReason   = "completed"
	duplicateCloseText = "Closing: duplicate of #%d, which tracks the same credential."
)

// IssueSpec is one issue the caller wants open: Key identifies the credential
// across runs (it is stored in a hidden marker in the body, so it must not
// change when the title or body wording does).
type IssueSpec struct {
	Key    string
	Title  string
	Body   string
	Labels []string
	// Aliases are keys the same credential had before (ids without the
	// cluster): with no issue under Key, an open issue under an alias is
	// adopted (its marker rewritten to Key) instead of a new one opened.
	Aliases []string
}

// SyncOptions are SyncIssuesWith's options besides the wanted issues.
type SyncOptions struct {
	// Checked are the keys this run checked: their issues are closed when
	// not wanted. Issues under other keys are left alone.
	Checked map[string]bool
	// Claims are alias keys (see IssueSpec.Aliases) of credentials this run
	// checked and found not due, each with when the credential was last
	// written. An open issue under such a key that no wanted issue adopts
	// is closed only if the credential was written after the issue was
	// last updated: whoever owned it must have rotated since, and a
	// credential unchanged since then is not the one that was due. A zero
	// time never closes.
	Claims map[string]time.Time
	// CloseComment is posted before closing (nil or "": no comment).
	CloseComment func(key string) string
	// DryRun writes nothing; results say what would happen.
	DryRun bool
}

// IssueResult says what SyncIssues did (or, in a dry run, would do) about
// one issue. Number and URL are empty for an issue that would be opened.
type IssueResult struct {
	Key    string
	Number int
	URL    string
	// Action is one of "opened", "updated", "unchanged", "closed", and in a
	// dry run "would open", "would update", "would close".
	Action string
}

// markerRE finds the hidden marker SyncIssues puts at the end of a body.
var markerRE = regexp.MustCompile(`<!-- kube-rotate:(.*?) -->`)

// Marker returns the hidden HTML comment that ties an issue to key.
func Marker(key string) string { return markerPrefix + key + markerSuffix }

// markerKey returns the key of the last marker in body.
func markerKey(body string) (string, bool) {
	m := markerRE.FindAllStringSubmatch(body, -1)
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1][1], true
}

// issueBody is the body SyncIssues writes: the caller's text plus the marker.
func issueBody(s IssueSpec) string {
	b := strings.TrimRight(s.Body, "\n")
	if b == "" {
		return Marker(s.Key)
	}
	return b + "\n\n" + Marker(s.Key)
}

// normBody makes bodies comparable across GitHub's line-ending handling.
func normBody(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

func validKey(k string) error {
	switch {
	case strings.TrimSpace(k) == "":
		return errors.New("issue key is empty")
	case strings.ContainsAny(k, "\r\n"), strings.Contains(k, "-->"), k != strings.TrimSpace(k):
		return fmt.Errorf("issue key %q may not contain line breaks, \"-->\" or surrounding spaces", k)
	}
	return nil
}

// SyncIssues keeps exactly one open issue per wanted key, found by the label
// (open issues carrying label are listed with the issues API, pull requests
// skipped, no Search API) plus a hidden marker "<!-- kube-rotate:KEY -->"
// that SyncIssues appends to the body.
//
// For each wanted key: an existing issue gets its title and body updated
// when they differ, and any of label and spec.Labels it lacks added (labels
// people added are kept); otherwise it is "unchanged". A missing issue is
// created with label and spec.Labels. Should several open issues carry the
// same key, the oldest is kept and the others are closed as duplicates.
//
// Open issues carrying the label and a marker whose key is in checked but
// not in want get a comment (closeComment(key), skipped if closeComment is
// nil or returns "") and are closed with state_reason "completed". Issues
// whose key is not in checked, and issues without a marker, are left alone.
//
// With dryRun nothing is written and results say what would happen. Results
// come in the order of want, then closed issues by number. On error, the
// results of what was done so far are returned with it.
func (c *Client) SyncIssues(ctx context.Context, label string, want []IssueSpec, checked map[string]bool, closeComment func(key string) string, dryRun bool) ([]IssueResult, error) {
	return c.SyncIssuesWith(ctx, label, want, SyncOptions{Checked: checked, CloseComment: closeComment, DryRun: dryRun})
}

// SyncIssuesWith is SyncIssues with aliases and claims (see SyncOptions):
// how issues opened under an older key are adopted or closed.
func (c *Client) SyncIssuesWith(ctx context.Context, label string, want []IssueSpec, o SyncOptions) ([]IssueResult, error) {
	checked, closeComment, dryRun := o.Checked, o.CloseComment, o.DryRun
	if strings.TrimSpace(label) == "" || strings.Contains(label, ",") {
		return nil, fmt.Errorf("syncing issues in %s: label %q is not valid: want one non-empty label without commas", c.Repo(), label)
	}
	wanted := make(map[string]bool, len(want))
	for _, s := range want {
		if err := validKey(s.Key); err != nil {
			return nil, fmt.Errorf("syncing issues in %s: %w", c.Repo(), err)
		}
		if wanted[s.Key] {
			return nil, fmt.Errorf("syncing issues in %s: issue key %q is wanted twice", c.Repo(), s.Key)
		}
		for _, a := range s.Aliases {
			if err := validKey(a); err != nil {
				return nil, fmt.Errorf("syncing issues in %s: alias of %q: %w", c.Repo(), s.Key, err)
			}
		}
		if strings.TrimSpace(s.Title) == "" {
			return nil, fmt.Errorf("syncing issues in %s: issue %q has an empty title", c.Repo(), s.Key)
		}
		wanted[s.Key] = true
	}

	// Existing open issues by key, oldest first.
	byKey := map[string][]*gogithub.Issue{}
	opts := &gogithub.IssueListByRepoOptions{State: "open", Labels: []string{label}, Sort: "created", Direction: "asc"}
	opts.ListOptions.PerPage = 100
	for is, err := range c.gh.Issues.ListByRepoIter(ctx, c.owner, c.repo, opts) {
		if err != nil {
			return nil, c.fail(fmt.Sprintf("listing open issues labeled %q", label), err, "issues: read")
		}
		if is.IsPullRequest() {
			continue
		}
		if k, ok := markerKey(is.GetBody()); ok {
			byKey[k] = append(byKey[k], is)
		}
	}
	for _, l := range byKey {
		sort.Slice(l, func(i, j int) bool { return l[i].GetNumber() < l[j].GetNumber() })
	}

	var res []IssueResult
	var closes []IssueResult
	adopted := map[string]bool{}
	for _, s := range want {
		labels := withLabel(s.Labels, label)
		body := issueBody(s)
		found := byKey[s.Key]
		if len(found) == 0 {
			// An issue opened under an older key of this credential is
			// adopted: the first wanted issue takes it.
			for _, a := range s.Aliases {
				if len(byKey[a]) > 0 && !adopted[a] && !wanted[a] {
					found, adopted[a] = byKey[a], true
					break
				}
			}
		}
		if len(found) == 0 {
			if dryRun {
				res = append(res, IssueResult{Key: s.Key, Action: ActionWouldOpen})
				continue
			}
			is, _, err := c.gh.Issues.Create(ctx, c.owner, c.repo, gogithub.CreateIssueRequest{Title: s.Title, Body: &body, Labels: labels})
			if err != nil {
				return res, c.fail(fmt.Sprintf("creating issue %q", s.Title), err, "issues: write")
			}
			res = append(res, IssueResult{Key: s.Key, Number: is.GetNumber(), URL: is.GetHTMLURL(), Action: ActionOpened})
			continue
		}
		is := found[0]
		r := IssueResult{Key: s.Key, Number: is.GetNumber(), URL: is.GetHTMLURL(), Action: ActionUnchanged}
		var upd gogithub.UpdateIssueRequest
		changed := false
		if is.GetTitle() != s.Title {
			upd.Title, changed = &s.Title, true
		}
		if normBody(is.GetBody()) != normBody(body) {
			upd.Body, changed = &body, true
		}
		if merged, add := mergeLabels(is.Labels, labels); add {
			upd.Labels, changed = merged, true
		}
		if changed {
			if dryRun {
				r.Action = ActionWouldUpdate
			} else {
				if _, _, err := c.gh.Issues.Update(ctx, c.owner, c.repo, is.GetNumber(), upd); err != nil {
					return res, c.fail(fmt.Sprintf("updating issue #%d", is.GetNumber()), err, "issues: write")
				}
				r.Action = ActionUpdated
			}
		}
		res = append(res, r)
		for _, dup := range found[1:] {
			cr, err := c.closeIssue(ctx, s.Key, dup, fmt.Sprintf(duplicateCloseText, is.GetNumber()), dryRun)
			if err != nil {
				return append(res, closes...), err
			}
			closes = append(closes, cr)
		}
	}

	var stale []string
	for k, l := range byKey {
		if wanted[k] || adopted[k] {
			continue
		}
		if checked[k] {
			stale = append(stale, k)
			continue
		}
		if since, ok := o.Claims[k]; ok && !since.IsZero() && since.After(lastUpdate(l)) {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	for _, k := range stale {
		text := ""
		if closeComment != nil {
			text = closeComment(k)
		}
		for _, is := range byKey[k] {
			cr, err := c.closeIssue(ctx, k, is, text, dryRun)
			if err != nil {
				return append(res, closes...), err
			}
			closes = append(closes, cr)
		}
	}
	sort.SliceStable(closes, func(i, j int) bool { return closes[i].Number < closes[j].Number })
	return append(res, closes...), nil
}

// lastUpdate is when the most recently updated of issues was updated.
func lastUpdate(issues []*gogithub.Issue) time.Time {
	var t time.Time
	for _, is := range issues {
		if u := is.GetUpdatedAt().Time; u.After(t) {
			t = u
		}
	}
	return t
}

// closeIssue comments (if comment is not empty) and closes one issue.
func (c *Client) closeIssue(ctx context.Context, key string, is *gogithub.Issue, comment string, dryRun bool) (IssueResult, error) {
	r := IssueResult{Key: key, Number: is.GetNumber(), URL: is.GetHTMLURL(), Action: ActionWouldClose}
	if dryRun {
		return r, nil
	}
	if strings.TrimSpace(comment) != "" {
		if _, _, err := c.gh.Issues.CreateComment(ctx, c.owner, c.repo, is.GetNumber(), gogithub.IssueCommentRequest{Body: comment}); err != nil {
			return r, c.fail(fmt.Sprintf("commenting on issue #%d", is.GetNumber()), err, "issues: write")
		}
	}
	state, reason := "closed", closeStateReason
	if _, _, err := c.gh.Issues.Update(ctx, c.owner, c.repo, is.GetNumber(), gogithub.UpdateIssueRequest{State: &state, StateReason: &reason}); err != nil {
		return r, c.fail(fmt.Sprintf("closing issue #%d", is.GetNumber()), err, "issues: write")
	}
	r.Action = ActionClosed
	return r, nil
}

// withLabel returns labels plus label, without duplicates (GitHub label
// names compare case-insensitively).
func withLabel(labels []string, label string) []string {
	out := []string{label}
	for _, l := range labels {
		l = strings.TrimSpace(l)
		if l == "" || slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, l) }) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// mergeLabels returns the issue's labels plus the wanted ones it lacks, and
// whether any were missing.
func mergeLabels(have []*gogithub.Label, want []string) ([]string, bool) {
	var out []string
	for _, l := range have {
		out = append(out, l.GetName())
	}
	missing := false
	for _, w := range want {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, w) }) {
			out = append(out, w)
			missing = true
		}
	}
	return out, missing
}
