package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// newIssue stores a new open issue. Caller holds mu.
func (s *Server) newIssue(title, body string, labels []string) *issueRec {
	s.lastNumber++
	s.lastID++
	now := s.now()
	is := &issueRec{
		number: s.lastNumber, id: s.lastID, title: title, body: body, state: "open",
		user: BotLogin, created: now, updated: now,
	}
	is.labels = s.addLabels(nil, labels)
	s.issues[is.number] = is
	return is
}

// addLabels adds names to have (case-insensitively unique), creating
// repository labels on first use as GitHub does for writers.
func (s *Server) addLabels(have, names []string) []string {
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, n) }) {
			continue
		}
		if _, ok := s.labelIDs[strings.ToLower(n)]; !ok {
			s.lastID++
			s.labelIDs[strings.ToLower(n)] = s.lastID
		}
		have = append(have, n)
	}
	return have
}

func (s *Server) labelsJSON(names []string) []any {
	out := []any{}
	for _, n := range names {
		out = append(out, map[string]any{
			"id": s.labelIDs[strings.ToLower(n)], "node_id": "LA_fake", "name": n, "color": "ededed", "default": false,
			"url": s.URL + s.repoPath("labels/"+n),
		})
	}
	return out
}

func (s *Server) issueJSON(is *issueRec) map[string]any {
	var reason any
	if is.stateReason != "" {
		reason = is.stateReason
	}
	m := map[string]any{
		"id":                 is.id,
		"node_id":            fmt.Sprintf("I_fake%d", is.id),
		"number":             is.number,
		"title":              is.title,
		"body":               is.body,
		"state":              is.state,
		"state_reason":       reason,
		"locked":             false,
		"labels":             s.labelsJSON(is.labels),
		"assignees":          []any{},
		"user":               s.userJSON(is.user),
		"comments":           len(is.comments),
		"url":                s.URL + s.repoPath("issues/"+strconv.Itoa(is.number)),
		"html_url":           fmt.Sprintf("https://github.com/%s/%s/issues/%d", s.owner, s.repo, is.number),
		"created_at":         ts(is.created),
		"updated_at":         ts(is.updated),
		"closed_at":          ts(is.closed),
		"author_association": "NONE",
	}
	if is.pull != nil {
		m["html_url"] = fmt.Sprintf("https://github.com/%s/%s/pull/%d", s.owner, s.repo, is.number)
		m["pull_request"] = map[string]any{
			"url":      s.URL + s.repoPath("pulls/"+strconv.Itoa(is.number)),
			"html_url": m["html_url"],
		}
	}
	return m
}

// lookupIssue finds {number}; it writes 404 and returns nil if missing.
func (s *Server) lookupIssue(w http.ResponseWriter, r *http.Request) *issueRec {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		notFound(w)
		return nil
	}
	is, ok := s.issues[n]
	if !ok {
		notFound(w)
		return nil
	}
	return is
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		validationFailed(w, "Issue", "state", "invalid", "")
		return
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		for _, x := range strings.Split(l, ",") {
			if x = strings.TrimSpace(x); x != "" {
				want = append(want, x)
			}
		}
	}
	creator := q.Get("creator")
	var list []*issueRec
	for _, is := range s.issues {
		if state != "all" && is.state != state {
			continue
		}
		if creator != "" && !strings.EqualFold(creator, is.user) {
			continue
		}
		hasAll := true
		for _, l := range want {
			if !slices.ContainsFunc(is.labels, func(h string) bool { return strings.EqualFold(h, l) }) {
				hasAll = false
				break
			}
		}
		if hasAll {
			list = append(list, is)
		}
	}
	sortIssues(list, q.Get("sort"), q.Get("direction"))
	items := make([]any, 0, len(list))
	for _, is := range list {
		items = append(items, s.issueJSON(is))
	}
	s.paginate(w, r, items)
}

// sortIssues orders like GitHub: by created (default) or updated, desc by
// default.
func sortIssues(list []*issueRec, by, dir string) {
	asc := dir == "asc"
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		var less bool
		switch by {
		case "updated":
			less = a.updated.Before(b.updated) || (a.updated.Equal(b.updated) && a.number < b.number)
		case "comments":
			less = len(a.comments) < len(b.comments) || (len(a.comments) == len(b.comments) && a.number < b.number)
		default:
			less = a.number < b.number
		}
		if asc {
			return less
		}
		return !less
	})
}

type issueCreate struct {
	Title     *string  `json:"title"`
	Body      *string  `json:"body"`
	Labels    []string `json:"labels"`
	Assignees []string `json:"assignees"`
}

