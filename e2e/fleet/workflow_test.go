//go:build e2e

package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

// The repository the workflows run in, and its job's token (the fake
// accepts only it).
const (
	ghOwner = "acme"
	ghRepo  = "infra"
	ghToken = "ghs_e2eFleetInstallationToken0123456789"
	label   = "kube-rotate" // the Action's default label
)

// workflow is one repository (its fake GitHub and a checked-out workspace)
// whose workflows run the Action, once or several times, with different
// inputs: one job per cluster, or one job over the fleet.
type workflow struct {
	t         *testing.T
	gh        *githubtest.Server
	workspace string
	runs      int
}

func newWorkflow(t *testing.T) *workflow {
	t.Helper()
	gh := githubtest.New(t, ghOwner, ghRepo, "main")
	gh.RequireToken(ghToken)
	return &workflow{t: t, gh: gh, workspace: t.TempDir()}
}

// actionRun is what one run of the Action's step left: its log, exit code,
// outputs and step summary.
type actionRun struct {
	stdout  string
	code    int
	outputs map[string]string
	summary string
}

// errorLines returns the ::error annotations the run printed.
func (r actionRun) errorLines() []string {
	var out []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "::error") {
			out = append(out, l)
		}
	}
	return out
}

// clusterCounts is one cluster's entry in the output clusters.
type clusterCounts struct {
	Total   int    `json:"total"`
	OK      int    `json:"ok"`
	Warn    int    `json:"warn"`
	Overdue int    `json:"overdue"`
	Expired int    `json:"expired"`
	Unknown int    `json:"unknown"`
	Error   string `json:"error"`
}

// clusters parses the output clusters: counts keyed by cluster identity.
func (r actionRun) clusters(t *testing.T) map[string]clusterCounts {
	t.Helper()
	var out map[string]clusterCounts
	if err := json.Unmarshal([]byte(r.outputs["clusters"]), &out); err != nil {
		t.Fatalf("output clusters %q is not a JSON object of counts: %v", r.outputs["clusters"], err)
	}
	return out
}

