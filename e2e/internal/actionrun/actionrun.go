// Package actionrun runs the GitHub Action as a workflow step on a runner
// would, against a fake GitHub (pkg/github/githubtest): the helpers the
// Action's e2e tests share (e2e, e2e/fleet). A Workflow is one repository,
// its fake GitHub and its checked-out workspace; each Run is one step of
// the kube-rotate-action binary from PATH with its inputs, the runner's
// GITHUB_* environment and fresh output and summary files.
package actionrun

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

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

// The repository every Workflow is, on its fake GitHub.
const (
	Owner = "acme"
	Repo  = "infra"
)

// Workflow is one repository (its fake GitHub and a checked-out workspace)
// whose workflows run the Action, once or several times, with different
// inputs.
type Workflow struct {
	T  testing.TB
	GH *githubtest.Server
	// Workspace is the checkout: GITHUB_WORKSPACE, and the step's working
	// directory.
	Workspace string
	// Token is the job's token: the fake GitHub accepts only it, and it is
	// the value of ${{ github.token }} in action.yml's defaults.
	Token string
	// RunIDBase numbers the runs: run n (from 1) has GITHUB_RUN_ID
	// RunIDBase+n.
	RunIDBase int
	// Timeout bounds each run.
	Timeout time.Duration
	// Runs counts the runs so far.
	Runs int
}

// New returns a Workflow on a fresh fake GitHub that accepts token only,
// with an empty workspace, runs numbered from 1001 and a 3-minute timeout
// per run.
func New(t testing.TB, token string) *Workflow {
	t.Helper()
	gh := githubtest.New(t, Owner, Repo, "main")
	gh.RequireToken(token)
	return &Workflow{T: t, GH: gh, Workspace: t.TempDir(), Token: token, RunIDBase: 1000, Timeout: 3 * time.Minute}
}

// RunID is the GITHUB_RUN_ID of the last run.
func (w *Workflow) RunID() int { return w.RunIDBase + w.Runs }

// Result is what one run of the Action's step left: its log (stdout and
// stderr), exit code, outputs and step summary.
type Result struct {
	Stdout  string
	Code    int
	Outputs map[string]string
	Summary string
}

// ErrorLines returns the ::error annotations the run printed.
func (r Result) ErrorLines() []string {
	var out []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(l, "::error") {
			out = append(out, l)
		}
	}
	return out
}

var annotationRE = regexp.MustCompile(`^::(\w+)(?: ([^:]*))?::(.*)$`)

// Annotation splits a workflow command "::error k=v,k=v::message" into its
// fields and message; nil fields when line is not one.
func Annotation(line string) (fields map[string]string, msg string) {
	m := annotationRE.FindStringSubmatch(line)
	if m == nil {
		return nil, ""
	}
	fields = map[string]string{}
	for _, kv := range strings.Split(m[2], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			fields[k] = v
		}
	}
	return fields, m[3]
}

