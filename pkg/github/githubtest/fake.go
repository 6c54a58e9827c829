// Package githubtest is a stateful fake of the parts of the GitHub REST API that
// package github uses (repository, issues, comments, labels, git refs,
// contents, pull requests), for tests of github and of its callers.
//
// It speaks GitHub's JSON shapes and status codes: pagination with a Link
// header, 404/409/422 where GitHub answers them, PRs listed among issues with
// a pull_request field. Assertions look at the state (Issues, Pulls, File,
// Branches) and at the recorded requests (Requests). Faults are injected
// with FailNext, RequireToken and DenyPullRequestCreation.
//
//	srv := githubtest.New(t, "o", "r", "main")
//	c, _ := github.New(srv.URL, "t", "o", "r", nil)
//
// A Server is safe for concurrent use.
package githubtest

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const docsURL = "https://docs.github.com/rest"

// BotLogin is the login the fake reports as author of everything created
// through the API.
const BotLogin = "github-actions[bot]"

// Issue is a snapshot of one issue (pull requests excluded).
type Issue struct {
	Number      int
	Title       string
	Body        string
	State       string // "open" or "closed"
	StateReason string // "", "completed", "not_planned", "reopened", ...
	Labels      []string
	Comments    []string // comment bodies, oldest first
	User        string
}

// Pull is a snapshot of one pull request.
type Pull struct {
	Number   int
	Title    string
	Body     string
	State    string // "open" or "closed"
	Merged   bool
	Head     string // head branch name
	HeadSHA  string
	Base     string // base branch name
	Labels   []string
	Comments []string
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string // URL path, unescaped, e.g. /repos/o/r/issues/3
	Query  string // raw query
	Body   string
	Status int // status the fake answered
}

// Server is a running fake GitHub API for one repository.
type Server struct {
	// URL is the base API URL to give github.New (no trailing slash).
	URL string

	srv           *httptest.Server
	mux           *http.ServeMux
	t             testing.TB
	owner, repo   string
	defaultBranch string

	mu       sync.Mutex
	token    string
	denyPR   bool
	faults   []*fault
	requests []Request
	clock    time.Time

	lastNumber int
	lastID     int64
	issues     map[int]*issueRec // issues and pull requests share numbers
	labelIDs   map[string]int64  // lower-case name -> id
	commits    map[string]*commit
	branches   map[string]string // branch -> commit sha
}

type issueRec struct {
	number      int
	id          int64
	title, body string
	state       string
	stateReason string
	labels      []string
	comments    []commentRec
	user        string
	created     time.Time
	updated     time.Time
	closed      time.Time
	pull        *pullRec
}

type pullRec struct {
	id        int64
	head      string
	base      string
	merged    bool
	mergedSHA string
}

type commentRec struct {
	id      int64
	body    string
	user    string
	created time.Time
}

type commit struct {
	sha     string
	parents []string
	message string
	files   map[string][]byte
	date    time.Time
}

type fault struct {
	method  string
	pattern string
	status  int
	message string
	times   int // remaining; <0 = forever
}