// section returns the step summary's section of one cluster: from its
// "### Cluster NAME" heading to the next heading of that level or higher
// ("" when there is none).
func (r actionRun) section(name string) string {
	head := "### Cluster " + name + "\n"
	i := strings.Index(r.summary, head)
	if i < 0 {
		return ""
	}
	rest := r.summary[i+len(head):]
	if j := regexp.MustCompile(`(?m)^#{1,3} `).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

// run runs the Action binary with the environment a runner gives a step:
// inputs as INPUT_* (action.yml's defaults, then these), GITHUB_*
// variables, fresh output and summary files, and nothing else of the
// test's environment (no KUBECONFIG).
func (w *workflow) run(inputs map[string]string) actionRun {
	t := w.t
	t.Helper()
	w.runs++
	step := t.TempDir()
	tmp, home := filepath.Join(step, "tmp"), filepath.Join(step, "home")
	for _, d := range []string{tmp, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	outFile, summaryFile, eventFile := filepath.Join(step, "output"), filepath.Join(step, "summary.md"), filepath.Join(step, "event.json")
	for _, f := range []string{outFile, summaryFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(eventFile, []byte(`{"schedule": "0 6 * * 1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + tmp,
		"CI=true", "GITHUB_ACTIONS=true",
		"GITHUB_WORKSPACE=" + w.workspace,
		"GITHUB_REPOSITORY=" + ghOwner + "/" + ghRepo,
		"GITHUB_API_URL=" + w.gh.URL,
		"GITHUB_SERVER_URL=https://github.com",
		fmt.Sprintf("GITHUB_RUN_ID=%d", 2000+w.runs),
		"GITHUB_EVENT_NAME=schedule", "GITHUB_EVENT_PATH=" + eventFile,
		"GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + summaryFile,
	}
	all := actionDefaults(t)
	for k, v := range inputs {
		if _, ok := all[k]; !ok {
			// The runner warns about an input action.yml does not
			// declare and passes it on; a test using one is testing
			// nothing.
			t.Errorf("input %q is not declared in action.yml", k)
		}
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, "INPUT_"+strings.ToUpper(k)+"="+all[k])
	}
	bin, err := exec.LookPath("kube-rotate-action")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env, cmd.Dir = env, w.workspace
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	r := actionRun{stdout: out.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running the Action: %v", err)
	}
	b, _ := os.ReadFile(outFile)
	r.outputs = parseOutputs(t, string(b))
	b, _ = os.ReadFile(summaryFile)
	r.summary = string(b)
	t.Logf("Action run %d (%s):\n%s(exit %d)\noutputs: %v\nstep summary:\n%s", w.runs, time.Since(start).Round(time.Millisecond), r.stdout, r.code, r.outputs, r.summary)
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the Action left %d files in TMPDIR (the kubeconfig must not stay)", len(left))
	}
	if strings.Contains(r.stdout+r.summary, ghToken) {
		t.Error("the Action printed the GitHub token")
	}
	return r
}

// actionDefaults returns the default of every input in action.yml.
func actionDefaults(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Inputs map[string]struct {
			Default string `json:"default"`
		} `json:"inputs"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	out := map[string]string{}
	for k, in := range meta.Inputs {
		out[k] = in.Default
		if in.Default == "${{ github.token }}" {
			out[k] = ghToken
		}
	}
	return out
}

// parseOutputs reads a GITHUB_OUTPUT file: name=value lines and
// name<<DELIM ... DELIM blocks.
func parseOutputs(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ls := strings.Split(s, "\n")
	for i := 0; i < len(ls); i++ {
		l := ls[i]
		if l == "" {
			continue
		}
		if name, delim, ok := strings.Cut(l, "<<"); ok {
			var val []string
			for i++; i < len(ls) && ls[i] != delim; i++ {
				val = append(val, ls[i])
			}
			if i == len(ls) {
				t.Fatalf("GITHUB_OUTPUT: %s<<%s is not closed", name, delim)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("GITHUB_OUTPUT: bad line %q", l)
		}
		out[name] = val
	}
	return out
}

// readReport reads the report the run wrote into the workspace.
func (w *workflow) readReport(r actionRun) *rotationReport {
	t := w.t
	t.Helper()
	if r.outputs["report_json"] == "" {
		t.Fatalf("no output report_json: %v", r.outputs)
	}
	b, err := os.ReadFile(filepath.Join(w.workspace, r.outputs["report_json"]))
	if err != nil {
		t.Fatalf("the report is not in the workspace: %v", err)
	}
	var rep rotationReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s does not parse: %v", r.outputs["report_json"], err)
	}
	return &rep
}

// marker is the hidden marker the Action ends an issue's body with.
func marker(id string) string { return "<!-- kube-rotate:" + id + " -->" }

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
	w.t.Helper()
	var found []githubtest.Issue
	for _, is := range w.gh.Issues() {
		if markerOf(is) == id {
			found = append(found, is)
		}
	}
	if len(found) > 1 {
		w.t.Fatalf("%d issues carry the marker of %s: %+v", len(found), id, found)
	}
	if len(found) == 0 {
		return githubtest.Issue{}, false
	}
	return found[0], true
}

// mustIssue is issue failing the test when there is none.
func (w *workflow) mustIssue(id string) githubtest.Issue {
	w.t.Helper()
	is, ok := w.issue(id)
	if !ok {
		w.t.Fatalf("no issue carries the marker of %s; issues: %s", id, w.describe())
	}
	return is
}

// describe lists the repository's issues in one line each, for failures.
func (w *workflow) describe() string {
	var b strings.Builder
	for _, is := range w.gh.Issues() {
		fmt.Fprintf(&b, "\n  #%d %s %q marker %q, %d comments", is.Number, is.State, is.Title, markerOf(is), len(is.Comments))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// updatedAt is issue n's updated_at, as GitHub's API gives it.
func (w *workflow) updatedAt(n int) time.Time {
	t := w.t
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/repos/%s/%s/issues/%d", w.gh.URL, ghOwner, ghRepo, n), nil)
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
	for _, r := range w.gh.Requests() {
		if r.Method == http.MethodPost && r.Path == "/repos/"+ghOwner+"/"+ghRepo+"/issues" && r.Status < 300 {
			n++
		}
	}
	return n
}

// writesTo lists the write requests since the last ResetRequests that
// touched issue number n (its edits, comments and labels).
func (w *workflow) writesTo(n int) []string {
	var out []string
	prefix := fmt.Sprintf("/repos/%s/%s/issues/%d", ghOwner, ghRepo, n)
	for _, r := range w.gh.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && (r.Path == prefix || strings.HasPrefix(r.Path, prefix+"/")) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}