// Run runs the Action binary with the environment a runner gives a step:
// every input as INPUT_* (action.yml's defaults, then inputs), GITHUB_*
// variables, fresh output and summary files, and nothing else of the
// test's environment (no KUBECONFIG). It fails the test when inputs names
// an input action.yml does not declare, and when the run leaves files in
// TMPDIR or prints the token.
func (w *Workflow) Run(inputs map[string]string) Result {
	t := w.T
	t.Helper()
	w.Runs++
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
		"GITHUB_WORKSPACE=" + w.Workspace,
		"GITHUB_REPOSITORY=" + Owner + "/" + Repo,
		"GITHUB_API_URL=" + w.GH.URL,
		"GITHUB_SERVER_URL=https://github.com",
		fmt.Sprintf("GITHUB_RUN_ID=%d", w.RunID()),
		"GITHUB_EVENT_NAME=schedule", "GITHUB_EVENT_PATH=" + eventFile,
		"GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + summaryFile,
	}
	// The runner sets every input: the step's value, else action.yml's
	// default (${{ github.token }} is the job's token).
	all := w.defaults()
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
		t.Fatal("kube-rotate-action is not on PATH: run the suite with `make e2e` (it builds bin/ and puts it on PATH)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env, cmd.Dir = env, w.Workspace
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	r := Result{Stdout: out.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running the Action: %v", err)
	}
	b, _ := os.ReadFile(outFile)
	if r.Outputs, err = parseOutputs(string(b)); err != nil {
		t.Fatalf("GITHUB_OUTPUT: %v", err)
	}
	b, _ = os.ReadFile(summaryFile)
	r.Summary = string(b)
	t.Logf("Action run %d (%s):\n%s(exit %d)\noutputs: %v\nstep summary:\n%s", w.Runs, time.Since(start).Round(time.Millisecond), r.Stdout, r.Code, r.Outputs, r.Summary)
	// The kubeconfig and scratch files are gone.
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		var n []string
		for _, e := range left {
			n = append(n, e.Name())
		}
		t.Errorf("the Action left files in TMPDIR (the kubeconfig must not stay): %v", n)
	}
	if strings.Contains(r.Stdout+r.Summary, w.Token) {
		t.Error("the Action printed the GitHub token")
	}
	return r
}

// defaults returns the default of every input in action.yml, at the root
// of the module the test runs in.
func (w *Workflow) defaults() map[string]string {
	t := w.T
	t.Helper()
	path, err := actionYML()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
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
	if len(meta.Inputs) == 0 {
		t.Fatal("action.yml declares no inputs")
	}
	out := map[string]string{}
	for k, in := range meta.Inputs {
		out[k] = in.Default
		if in.Default == "${{ github.token }}" {
			out[k] = w.Token
		}
	}
	return out
}

// actionYML finds action.yml next to go.mod, in the working directory (a
// test's: its package's) or above it.
func actionYML() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "action.yml"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod in the working directory or above it: where is action.yml?")
		}
		dir = up
	}
}

// parseOutputs reads a GITHUB_OUTPUT file: name=value lines and
// name<<DELIM ... DELIM blocks.
func parseOutputs(s string) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		if name, delim, ok := strings.Cut(l, "<<"); ok {
			var val []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				val = append(val, lines[i])
			}
			if i == len(lines) {
				return nil, fmt.Errorf("%s<<%s is not closed", name, delim)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("bad line %q", l)
		}
		out[name] = val
	}
	return out, nil
}

// Report reads the report the run wrote into the workspace (output
// report_json).
func (w *Workflow) Report(r Result) *v1alpha1.RotationReport {
	t := w.T
	t.Helper()
	if r.Outputs["report_json"] == "" {
		t.Fatalf("no output report_json: %v", r.Outputs)
	}
	b, err := os.ReadFile(filepath.Join(w.Workspace, r.Outputs["report_json"]))
	if err != nil {
		t.Fatalf("the report is not in the workspace: %v", err)
	}
	var rep v1alpha1.RotationReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s does not parse: %v", r.Outputs["report_json"], err)
	}
	return &rep
}

// Writes lists the requests since the last ResetRequests that may change
// the repository, with their status.
func (w *Workflow) Writes() []string {
	var out []string
	for _, r := range w.GH.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, fmt.Sprintf("%s %s (%d)", r.Method, r.Path, r.Status))
		}
	}
	return out
}

// Count counts the requests since the last ResetRequests with method to
// path (relative to the repository: "issues", "git/refs").
func (w *Workflow) Count(method, path string) int {
	n := 0
	for _, r := range w.GH.Requests() {
		if r.Method == method && r.Path == "/repos/"+Owner+"/"+Repo+"/"+path {
			n++
		}
	}
	return n
}

// Marker is the hidden marker the Action ends the body of credential id's
// issue with.
func Marker(id string) string { return "<!-- kube-rotate:" + id + " -->" }