// New starts a fake for owner/repo whose default branch (created with an
// empty initial commit) is defaultBranch ("main" if empty). If t is not nil
// the server is closed when the test ends.
func New(t testing.TB, owner, repo, defaultBranch string) *Server {
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	s := &Server{
		t:             t,
		owner:         owner,
		repo:          repo,
		defaultBranch: defaultBranch,
		clock:         time.Time{},
		issues:        map[int]*issueRec{},
		labelIDs:      map[string]int64{},
		commits:       map[string]*commit{},
		branches:      map[string]string{},
	}
	root := s.newCommit(nil, "Initial commit", map[string][]byte{})
	s.branches[defaultBranch] = root.sha
	s.routes()
	s.srv = httptest.NewUnstartedServer(s)
	s.URL = "http://" + s.srv.Listener.Addr().String()
	s.srv.Start()
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// RequireToken makes every request without "Authorization: Bearer <token>"
// or "Authorization: token <token>" fail with 401 Bad credentials. An empty
// token turns the check off (the default).
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// DenyPullRequestCreation makes POST .../pulls fail with GitHub's 403 "GitHub
// Actions is not permitted to create or approve pull requests." (the
// repository setting that forbids GITHUB_TOKEN to open pull requests).
func (s *Server) DenyPullRequestCreation(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyPR = deny
}

// FailNext makes the next times requests matching method and pathPattern
// fail with status and {"message": message}; times <= 0 means every matching
// request until ClearFaults. method "" or "*" matches any method.
//
// pathPattern is matched against the unescaped URL path. A pattern not
// starting with "/" is relative to the repository, so "issues" means
// "/repos/{owner}/{repo}/issues". The pattern is matched with path.Match
// ("issues/*" matches "issues/3" but not "issues/3/comments"); a pattern
// ending in "/..." matches every path below its prefix ("contents/...").
//
// A 429, and a 403 whose message mentions "rate limit", carry
// "Retry-After: 0" and the secondary-rate-limit documentation_url, as GitHub
// sends them.
func (s *Server) FailNext(method, pathPattern string, status int, message string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.HasPrefix(pathPattern, "/") {
		pathPattern = s.repoPath(pathPattern)
	}
	if times <= 0 {
		times = -1
	}
	s.faults = append(s.faults, &fault{method: strings.ToUpper(method), pattern: pathPattern, status: status, message: message, times: times})
}

// ClearFaults removes all faults FailNext set up.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Issues returns all issues, open and closed, by number; pull requests are
// not included (see Pulls).
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, n := range s.numbers() {
		is := s.issues[n]
		if is.pull != nil {
			continue
		}
		out = append(out, Issue{
			Number: is.number, Title: is.title, Body: is.body, State: is.state, StateReason: is.stateReason,
			Labels: slices.Clone(is.labels), Comments: commentBodies(is), User: is.user,
		})
	}
	return out
}

// Pulls returns all pull requests, open and closed, by number.
func (s *Server) Pulls() []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pull
	for _, n := range s.numbers() {
		is := s.issues[n]
		if is.pull == nil {
			continue
		}
		out = append(out, Pull{
			Number: is.number, Title: is.title, Body: is.body, State: is.state, Merged: is.pull.merged,
			Head: is.pull.head, HeadSHA: s.pullHeadSHA(is), Base: is.pull.base,
			Labels: slices.Clone(is.labels), Comments: commentBodies(is),
		})
	}
	return out
}

// AddIssue seeds an issue as if a person had opened it, and returns its
// number. State "" means open; a closed issue gets state_reason completed.
func (s *Server) AddIssue(is Issue) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.newIssue(is.Title, is.Body, is.Labels)
	if is.User != "" {
		rec.user = is.User
	} else {
		rec.user = "octocat"
	}
	for _, c := range is.Comments {
		s.lastID++
		rec.comments = append(rec.comments, commentRec{id: s.lastID, body: c, user: rec.user, created: s.now()})
	}
	if is.State == "closed" {
		rec.state, rec.stateReason, rec.closed = "closed", is.StateReason, s.now()
		if rec.stateReason == "" {
			rec.stateReason = "completed"
		}
	}
	return rec.number
}

// MergePull merges an open pull request: its base branch gets a merge commit
// with the head's files, and the pull request is closed as merged.
func (s *Server) MergePull(number int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[number]
	if !ok || is.pull == nil {
		return fmt.Errorf("githubtest: no pull request #%d", number)
	}
	if is.state != "open" {
		return fmt.Errorf("githubtest: pull request #%d is not open", number)
	}
	headSHA, ok := s.branches[is.pull.head]
	if !ok {
		return fmt.Errorf("githubtest: head branch %s of #%d is gone", is.pull.head, number)
	}
	baseSHA := s.branches[is.pull.base]
	files := maps(s.commits[baseSHA].files)
	for p, b := range s.commits[headSHA].files {
		files[p] = b
	}
	c := s.newCommit([]string{baseSHA, headSHA}, fmt.Sprintf("Merge pull request #%d from %s/%s", number, s.owner, is.pull.head), files)
	s.branches[is.pull.base] = c.sha
	is.pull.merged, is.pull.mergedSHA = true, headSHA
	is.state, is.closed, is.updated = "closed", s.now(), s.now()
	return nil
}

