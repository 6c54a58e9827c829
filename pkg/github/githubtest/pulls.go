package githubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pullHeadSHA is the head commit of a pull request (frozen once merged).
func (s *Server) pullHeadSHA(is *issueRec) string {
	if is.pull.merged {
		return is.pull.mergedSHA
	}
	return s.branches[is.pull.head]
}

func (s *Server) pullJSON(is *issueRec) map[string]any {
	repo := s.repoJSON()
	branch := func(name, sha string) map[string]any {
		return map[string]any{"ref": name, "label": s.owner + ":" + name, "sha": sha, "user": s.userJSON(s.owner), "repo": repo}
	}
	m := s.issueJSON(is)
	delete(m, "pull_request")
	delete(m, "state_reason")
	m["id"] = is.pull.id
	m["url"] = s.URL + s.repoPath("pulls/"+strconv.Itoa(is.number))
	m["issue_url"] = s.URL + s.repoPath("issues/"+strconv.Itoa(is.number))
	m["head"] = branch(is.pull.head, s.pullHeadSHA(is))
	m["base"] = branch(is.pull.base, s.branches[is.pull.base])
	m["merged"] = is.pull.merged
	m["draft"] = false
	m["merged_at"] = nil
	if is.pull.merged {
		m["merged_at"] = ts(is.closed)
	}
	return m
}

// lookupPull finds {number} among pull requests, writing 404 if missing.
func (s *Server) lookupPull(w http.ResponseWriter, r *http.Request) *issueRec {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		notFound(w)
		return nil
	}
	is, ok := s.issues[n]
	if !ok || is.pull == nil {
		notFound(w)
		return nil
	}
	return is
}

// headBranch parses a head filter or field: "owner:branch" or "branch".
// ok is false for another owner.
func (s *Server) headBranch(head string) (string, bool) {
	if o, b, found := strings.Cut(head, ":"); found {
		return b, strings.EqualFold(o, s.owner)
	}
	return head, true
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		validationFailed(w, "PullRequest", "state", "invalid", "")
		return
	}
	var list []*issueRec
	for _, is := range s.issues {
		if is.pull == nil || (state != "all" && is.state != state) {
			continue
		}
		if h := q.Get("head"); h != "" {
			b, ok := s.headBranch(h)
			if !ok || b != is.pull.head {
				continue
			}
		}
		if b := q.Get("base"); b != "" && b != is.pull.base {
			continue
		}
		list = append(list, is)
	}
	sortIssues(list, q.Get("sort"), q.Get("direction"))
	items := make([]any, 0, len(list))
	for _, is := range list {
		items = append(items, s.pullJSON(is))
	}
	s.paginate(w, r, items)
}

type pullCreate struct {
	Title *string `json:"title"`
	Head  *string `json:"head"`
	Base  *string `json:"base"`
	Body  *string `json:"body"`
	Draft *bool   `json:"draft"`
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request) {
	if s.denyPR {
		writeError(w, http.StatusForbidden, "GitHub Actions is not permitted to create or approve pull requests.")
		return
	}
	var in pullCreate
	if !decode(w, r, &in) {
		return
	}
	switch {
	case in.Title == nil || strings.TrimSpace(*in.Title) == "":
		validationFailed(w, "PullRequest", "title", "missing_field", "")
		return
	case in.Head == nil || *in.Head == "":
		validationFailed(w, "PullRequest", "head", "missing_field", "")
		return
	case in.Base == nil || *in.Base == "":
		validationFailed(w, "PullRequest", "base", "missing_field", "")
		return
	}
	head, ok := s.headBranch(*in.Head)
	headSHA, exists := s.branches[head]
	if !ok || !exists {
		validationFailed(w, "PullRequest", "head", "invalid", "")
		return
	}
	baseSHA, exists := s.branches[*in.Base]
	if !exists {
		validationFailed(w, "PullRequest", "base", "invalid", "")
		return
	}
	for _, is := range s.issues {
		if is.pull != nil && is.state == "open" && is.pull.head == head && is.pull.base == *in.Base {
			validationFailed(w, "PullRequest", "", "custom", fmt.Sprintf("A pull request already exists for %s:%s.", s.owner, head))
			return
		}
	}
	if s.isAncestor(headSHA, baseSHA) {
		validationFailed(w, "PullRequest", "", "custom", fmt.Sprintf("No commits between %s and %s", *in.Base, head))
		return
	}
	body := ""
	if in.Body != nil {
		body = *in.Body
	}
	is := s.newIssue(*in.Title, body, nil)
	s.lastID++
	is.pull = &pullRec{id: s.lastID, head: head, base: *in.Base}
	w.Header().Set("Location", s.URL+s.repoPath("pulls/"+strconv.Itoa(is.number)))
	writeJSON(w, http.StatusCreated, s.pullJSON(is))
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	if is := s.lookupPull(w, r); is != nil {
		writeJSON(w, http.StatusOK, s.pullJSON(is))
	}
}

type pullUpdate struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
	State *string `json:"state"`
	Base  *string `json:"base"`
}

func (s *Server) updatePull(w http.ResponseWriter, r *http.Request) {
	is := s.lookupPull(w, r)
	if is == nil {
		return
	}
	var in pullUpdate
	if !decode(w, r, &in) {
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		validationFailed(w, "PullRequest", "state", "invalid", "")
		return
	}
	if in.Base != nil {
		if _, ok := s.branches[*in.Base]; !ok {
			validationFailed(w, "PullRequest", "base", "invalid", "")
			return
		}
	}
	if in.Title != nil {
		is.title = *in.Title
	}
	if in.Body != nil {
		is.body = *in.Body
	}
	if in.Base != nil {
		is.pull.base = *in.Base
	}
	if in.State != nil && *in.State != is.state {
		if is.pull.merged {
			validationFailed(w, "PullRequest", "state", "invalid", "")
			return
		}
		is.state = *in.State
		if is.state == "closed" {
			is.closed = s.now()
		} else {
			is.closed = time.Time{}
		}
	}
	is.updated = s.now()
	writeJSON(w, http.StatusOK, s.pullJSON(is))
}