func (s *Server) createIssue(w http.ResponseWriter, r *http.Request) {
	var in issueCreate
	if !decode(w, r, &in) {
		return
	}
	if in.Title == nil || strings.TrimSpace(*in.Title) == "" {
		validationFailed(w, "Issue", "title", "missing_field", "")
		return
	}
	body := ""
	if in.Body != nil {
		body = *in.Body
	}
	is := s.newIssue(*in.Title, body, in.Labels)
	w.Header().Set("Location", s.URL+s.repoPath("issues/"+strconv.Itoa(is.number)))
	writeJSON(w, http.StatusCreated, s.issueJSON(is))
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request) {
	if is := s.lookupIssue(w, r); is != nil {
		writeJSON(w, http.StatusOK, s.issueJSON(is))
	}
}

type issueUpdate struct {
	Title       *string   `json:"title"`
	Body        *string   `json:"body"`
	State       *string   `json:"state"`
	StateReason *string   `json:"state_reason"`
	Labels      *[]string `json:"labels"`
}

func (s *Server) updateIssue(w http.ResponseWriter, r *http.Request) {
	is := s.lookupIssue(w, r)
	if is == nil {
		return
	}
	var in issueUpdate
	if !decode(w, r, &in) {
		return
	}
	if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
		validationFailed(w, "Issue", "title", "missing_field", "")
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		validationFailed(w, "Issue", "state", "invalid", "")
		return
	}
	if in.StateReason != nil {
		switch *in.StateReason {
		case "completed", "not_planned", "reopened":
		default:
			validationFailed(w, "Issue", "state_reason", "invalid", "")
			return
		}
	}
	if in.Title != nil {
		is.title = *in.Title
	}
	if in.Body != nil {
		is.body = *in.Body
	}
	if in.Labels != nil {
		is.labels = s.addLabels(nil, *in.Labels)
	}
	if in.State != nil && *in.State != is.state {
		is.state = *in.State
		if is.state == "closed" {
			is.closed = s.now()
			is.stateReason = "completed"
		} else {
			is.closed = time.Time{}
			is.stateReason = "reopened"
		}
	}
	if in.StateReason != nil {
		is.stateReason = *in.StateReason
	}
	is.updated = s.now()
	writeJSON(w, http.StatusOK, s.issueJSON(is))
}

func (s *Server) commentJSON(is *issueRec, c commentRec) map[string]any {
	return map[string]any{
		"id":         c.id,
		"node_id":    fmt.Sprintf("IC_fake%d", c.id),
		"body":       c.body,
		"user":       s.userJSON(c.user),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/issues/%d#issuecomment-%d", s.owner, s.repo, is.number, c.id),
		"issue_url":  s.URL + s.repoPath("issues/"+strconv.Itoa(is.number)),
		"created_at": ts(c.created),
		"updated_at": ts(c.created),
	}
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	is := s.lookupIssue(w, r)
	if is == nil {
		return
	}
	items := []any{}
	for _, c := range is.comments {
		items = append(items, s.commentJSON(is, c))
	}
	s.paginate(w, r, items)
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	is := s.lookupIssue(w, r)
	if is == nil {
		return
	}
	var in struct {
		Body *string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Body == nil || strings.TrimSpace(*in.Body) == "" {
		validationFailed(w, "IssueComment", "body", "missing_field", "")
		return
	}
	s.lastID++
	c := commentRec{id: s.lastID, body: *in.Body, user: BotLogin, created: s.now()}
	is.comments = append(is.comments, c)
	is.updated = c.created
	writeJSON(w, http.StatusCreated, s.commentJSON(is, c))
}

func (s *Server) listIssueLabels(w http.ResponseWriter, r *http.Request) {
	if is := s.lookupIssue(w, r); is != nil {
		writeJSON(w, http.StatusOK, s.labelsJSON(is.labels))
	}
}

// addIssueLabels accepts ["a","b"] or {"labels":["a","b"]}.
func (s *Server) addIssueLabels(w http.ResponseWriter, r *http.Request) {
	is := s.lookupIssue(w, r)
	if is == nil {
		return
	}
	var names []string
	b := peekBody(r)
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		var in struct {
			Labels []string `json:"labels"`
		}
		if !decode(w, r, &in) {
			return
		}
		names = in.Labels
	} else if !decode(w, r, &names) {
		return
	}
	is.labels = s.addLabels(is.labels, names)
	is.updated = s.now()
	writeJSON(w, http.StatusOK, s.labelsJSON(is.labels))
}