// SetFile commits content at path on branch (created from the default
// branch if missing), as a person pushing would.
func (s *Server) SetFile(branch, filePath string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if branch == "" {
		branch = s.defaultBranch
	}
	head, ok := s.branches[branch]
	if !ok {
		head = s.branches[s.defaultBranch]
	}
	files := maps(s.commits[head].files)
	files[strings.TrimPrefix(filePath, "/")] = bytes.Clone(content)
	c := s.newCommit([]string{head}, "Update "+filePath, files)
	s.branches[branch] = c.sha
}

// File returns the content of path at the head of branch.
func (s *Server) File(branch, filePath string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.branches[branch]
	if !ok {
		return nil, false
	}
	b, ok := s.commits[sha].files[filePath]
	return bytes.Clone(b), ok
}

// Branches returns the branch names, sorted.
func (s *Server) Branches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for b := range s.branches {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// BranchSHA returns the commit sha at the head of branch, "" if missing.
func (s *Server) BranchSHA(branch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.branches[branch]
}

// CommitMessages returns the messages of the commits reachable from branch
// by first parents, newest first.
func (s *Server) CommitMessages(branch string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for sha := s.branches[branch]; sha != ""; {
		c := s.commits[sha]
		out = append(out, c.message)
		sha = ""
		if len(c.parents) > 0 {
			sha = c.parents[0]
		}
	}
	return out
}

// ---- plumbing ----

func (s *Server) repoPath(rel string) string {
	return "/repos/" + s.owner + "/" + s.repo + "/" + strings.TrimPrefix(rel, "/")
}

func (s *Server) numbers() []int {
	var ns []int
	for n := range s.issues {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return ns
}

// now returns the wall clock in GitHub's resolution (seconds), strictly
// increasing so that sorting by date is stable: created_at and updated_at
// compare with the times of the credentials they are about, as on GitHub.
func (s *Server) now() time.Time {
	t := time.Now().UTC().Truncate(time.Second)
	if !t.After(s.clock) {
		t = s.clock.Add(time.Second)
	}
	s.clock = t
	return s.clock
}

func commentBodies(is *issueRec) []string {
	var out []string
	for _, c := range is.comments {
		out = append(out, c.body)
	}
	return out
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) newCommit(parents []string, message string, files map[string][]byte) *commit {
	s.lastID++
	h := sha1.Sum(fmt.Appendf(nil, "commit %d %s %s", s.lastID, strings.Join(parents, ","), message))
	c := &commit{sha: hex.EncodeToString(h[:]), parents: parents, message: message, files: files, date: s.now()}
	s.commits[c.sha] = c
	return c
}

// blobSHA is git's object id of a blob with content b.
func blobSHA(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// isAncestor reports whether commit a is reachable from b (or equal).
func (s *Server) isAncestor(a, b string) bool {
	seen := map[string]bool{}
	queue := []string{b}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x == a {
			return true
		}
		if seen[x] || s.commits[x] == nil {
			continue
		}
		seen[x] = true
		queue = append(queue, s.commits[x].parents...)
	}
	return false
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler: authentication, fault injection,
// routing and request recording.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Status: sw.status})
		s.mu.Unlock()
	}()
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")

	s.mu.Lock()
	token := s.token
	f := s.takeFault(r)
	s.mu.Unlock()

	if token != "" {
		auth := r.Header.Get("Authorization")
		if auth != "Bearer "+token && auth != "token "+token {
			writeJSON(sw, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": docsURL, "status": "401"})
			return
		}
	}
	if f != nil {
		m := map[string]any{"message": f.message, "documentation_url": docsURL, "status": strconv.Itoa(f.status)}
		if f.status == http.StatusTooManyRequests || (f.status == http.StatusForbidden && strings.Contains(strings.ToLower(f.message), "rate limit")) {
			sw.Header().Set("Retry-After", "0")
			m["documentation_url"] = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
		}
		writeJSON(sw, f.status, m)
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if s.t != nil {
			s.t.Logf("githubtest: no route for %s %s", r.Method, r.URL.Path)
		}
		notFound(sw)
		return
	}
	if len(body) > 0 && (r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				writeJSON(sw, http.StatusUnsupportedMediaType, map[string]any{"message": "Unsupported 'Content-Type' header", "documentation_url": docsURL, "status": "415"})
				return
			}
		}
	}
	s.mux.ServeHTTP(sw, r)
}

