package github_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

const (
	owner = "acme"
	repo  = "infra"
	token = "ghs_supersecrettoken123"
	label = "credential-age"
)

func setup(t *testing.T) (*githubtest.Server, *github.Client) {
	t.Helper()
	srv := githubtest.New(t, owner, repo, "main")
	srv.RequireToken(token)
	c, err := github.New(srv.URL, token, owner, repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetRetryBackoff(0)
	return srv, c
}

// writes returns the non-GET requests.
func writes(srv *githubtest.Server) []githubtest.Request {
	var out []githubtest.Request
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

func count(srv *githubtest.Server, method, path string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func actions[T any](rs []T, f func(T) string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

func issueActions(rs []github.IssueResult) []string {
	return actions(rs, func(r github.IssueResult) string { return r.Key + "=" + r.Action })
}

func openIssues(srv *githubtest.Server) []githubtest.Issue {
	var out []githubtest.Issue
	for _, is := range srv.Issues() {
		if is.State == "open" {
			out = append(out, is)
		}
	}
	return out
}

func spec(key, body string) github.IssueSpec {
	return github.IssueSpec{Key: key, Title: "Rotate " + key, Body: body, Labels: []string{"security"}}
}

func TestNew(t *testing.T) {
	_, err := github.New("https://api.github.com", "", "o", "r", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "github_token is empty: ") {
		t.Fatalf("empty token: err = %v", err)
	}
	if _, err := github.New("https://api.github.com", "t", "o/x", "r", nil); err == nil {
		t.Fatal("bad owner accepted")
	}
	if _, err := github.New("api.github.com", "t", "o", "r", nil); err == nil {
		t.Fatal("relative API URL accepted")
	}
	// No trailing slash, custom http.Client: both fine.
	srv := githubtest.New(t, "o", "r", "trunk")
	c, err := github.New(srv.URL, "t", "o", "r", &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.DefaultBranch(context.Background())
	if err != nil || b != "trunk" {
		t.Fatalf("DefaultBranch = %q, %v", b, err)
	}
	if ua := srv.Requests(); len(ua) != 1 || ua[0].Path != "/repos/o/r" {
		t.Fatalf("requests = %+v", ua)
	}
}

func TestSyncIssuesIdempotent(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	want := []github.IssueSpec{spec("ns/a", "Secret a is 100 days old."), spec("ns/b", "Secret b is 200 days old.")}
	checked := map[string]bool{"ns/a": true, "ns/b": true}

	res, err := c.SyncIssues(ctx, label, want, checked, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"ns/a=opened", "ns/b=opened"}) {
		t.Fatalf("first run: %v", got)
	}
	for _, r := range res {
		if r.Number == 0 || !strings.HasPrefix(r.URL, "https://github.com/acme/infra/issues/") {
			t.Fatalf("result without number/url: %+v", r)
		}
	}
	issues := srv.Issues()
	if len(issues) != 2 {
		t.Fatalf("issues = %+v", issues)
	}
	is := issues[0]
	if is.Title != "Rotate ns/a" || !strings.HasPrefix(is.Body, "Secret a is 100 days old.") ||
		!strings.HasSuffix(is.Body, github.Marker("ns/a")) || !slices.Equal(is.Labels, []string{label, "security"}) {
		t.Fatalf("issue as created: %+v", is)
	}

	// Second run, nothing changed: no writes at all.
	srv.ResetRequests()
	res, err = c.SyncIssues(ctx, label, want, checked, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"ns/a=unchanged", "ns/b=unchanged"}) {
		t.Fatalf("second run: %v", got)
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("second run wrote: %+v", w)
	}

	// Third run: b's body changed, and someone added a label by hand and
	// removed ours: the body is updated, our label is back, theirs is kept.
	srv.ResetRequests()
	want[1].Body = "Secret b is 201 days old."
	res, err = c.SyncIssues(ctx, label, want, checked, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"ns/a=unchanged", "ns/b=updated"}) {
		t.Fatalf("third run: %v", got)
	}
	issues = srv.Issues()
	if len(issues) != 2 || !strings.HasPrefix(issues[1].Body, "Secret b is 201 days old.\n\n<!-- kube-rotate:ns/b -->") {
		t.Fatalf("issues after update: %+v", issues)
	}
	if n := count(srv, "POST", "/repos/acme/infra/issues"); n != 0 {
		t.Fatalf("%d issues created on update", n)
	}
}

func TestSyncIssuesKeepsPeoplesLabels(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	n := srv.AddIssue(githubtest.Issue{Title: "Rotate k", Body: "old\n\n" + github.Marker("k"), Labels: []string{label, "in-progress"}})
	res, err := c.SyncIssues(ctx, label, []github.IssueSpec{spec("k", "old")}, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"k=updated"}) || res[0].Number != n {
		t.Fatalf("results: %+v", res)
	}
	if got := srv.Issues()[0].Labels; !slices.Equal(got, []string{label, "in-progress", "security"}) {
		t.Fatalf("labels = %v", got)
	}
}

func TestSyncIssuesClose(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	all := []github.IssueSpec{spec("a", "A"), spec("b", "B"), spec("c", "C")}
	if _, err := c.SyncIssues(ctx, label, all, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	// Issues a person opened with the label, without a marker, are not ours.
	human := srv.AddIssue(githubtest.Issue{Title: "Discuss rotation", Body: "thoughts", Labels: []string{label}})
	// A pull request carrying the label and a marker is not an issue.
	pr, err := c.ProposeFiles(ctx, github.PRSpec{
		Branch: "kube-rotate/x", Title: "x", Body: "body\n" + github.Marker("b"), CommitMessage: "x",
		Files: []github.FileChange{{Path: "x.txt", Content: []byte("x")}}, Labels: []string{label},
	}, false)
	if err != nil {
		t.Fatal(err)
	}

	srv.ResetRequests()
	// This run checked a and b; only a is still due. c was not checked.
	comment := func(key string) string { return "Secret " + key + " was rotated." }
	res, err := c.SyncIssues(ctx, label, all[:1], map[string]bool{"a": true, "b": true}, comment, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"a=unchanged", "b=closed"}) {
		t.Fatalf("results: %v", got)
	}
	byNum := map[int]githubtest.Issue{}
	for _, is := range srv.Issues() {
		byNum[is.Number] = is
	}
	b := byNum[res[1].Number]
	if b.State != "closed" || b.StateReason != "completed" || !slices.Equal(b.Comments, []string{"Secret b was rotated."}) {
		t.Fatalf("b = %+v", b)
	}
	for _, is := range srv.Issues() {
		if is.Title == "Rotate c" && is.State != "open" {
			t.Fatalf("unchecked c was touched: %+v", is)
		}
	}
	if byNum[human].State != "open" || len(byNum[human].Comments) != 0 {
		t.Fatalf("human issue touched: %+v", byNum[human])
	}
	if p := srv.Pulls()[0]; p.Number != pr.Number || p.State != "open" || len(p.Comments) != 0 {
		t.Fatalf("pull request touched: %+v", p)
	}

	// Closed issues stay closed; a later run opens a fresh one if needed.
	res, err = c.SyncIssues(ctx, label, all[1:2], map[string]bool{"b": true}, comment, false)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != "opened" || res[0].Number == b.Number {
		t.Fatalf("reopen run: %+v", res)
	}
}

func TestSyncIssuesDuplicates(t *testing.T) {
	srv, c := setup(t)
	body := "B\n\n" + github.Marker("k")
	first := srv.AddIssue(githubtest.Issue{Title: "Rotate k", Body: body, Labels: []string{label, "security"}})
	second := srv.AddIssue(githubtest.Issue{Title: "Rotate k", Body: body, Labels: []string{label, "security"}})
	res, err := c.SyncIssues(context.Background(), label, []github.IssueSpec{spec("k", "B")}, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Number != first || res[0].Action != "unchanged" || res[1].Number != second || res[1].Action != "closed" {
		t.Fatalf("results: %+v", res)
	}
	if open := openIssues(srv); len(open) != 1 || open[0].Number != first {
		t.Fatalf("open issues: %+v", open)
	}
}

func TestSyncIssuesPagination(t *testing.T) {
	srv, c := setup(t)
	var want []github.IssueSpec
	checked := map[string]bool{}
	for i := range 150 {
		s := spec(fmt.Sprintf("k%03d", i), fmt.Sprintf("body %d", i))
		want = append(want, s)
		checked[s.Key] = true
		srv.AddIssue(githubtest.Issue{Title: s.Title, Body: s.Body + "\n\n" + github.Marker(s.Key), Labels: []string{label, "security"}})
	}
	res, err := c.SyncIssues(context.Background(), label, want, checked, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Action != "unchanged" {
			t.Fatalf("result %+v, want all unchanged", r)
		}
	}
	if len(res) != 150 || len(writes(srv)) != 0 {
		t.Fatalf("%d results, %d writes", len(res), len(writes(srv)))
	}
	if n := count(srv, "GET", "/repos/acme/infra/issues"); n != 2 {
		t.Fatalf("%d list requests, want 2 pages", n)
	}

	// Dropping the last 10 wanted keys closes exactly those 10.
	res, err = c.SyncIssues(context.Background(), label, want[:140], checked, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, r := range res {
		if r.Action == "closed" {
			closed++
		}
	}
	if closed != 10 || len(openIssues(srv)) != 140 {
		t.Fatalf("closed %d, open %d", closed, len(openIssues(srv)))
	}
}

func TestSyncIssuesDryRun(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	if _, err := c.SyncIssues(ctx, label, []github.IssueSpec{spec("a", "A"), spec("b", "B")}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	srv.ResetRequests()
	before := srv.Issues()
	want := []github.IssueSpec{spec("a", "A changed"), spec("new", "N")}
	res, err := c.SyncIssues(ctx, label, want, map[string]bool{"a": true, "b": true, "new": true}, func(string) string { return "bye" }, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := issueActions(res); !slices.Equal(got, []string{"a=would update", "new=would open", "b=would close"}) {
		t.Fatalf("dry run: %v", got)
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("dry run wrote: %+v", w)
	}
	if after := srv.Issues(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("dry run changed issues:\n%+v\n%+v", before, after)
	}
}

func TestSyncIssuesValidation(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		label string
		want  []github.IssueSpec
	}{
		"empty label":   {"", nil},
		"comma label":   {"a,b", nil},
		"empty key":     {label, []github.IssueSpec{{Title: "t"}}},
		"key with -->":  {label, []github.IssueSpec{{Key: "a-->b", Title: "t"}}},
		"duplicate key": {label, []github.IssueSpec{{Key: "a", Title: "t"}, {Key: "a", Title: "t"}}},
		"empty title":   {label, []github.IssueSpec{{Key: "a"}}},
	} {
		if _, err := c.SyncIssues(ctx, tc.label, tc.want, nil, nil, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func prSpec(content string) github.PRSpec {
	return github.PRSpec{
		Branch:        "kube-rotate/jwks",
		Title:         "Rotate JWKS",
		Body:          "New signing key.",
		CommitMessage: "Rotate JWKS signing key",
		Files: []github.FileChange{
			{Path: "deploy/jwks.json", Content: []byte(content)},
			{Path: "deploy/new/file.txt", Content: []byte("static\n")},
		},
		Labels: []string{"kube-rotate"},
	}
}

func TestProposeFiles(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	srv.SetFile("main", "deploy/jwks.json", []byte(`{"keys":["old"]}`))
	mainSHA := srv.BranchSHA("main")

	res, err := c.ProposeFiles(ctx, prSpec(`{"keys":["new"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "opened" || res.Number == 0 || res.Branch != "kube-rotate/jwks" || !strings.Contains(res.URL, "/pull/") {
		t.Fatalf("first run: %+v", res)
	}
	check := func(content string) {
		t.Helper()
		if got, _ := srv.File("kube-rotate/jwks", "deploy/jwks.json"); string(got) != content {
			t.Fatalf("jwks.json on branch = %q, want %q", got, content)
		}
		if got, _ := srv.File("kube-rotate/jwks", "deploy/new/file.txt"); string(got) != "static\n" {
			t.Fatalf("file.txt on branch = %q", got)
		}
		if got, _ := srv.File("main", "deploy/jwks.json"); string(got) != `{"keys":["old"]}` || srv.BranchSHA("main") != mainSHA {
			t.Fatal("main branch changed")
		}
		pulls := srv.Pulls()
		if len(pulls) != 1 || pulls[0].State != "open" || pulls[0].Head != "kube-rotate/jwks" || pulls[0].Base != "main" ||
			!slices.Equal(pulls[0].Labels, []string{"kube-rotate"}) {
			t.Fatalf("pulls = %+v", pulls)
		}
		if b := srv.Branches(); !slices.Equal(b, []string{"kube-rotate/jwks", "main"}) {
			t.Fatalf("branches = %v", b)
		}
	}
	check(`{"keys":["new"]}`)

	// Same again: nothing written.
	srv.ResetRequests()
	res, err = c.ProposeFiles(ctx, prSpec(`{"keys":["new"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "unchanged" || res.Number != srv.Pulls()[0].Number {
		t.Fatalf("second run: %+v", res)
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("second run wrote: %+v", w)
	}
	check(`{"keys":["new"]}`)

	// New content and title: the file is updated on the branch (with the
	// blob sha the fake insists on) and the pull request edited.
	srv.ResetRequests()
	s := prSpec(`{"keys":["newer"]}`)
	s.Title = "Rotate JWKS again"
	res, err = c.ProposeFiles(ctx, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "updated" {
		t.Fatalf("third run: %+v", res)
	}
	check(`{"keys":["newer"]}`)
	if p := srv.Pulls()[0]; p.Title != "Rotate JWKS again" {
		t.Fatalf("title not updated: %+v", p)
	}
	var puts []githubtest.Request
	for _, r := range writes(srv) {
		if r.Method == "PUT" {
			puts = append(puts, r)
		}
	}
	if len(puts) != 1 || !strings.Contains(puts[0].Body, `"sha":"`) {
		t.Fatalf("PUTs = %+v", puts)
	}
	if n := count(srv, "POST", "/repos/acme/infra/pulls"); n != 0 {
		t.Fatalf("%d pull requests created on update", n)
	}

	// Dry run with yet another content: says so, writes nothing.
	srv.ResetRequests()
	res, err = c.ProposeFiles(ctx, prSpec(`{"keys":["newest"]}`), true)
	if err != nil || res.Action != "would update" {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("dry run wrote: %+v", w)
	}

	open, err := c.OpenPR(ctx, "kube-rotate/jwks")
	if err != nil || open == nil || open.Number != res.Number {
		t.Fatalf("OpenPR = %+v, %v", open, err)
	}
	none, err := c.OpenPR(ctx, "other")
	if err != nil || none != nil {
		t.Fatalf("OpenPR(other) = %+v, %v", none, err)
	}
}

func TestProposeFilesNothingToDo(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	s := prSpec("same")
	for _, f := range s.Files {
		srv.SetFile("main", f.Path, f.Content)
	}
	for _, dry := range []bool{true, false} {
		res, err := c.ProposeFiles(ctx, s, dry)
		if err != nil || res.Action != "unchanged" || res.Number != 0 {
			t.Fatalf("dry=%v: %+v, %v", dry, res, err)
		}
	}
	if w := writes(srv); len(w) != 0 || len(srv.Pulls()) != 0 || len(srv.Branches()) != 1 {
		t.Fatalf("writes %+v, pulls %+v, branches %v", w, srv.Pulls(), srv.Branches())
	}
}

func TestProposeFilesDryRunNew(t *testing.T) {
	srv, c := setup(t)
	res, err := c.ProposeFiles(context.Background(), prSpec("x"), true)
	if err != nil || res.Action != "would open" || res.Number != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("dry run wrote: %+v", w)
	}
}

func TestProposeFilesAfterMerge(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	first, err := c.ProposeFiles(ctx, prSpec("v1"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.MergePull(first.Number); err != nil {
		t.Fatal(err)
	}
	// Merged and the branch left behind: the same content needs nothing.
	res, err := c.ProposeFiles(ctx, prSpec("v1"), false)
	if err != nil || res.Action != "unchanged" || res.Number != 0 {
		t.Fatalf("after merge: %+v, %v", res, err)
	}
	// Main moves on; new content starts the old branch over from main.
	srv.SetFile("main", "README.md", []byte("hi"))
	res, err = c.ProposeFiles(ctx, prSpec("v2"), false)
	if err != nil || res.Action != "opened" || res.Number == first.Number {
		t.Fatalf("second proposal: %+v, %v", res, err)
	}
	if got, _ := srv.File("kube-rotate/jwks", "README.md"); string(got) != "hi" {
		t.Fatal("branch was not reset to main")
	}
	if got, _ := srv.File("kube-rotate/jwks", "deploy/jwks.json"); string(got) != "v2" {
		t.Fatalf("jwks.json = %q", got)
	}
}

func TestReadFile(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	srv.SetFile("main", "a/b.txt", []byte("hello\x00world"))
	srv.SetFile("dev", "a/b.txt", []byte("dev"))
	for _, tc := range []struct {
		path, ref, want string
		found           bool
	}{
		{"a/b.txt", "", "hello\x00world", true},
		{"a/b.txt", "main", "hello\x00world", true},
		{"a/b.txt", "dev", "dev", true},
		{"a/missing.txt", "", "", false},
		{"a/b.txt", "no-such-branch", "", false},
	} {
		got, found, err := c.ReadFile(ctx, tc.path, tc.ref)
		if err != nil || found != tc.found || string(got) != tc.want {
			t.Errorf("ReadFile(%q, %q) = %q, %v, %v", tc.path, tc.ref, got, found, err)
		}
	}
	if _, _, err := c.ReadFile(ctx, "a", ""); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("ReadFile(dir) err = %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	syncOne := func(c *github.Client) error {
		_, err := c.SyncIssues(ctx, label, []github.IssueSpec{spec("a", "A")}, nil, nil, false)
		return err
	}
	propose := func(c *github.Client) error {
		_, err := c.ProposeFiles(ctx, prSpec("x"), false)
		return err
	}
	for _, tc := range []struct {
		name   string
		setup  func(*githubtest.Server)
		token  string
		repo   string
		run    func(*github.Client) error
		want   []string
		status int
		check  func(*testing.T, *githubtest.Server)
	}{
		{
			name:  "bad token",
			token: "ghs_wrongtoken456",
			run:   syncOne,
			want:  []string{"listing open issues labeled \"credential-age\" in acme/infra: 401 Bad credentials: the token was rejected"},
		},
		{
			name:  "pr creation denied",
			setup: func(s *githubtest.Server) { s.DenyPullRequestCreation(true) },
			run:   propose,
			want: []string{"creating pull request from kube-rotate/jwks in acme/infra: 403 GitHub Actions is not permitted to create or approve pull requests: " +
				"enable Settings > Actions > General > 'Allow GitHub Actions to create and approve pull requests', or use a token that may"},
			status: 403,
		},
		{
			name: "no issues permission",
			setup: func(s *githubtest.Server) {
				s.FailNext("POST", "issues", 403, "Resource not accessible by integration", 1)
			},
			run:    syncOne,
			want:   []string{"creating issue \"Rotate a\" in acme/infra: 403 Resource not accessible by integration", "`permissions: issues: write`"},
			status: 403,
		},
		{
			name: "no contents permission",
			setup: func(s *githubtest.Server) {
				s.FailNext("POST", "git/refs", 403, "Resource not accessible by integration", 1)
			},
			run:  propose,
			want: []string{"creating branch kube-rotate/jwks in acme/infra: 403", "`permissions: contents: write`"},
		},
		{
			name: "repository not found",
			repo: "nope",
			run:  propose,
			want: []string{"reading repository in acme/nope: 404 Not Found: repository acme/nope was not found or the token cannot access it"},
		},
		{
			name:  "validation failed",
			setup: func(s *githubtest.Server) { s.FailNext("POST", "issues", 422, "Validation Failed", 1) },
			run:   syncOne,
			want:  []string{"creating issue \"Rotate a\" in acme/infra: 422 Validation Failed"},
		},
		{
			name:  "500 on GET retried",
			setup: func(s *githubtest.Server) { s.FailNext("GET", "issues", 500, "Server Error", 2) },
			run:   syncOne,
			check: func(t *testing.T, s *githubtest.Server) {
				if n := count(s, "GET", "/repos/acme/infra/issues"); n != 3 {
					t.Errorf("%d list requests, want 3", n)
				}
				if len(s.Issues()) != 1 {
					t.Errorf("issues = %+v", s.Issues())
				}
			},
		},
		{
			name:   "500 on GET until attempts run out",
			setup:  func(s *githubtest.Server) { s.FailNext("GET", "issues", 503, "Service Unavailable", 0) },
			run:    syncOne,
			want:   []string{"listing open issues labeled \"credential-age\" in acme/infra: 503 Service Unavailable: GitHub failed to answer (after 3 attempts); run again later"},
			status: 503,
			check: func(t *testing.T, s *githubtest.Server) {
				if n := count(s, "GET", "/repos/acme/infra/issues"); n != 3 {
					t.Errorf("%d list requests, want 3", n)
				}
			},
		},
		{
			name:  "500 on POST issue not retried",
			setup: func(s *githubtest.Server) { s.FailNext("POST", "issues", 500, "Server Error", 1) },
			run:   syncOne,
			want:  []string{"creating issue \"Rotate a\" in acme/infra: 500 Server Error: GitHub failed to answer (not retried, to avoid duplicates)"},
			check: func(t *testing.T, s *githubtest.Server) {
				if n := count(s, "POST", "/repos/acme/infra/issues"); n != 1 {
					t.Errorf("%d POSTs, want exactly 1", n)
				}
				if len(s.Issues()) != 0 {
					t.Errorf("issues = %+v", s.Issues())
				}
			},
		},
		{
			name:  "500 on POST pull not retried",
			setup: func(s *githubtest.Server) { s.FailNext("POST", "pulls", 502, "Bad Gateway", 1) },
			run:   propose,
			want:  []string{"creating pull request from kube-rotate/jwks in acme/infra: 502 Bad Gateway"},
			check: func(t *testing.T, s *githubtest.Server) {
				if n := count(s, "POST", "/repos/acme/infra/pulls"); n != 1 {
					t.Errorf("%d POSTs, want exactly 1", n)
				}
			},
		},
		{
			name:  "502 on PUT contents retried",
			setup: func(s *githubtest.Server) { s.FailNext("PUT", "contents/...", 502, "Bad Gateway", 1) },
			run:   propose,
			check: func(t *testing.T, s *githubtest.Server) {
				if len(s.Pulls()) != 1 {
					t.Errorf("pulls = %+v", s.Pulls())
				}
			},
		},
		{
			name: "secondary rate limit on GET retried",
			setup: func(s *githubtest.Server) {
				s.FailNext("GET", "issues", 403, "You have exceeded a secondary rate limit", 1)
			},
			run: syncOne,
		},
		{
			name:  "429 retried",
			setup: func(s *githubtest.Server) { s.FailNext("*", "issues", 429, "slow down", 2) },
			run:   syncOne,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := githubtest.New(t, owner, repo, "main")
			srv.RequireToken(token)
			if tc.setup != nil {
				tc.setup(srv)
			}
			tok := token
			if tc.token != "" {
				tok = tc.token
			}
			r := repo
			if tc.repo != "" {
				r = tc.repo
			}
			c, err := github.New(srv.URL, tok, owner, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.SetRetryBackoff(0)
			err = tc.run(c)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				t.Log(msg)
				for _, w := range tc.want {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q\ndoes not contain %q", msg, w)
					}
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("error has several lines: %q", msg)
				}
				if strings.Contains(msg, tok) || strings.Contains(msg, token) {
					t.Errorf("error leaks the token: %q", msg)
				}
				if tc.status != 0 && github.StatusCode(err) != tc.status {
					t.Errorf("StatusCode = %d, want %d", github.StatusCode(err), tc.status)
				}
			}
			if tc.check != nil {
				tc.check(t, srv)
			}
		})
	}
}

// TestWireFormat checks what goes over the wire for an issue: the JSON the
// fake received is what GitHub documents.
func TestWireFormat(t *testing.T) {
	srv, c := setup(t)
	if _, err := c.SyncIssues(context.Background(), label, []github.IssueSpec{spec("a", "A")}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if r.Method != "POST" {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatal(err)
		}
		if body["title"] != "Rotate a" || fmt.Sprint(body["labels"]) != "["+label+" security]" {
			t.Fatalf("POST body = %s", r.Body)
		}
	}
	q := srv.Requests()[0].Query
	if !strings.Contains(q, "labels="+label) || !strings.Contains(q, "state=open") || !strings.Contains(q, "per_page=100") {
		t.Fatalf("list query = %q", q)
	}
}

func TestProposeFilesValidation(t *testing.T) {
	srv, c := setup(t)
	ctx := context.Background()
	for name, mod := range map[string]func(*github.PRSpec){
		"no branch":          func(s *github.PRSpec) { s.Branch = "" },
		"default branch":     func(s *github.PRSpec) { s.Branch = "main" },
		"bad branch":         func(s *github.PRSpec) { s.Branch = "a..b" },
		"no title":           func(s *github.PRSpec) { s.Title = " " },
		"no commit message":  func(s *github.PRSpec) { s.CommitMessage = "" },
		"no files":           func(s *github.PRSpec) { s.Files = nil },
		"absolute path":      func(s *github.PRSpec) { s.Files[0].Path = "/etc/passwd" },
		"path outside":       func(s *github.PRSpec) { s.Files[0].Path = "a/../../x" },
		"same file twice":    func(s *github.PRSpec) { s.Files[1].Path = "./" + s.Files[0].Path },
		"windows separators": func(s *github.PRSpec) { s.Files[0].Path = `deploy\jwks.json` },
	} {
		s := prSpec("x")
		mod(&s)
		_, err := c.ProposeFiles(ctx, s, false)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error has several lines: %q", name, err)
		}
	}
	if w := writes(srv); len(w) != 0 {
		t.Fatalf("invalid specs wrote: %+v", w)
	}
	// "./" prefixes are cleaned.
	s := prSpec("x")
	s.Files[0].Path = "./deploy//jwks.json"
	if _, err := c.ProposeFiles(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	if got, ok := srv.File("kube-rotate/jwks", "deploy/jwks.json"); !ok || string(got) != "x" {
		t.Fatalf("file = %q, %v", got, ok)
	}
}
