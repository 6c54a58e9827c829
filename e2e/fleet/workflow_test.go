//go:build e2e

package fleet

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/internal/actionrun"
	"github.com/kube-rotate/kube-rotate/pkg/action"
	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

// The job's token (the fake GitHub accepts only it) and the Action's
// default label.
const (
	ghToken = "ghs_e2eFleetInstallationToken0123456789"
	label   = "kube-rotate"
)

// workflow is one repository (its fake GitHub and a checked-out workspace)
// whose workflows run the Action, once or several times, with different
// inputs: one job per cluster, or one job over the fleet.
type workflow struct{ *actionrun.Workflow }

func newWorkflow(t *testing.T) *workflow {
	t.Helper()
	w := actionrun.New(t, ghToken)
	w.RunIDBase = 2000
	return &workflow{w}
}

// clusterCounts is one cluster's entry in the output clusters.
type clusterCounts = action.Counts

// clusters parses the run's output clusters: counts keyed by cluster
// identity.
func clusters(t *testing.T, r actionrun.Result) map[string]clusterCounts {
	t.Helper()
	var out map[string]clusterCounts
	if err := json.Unmarshal([]byte(r.Outputs["clusters"]), &out); err != nil {
		t.Fatalf("output clusters %q is not a JSON object of counts: %v", r.Outputs["clusters"], err)
	}
	return out
}

// section returns the run's step summary section of one cluster: from its
// "### Cluster NAME" heading to the next heading of that level or higher
// ("" when there is none).
func section(r actionrun.Result, name string) string {
	head := "### Cluster " + name + "\n"
	i := strings.Index(r.Summary, head)
	if i < 0 {
		return ""
	}
	rest := r.Summary[i+len(head):]
	if j := regexp.MustCompile(`(?m)^#{1,3} `).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

var markerRE = regexp.MustCompile(`<!-- kube-rotate:(.*?) -->`)

// markerOf returns the id of the last marker in an issue's body.
func markerOf(is githubtest.Issue) string {
	m := markerRE.FindAllStringSubmatch(is.Body, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// issue returns the one issue whose (last) marker is id; ok is false when
// there is none. More than one fails the test.
func (w *workflow) issue(id string) (githubtest.Issue, bool) {
	w.T.Helper()
	var found []githubtest.Issue
	for _, is := range w.GH.Issues() {
		if markerOf(is) == id {
			found = append(found, is)
		}
	}
	if len(found) > 1 {
		w.T.Fatalf("%d issues carry the marker of %s: %+v", len(found), id, found)
	}
	if len(found) == 0 {
		return githubtest.Issue{}, false
	}
	return found[0], true
}

// mustIssue is issue failing the test when there is none.
func (w *workflow) mustIssue(id string) githubtest.Issue {
	w.T.Helper()
	is, ok := w.issue(id)
	if !ok {
		w.T.Fatalf("no issue carries the marker of %s; issues: %s", id, w.describe())
	}
	return is
}

// describe lists the repository's issues in one line each, for failures.
func (w *workflow) describe() string {
	var b strings.Builder
	for _, is := range w.GH.Issues() {
		fmt.Fprintf(&b, "\n  #%d %s %q marker %q, %d comments", is.Number, is.State, is.Title, markerOf(is), len(is.Comments))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// updatedAt is issue n's updated_at, as GitHub's API gives it.
func (w *workflow) updatedAt(n int) time.Time {
	t := w.T
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/repos/%s/%s/issues/%d", w.GH.URL, actionrun.Owner, actionrun.Repo, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ghToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var is struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&is); err != nil || resp.StatusCode != http.StatusOK || is.UpdatedAt.IsZero() {
		t.Fatalf("GET issue %d: %s, %v", n, resp.Status, err)
	}
	return is.UpdatedAt
}

// created counts the issues the runs since the last ResetRequests opened.
func (w *workflow) created() int {
	n := 0
	for _, r := range w.GH.Requests() {
		if r.Method == http.MethodPost && r.Path == "/repos/"+actionrun.Owner+"/"+actionrun.Repo+"/issues" && r.Status < 300 {
			n++
		}
	}
	return n
}

// writesTo lists the write requests since the last ResetRequests that
// touched issue number n (its edits, comments and labels).
func (w *workflow) writesTo(n int) []string {
	var out []string
	prefix := fmt.Sprintf("/repos/%s/%s/issues/%d", actionrun.Owner, actionrun.Repo, n)
	for _, r := range w.GH.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && (r.Path == prefix || strings.HasPrefix(r.Path, prefix+"/")) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// cc is a readable cluster's counts: total, ok and overdue credentials.
func cc(total, ok, overdue int) clusterCounts {
	return clusterCounts{Summary: v1alpha1.ReportSummary{Total: total, OK: ok, Overdue: overdue}}
}