// takeFault returns and consumes the first fault matching r. Caller holds mu.
func (s *Server) takeFault(r *http.Request) *fault {
	for i, f := range s.faults {
		if f.method != "" && f.method != "*" && f.method != r.Method {
			continue
		}
		if !matchPath(f.pattern, r.URL.Path) {
			continue
		}
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

func matchPath(pattern, p string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == prefix || strings.HasPrefix(p, prefix+"/")
	}
	ok, err := path.Match(pattern, p)
	return err == nil && ok
}

// handle registers a repository route: {owner}/{repo} must match the fake's
// repository (case-insensitively, as on GitHub), and the handler runs under
// the state lock.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.PathValue("owner"), s.owner) || !strings.EqualFold(r.PathValue("repo"), s.repo) {
			notFound(w)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h(w, r)
	})
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	const p = "/repos/{owner}/{repo}"
	s.handle("GET "+p, s.getRepo)

	s.handle("GET "+p+"/issues", s.listIssues)
	s.handle("POST "+p+"/issues", s.createIssue)
	s.handle("GET "+p+"/issues/{number}", s.getIssue)
	s.handle("PATCH "+p+"/issues/{number}", s.updateIssue)
	s.handle("GET "+p+"/issues/{number}/comments", s.listComments)
	s.handle("POST "+p+"/issues/{number}/comments", s.createComment)
	s.handle("GET "+p+"/issues/{number}/labels", s.listIssueLabels)
	s.handle("POST "+p+"/issues/{number}/labels", s.addIssueLabels)

	s.handle("GET "+p+"/git/ref/{ref...}", s.getRef)
	s.handle("GET "+p+"/git/commits/{sha}", s.getCommit)
	s.handle("POST "+p+"/git/refs", s.createRef)
	s.handle("PATCH "+p+"/git/refs/{ref...}", s.updateRef)
	s.handle("DELETE "+p+"/git/refs/{ref...}", s.deleteRef)

	s.handle("GET "+p+"/contents/{path...}", s.getContents)
	s.handle("PUT "+p+"/contents/{path...}", s.putContents)

	s.handle("GET "+p+"/pulls", s.listPulls)
	s.handle("POST "+p+"/pulls", s.createPull)
	s.handle("GET "+p+"/pulls/{number}", s.getPull)
	s.handle("PATCH "+p+"/pulls/{number}", s.updatePull)
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"message": message, "documentation_url": docsURL, "status": strconv.Itoa(status)})
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "Not Found") }

// validationFailed writes GitHub's 422 with one error entry.
func validationFailed(w http.ResponseWriter, resource, field, code, message string) {
	e := map[string]any{"resource": resource, "code": code}
	if field != "" {
		e["field"] = field
	}
	if message != "" {
		e["message"] = message
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed", "errors": []any{e}, "documentation_url": docsURL, "status": "422",
	})
}

// decode reads a JSON object body into v. On failure it writes GitHub's
// answer (400 for malformed JSON, 422 for wrong types) and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	err := json.Unmarshal(b, v)
	if err == nil {
		return true
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', %s is not a %s.", te.Field, te.Value, te.Type.Kind()))
		return false
	}
	writeError(w, http.StatusBadRequest, "Problems parsing JSON")
	return false
}

// peekBody returns the request body and leaves it readable again.
func peekBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// paginate answers a list with page/per_page and a Link header like GitHub.
func (s *Server) paginate(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(items)+per-1)/per, 1)
	lo := min((page-1)*per, len(items))
	hi := min(lo+per, len(items))
	link := func(p int, rel string) string {
		q2 := r.URL.Query()
		q2.Set("page", strconv.Itoa(p))
		u := s.URL + (&url.URL{Path: r.URL.Path}).EscapedPath() + "?" + q2.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u, rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	out := items[lo:hi]
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) userJSON(login string) map[string]any {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{"login": login, "id": 41898282, "type": typ}
}

func (s *Server) repoJSON() map[string]any {
	return map[string]any{
		"id":             1296269,
		"node_id":        "R_fake",
		"name":           s.repo,
		"full_name":      s.owner + "/" + s.repo,
		"owner":          s.userJSON(s.owner),
		"private":        false,
		"html_url":       "https://github.com/" + s.owner + "/" + s.repo,
		"url":            s.URL + "/repos/" + s.owner + "/" + s.repo,
		"default_branch": s.defaultBranch,
		"fork":           false,
		"archived":       false,
	}
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.repoJSON())
}
