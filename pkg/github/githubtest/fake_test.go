package githubtest_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

type call struct {
	method, path, body string
	header             map[string]string
}

// do sends one request and decodes the JSON answer.
func do(t *testing.T, srv *githubtest.Server, c call) (int, http.Header, any) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", c.method, c.path, b)
		}
	}
	return resp.StatusCode, resp.Header, v
}

func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestStatusCodes(t *testing.T) {
	srv := githubtest.New(t, "o", "r", "main")
	srv.SetFile("main", "dir/f.txt", []byte("v1"))
	fileSHA := field(func() any {
		_, _, v := do(t, srv, call{method: "GET", path: "/repos/o/r/contents/dir/f.txt"})
		return v
	}(), "sha").(string)
	mainSHA := srv.BranchSHA("main")

	for _, tc := range []struct {
		name    string
		call    call
		status  int
		message string
	}{
		{"unknown route", call{method: "GET", path: "/repos/o/r/hooks"}, 404, "Not Found"},
		{"other repository", call{method: "GET", path: "/repos/o/other"}, 404, "Not Found"},
		{"repository is case-insensitive", call{method: "GET", path: "/repos/O/R"}, 200, ""},
		{"issue without title", call{method: "POST", path: "/repos/o/r/issues", body: `{"body":"x"}`}, 422, "Validation Failed"},
		{"issue with empty body", call{method: "POST", path: "/repos/o/r/issues"}, 422, "Validation Failed"},
		{"malformed JSON", call{method: "POST", path: "/repos/o/r/issues", body: `{"title":`}, 400, "Problems parsing JSON"},
		{"wrong JSON type", call{method: "POST", path: "/repos/o/r/issues", body: `{"title":"t","labels":"a"}`}, 422, ""},
		{"not JSON content type", call{method: "POST", path: "/repos/o/r/issues", body: `{"title":"t"}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, ""},
		{"missing issue", call{method: "GET", path: "/repos/o/r/issues/99"}, 404, "Not Found"},
		{"missing ref", call{method: "GET", path: "/repos/o/r/git/ref/heads/nope"}, 404, "Not Found"},
		{"existing ref", call{method: "POST", path: "/repos/o/r/git/refs", body: `{"ref":"refs/heads/main","sha":"` + mainSHA + `"}`}, 422, "Reference already exists"},
		{"ref to unknown commit", call{method: "POST", path: "/repos/o/r/git/refs", body: `{"ref":"refs/heads/x","sha":"abc"}`}, 422, "Object does not exist"},
		{"missing file", call{method: "GET", path: "/repos/o/r/contents/nope.txt"}, 404, "Not Found"},
		{"missing ref for contents", call{method: "GET", path: "/repos/o/r/contents/dir/f.txt?ref=nope"}, 404, "No commit found for the ref nope"},
		{"update without sha", call{method: "PUT", path: "/repos/o/r/contents/dir/f.txt", body: `{"message":"m","content":"eA=="}`}, 422, "Invalid request.\n\n\"sha\" wasn't supplied."},
		{"update with wrong sha", call{method: "PUT", path: "/repos/o/r/contents/dir/f.txt", body: `{"message":"m","content":"eA==","sha":"0000"}`}, 409, "dir/f.txt does not match 0000"},
		{"update without message", call{method: "PUT", path: "/repos/o/r/contents/dir/f.txt", body: `{"content":"eA==","sha":"` + fileSHA + `"}`}, 422, ""},
		{"update on missing branch", call{method: "PUT", path: "/repos/o/r/contents/dir/f.txt", body: `{"message":"m","content":"eA==","sha":"` + fileSHA + `","branch":"nope"}`}, 404, ""},
		{"pull from missing branch", call{method: "POST", path: "/repos/o/r/pulls", body: `{"title":"t","head":"nope","base":"main"}`}, 422, "Validation Failed"},
		{"pull without commits", call{method: "POST", path: "/repos/o/r/pulls", body: `{"title":"t","head":"main","base":"main"}`}, 422, "Validation Failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, v := do(t, srv, tc.call)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%v)", status, tc.status, v)
			}
			if tc.message != "" && field(v, "message") != tc.message {
				t.Fatalf("message %q, want %q", field(v, "message"), tc.message)
			}
			reqs := srv.Requests()
			if last := reqs[len(reqs)-1]; last.Status != tc.status || last.Method != tc.call.method {
				t.Fatalf("recorded %+v", last)
			}
		})
	}
	if got, _ := srv.File("main", "dir/f.txt"); string(got) != "v1" {
		t.Fatalf("file changed by failed requests: %q", got)
	}
	if srv.BranchSHA("main") != mainSHA {
		t.Fatal("main moved")
	}
}

func TestContentsRoundTrip(t *testing.T) {
	srv := githubtest.New(t, "o", "r", "main")
	content := bytes.Repeat([]byte("0123456789"), 20)
	status, _, v := do(t, srv, call{method: "PUT", path: "/repos/o/r/contents/a/b.bin",
		body: `{"message":"add","content":"` + base64.StdEncoding.EncodeToString(content) + `"}`})
	if status != 201 || field(v, "content", "type") != "file" || field(v, "commit", "sha") != srv.BranchSHA("main") {
		t.Fatalf("create: %d %v", status, v)
	}
	sha := field(v, "content", "sha").(string)
	// git's blob id, as `git hash-object` computes it
	if want := fmt.Sprintf("%x", sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(content))), content...))); sha != want {
		t.Fatalf("sha %q, want %q", sha, want)
	}
	status, _, v = do(t, srv, call{method: "GET", path: "/repos/o/r/contents/a/b.bin?ref=main"})
	enc, _ := field(v, "content").(string)
	got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(enc, "\n", ""))
	if status != 200 || err != nil || !bytes.Equal(got, content) || field(v, "sha") != sha || field(v, "encoding") != "base64" {
		t.Fatalf("get: %d %v", status, v)
	}
	if !strings.Contains(enc, "\n") {
		t.Fatal("content is not wrapped like GitHub's")
	}
	status, _, v = do(t, srv, call{method: "PUT", path: "/repos/o/r/contents/a/b.bin",
		body: `{"message":"update","content":"eA==","sha":"` + sha + `"}`})
	if status != 200 {
		t.Fatalf("update: %d %v", status, v)
	}
	if got, _ := srv.File("main", "a/b.bin"); string(got) != "x" {
		t.Fatalf("file = %q", got)
	}
	if msgs := srv.CommitMessages("main"); strings.Join(msgs, ",") != "update,add,Initial commit" {
		t.Fatalf("commits = %v", msgs)
	}
	status, _, v = do(t, srv, call{method: "GET", path: "/repos/o/r/contents/a"})
	if list, ok := v.([]any); status != 200 || !ok || len(list) != 1 || field(list[0], "name") != "b.bin" {
		t.Fatalf("dir: %d %v", status, v)
	}
}

func TestIssueListing(t *testing.T) {
	srv := githubtest.New(t, "o", "r", "main")
	for i := range 35 {
		labels := []string{"a"}
		if i%2 == 0 {
			labels = append(labels, "B")
		}
		srv.AddIssue(githubtest.Issue{Title: "t", Labels: labels})
	}
	srv.AddIssue(githubtest.Issue{Title: "closed", Labels: []string{"a", "b"}, State: "closed"})
	srv.SetFile("feature", "f", []byte("f"))
	status, _, pr := do(t, srv, call{method: "POST", path: "/repos/o/r/pulls", body: `{"title":"p","head":"o:feature","base":"main"}`})
	if status != 201 || field(pr, "head", "label") != "o:feature" || field(pr, "base", "ref") != "main" {
		t.Fatalf("pull: %d %v", status, pr)
	}
	do(t, srv, call{method: "POST", path: "/repos/o/r/issues/37/labels", body: `["a","b"]`})

	// labels=a,b requires both (case-insensitively): 18 issues + the PR.
	var all []any
	next := "/repos/o/r/issues?labels=a,b&per_page=10"
	pages := 0
	for next != "" {
		status, h, v := do(t, srv, call{method: "GET", path: next})
		if status != 200 {
			t.Fatalf("%d %v", status, v)
		}
		all = append(all, v.([]any)...)
		pages++
		next = ""
		for _, l := range strings.Split(h.Get("Link"), ",") {
			if strings.Contains(l, `rel="next"`) {
				u := strings.Trim(strings.TrimSpace(strings.Split(l, ";")[0]), "<>")
				next = strings.TrimPrefix(u, srv.URL)
			}
		}
	}
	if len(all) != 19 || pages != 2 {
		t.Fatalf("%d issues in %d pages", len(all), pages)
	}
	prs := 0
	for _, is := range all {
		if field(is, "pull_request") != nil {
			prs++
			if field(is, "number") != float64(37) {
				t.Fatalf("pull request listed as %v", is)
			}
		}
	}
	if prs != 1 {
		t.Fatalf("%d pull requests among issues", prs)
	}
	// A second pull request for the same head is refused.
	status, _, v := do(t, srv, call{method: "POST", path: "/repos/o/r/pulls", body: `{"title":"p2","head":"feature","base":"main"}`})
	if status != 422 || !strings.Contains(field(v, "errors").([]any)[0].(map[string]any)["message"].(string), "A pull request already exists for o:feature.") {
		t.Fatalf("duplicate pull: %d %v", status, v)
	}
	_, _, v = do(t, srv, call{method: "GET", path: "/repos/o/r/pulls?head=o:feature&state=open&base=main"})
	if l := v.([]any); len(l) != 1 {
		t.Fatalf("pull filter: %v", v)
	}
	_, _, v = do(t, srv, call{method: "GET", path: "/repos/o/r/pulls?head=o:other"})
	if l := v.([]any); len(l) != 0 {
		t.Fatalf("pull filter: %v", v)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	srv := githubtest.New(t, "o", "r", "main")
	srv.RequireToken("s3cret")
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	if status, _, v := do(t, srv, call{method: "GET", path: "/repos/o/r"}); status != 401 || field(v, "message") != "Bad credentials" {
		t.Fatalf("no token: %d %v", status, v)
	}
	if status, _, _ := do(t, srv, call{method: "GET", path: "/repos/o/r", header: map[string]string{"Authorization": "token s3cret"}}); status != 200 {
		t.Fatalf("token form: %d", status)
	}
	srv.FailNext("GET", "issues/*", 500, "boom", 2)
	srv.FailNext("", "/repos/o/r/contents/...", 429, "slow", 1)
	for i, tc := range []struct {
		call   call
		status int
	}{
		{call{method: "GET", path: "/repos/o/r/issues"}, 200},            // pattern is issues/*, not issues
		{call{method: "GET", path: "/repos/o/r/issues/1/comments"}, 404}, // * stops at /; no issue 1
		{call{method: "GET", path: "/repos/o/r/issues/1"}, 500},
		{call{method: "POST", path: "/repos/o/r/issues/1"}, 404}, // other method: no fault, no route
		{call{method: "GET", path: "/repos/o/r/issues/2"}, 500},
		{call{method: "GET", path: "/repos/o/r/issues/3"}, 404}, // used up
		{call{method: "GET", path: "/repos/o/r/contents/a/b"}, 429},
		{call{method: "GET", path: "/repos/o/r/contents/a/b"}, 404},
	} {
		tc.call.header = bearer
		status, h, _ := do(t, srv, tc.call)
		if status != tc.status {
			t.Errorf("%d: %s %s = %d, want %d", i, tc.call.method, tc.call.path, status, tc.status)
		}
		if status == 429 && h.Get("Retry-After") != "0" {
			t.Errorf("429 without Retry-After")
		}
	}
	srv.DenyPullRequestCreation(true)
	status, _, v := do(t, srv, call{method: "POST", path: "/repos/o/r/pulls", body: `{"title":"t","head":"x","base":"main"}`, header: bearer})
	if status != 403 || field(v, "message") != "GitHub Actions is not permitted to create or approve pull requests." {
		t.Fatalf("denied: %d %v", status, v)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := githubtest.New(t, "o", "r", "main")
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 5 {
				do(t, srv, call{method: "POST", path: "/repos/o/r/issues", body: fmt.Sprintf(`{"title":"t%d-%d","labels":["x"]}`, i, j)})
				srv.SetFile(fmt.Sprintf("b%d", i), "f", []byte{byte(j)})
				_ = srv.Issues()
				_ = srv.Requests()
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(srv.Issues()); n != 40 {
		t.Fatalf("%d issues", n)
	}
	seen := map[int]bool{}
	for _, is := range srv.Issues() {
		if seen[is.Number] {
			t.Fatalf("number %d given twice", is.Number)
		}
		seen[is.Number] = true
	}
}
