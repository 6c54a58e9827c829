package action

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/kops/util/pkg/vfs"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/kops/kopstest"
)

const token = "ghs_test-token-0123456789"

// runner plays the GitHub runner: a workspace, the file commands and the
// environment, and runs Main as the container's entrypoint would.
type runner struct {
	t         *testing.T
	workspace string
	env       map[string]string
	gh        *githubtest.Server
}

func newRunner(t *testing.T) *runner {
	t.Helper()
	ws := t.TempDir()
	gh := githubtest.New(t, "acme", "infra", "main")
	gh.RequireToken(token)
	return &runner{t: t, workspace: ws, gh: gh, env: map[string]string{
		"GITHUB_WORKSPACE":    ws,
		"GITHUB_REPOSITORY":   "acme/infra",
		"GITHUB_API_URL":      gh.URL,
		"GITHUB_SERVER_URL":   "https://github.example",
		"GITHUB_RUN_ID":       "42",
		"INPUT_GITHUB_TOKEN":  token,
		"INPUT_MAX_AGE":       "90d",
		"INPUT_WARN_BEFORE":   "14d",
		"INPUT_LABELS":        "kube-rotate",
		"INPUT_MODE":          "issue",
		"GITHUB_OUTPUT":       filepath.Join(t.TempDir(), "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(t.TempDir(), "summary"),
	}}
}

// file writes a workspace file.
func (r *runner) file(rel string, data []byte) {
	r.t.Helper()
	p := filepath.Join(r.workspace, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *runner) run() (int, string) {
	r.t.Helper()
	var out bytes.Buffer
	for _, f := range []string{r.env["GITHUB_OUTPUT"], r.env["GITHUB_STEP_SUMMARY"]} {
		if f != "" {
			os.WriteFile(f, nil, 0o600)
		}
	}
	code := Main(context.Background(), Env{Getenv: func(k string) string { return r.env[k] }, Out: &out})
	if strings.Contains(out.String(), token) {
		r.t.Fatalf("the token appears in the log:\n%s", out.String())
	}
	return code, out.String()
}

func (r *runner) read(name string) string {
	b, _ := os.ReadFile(r.env[name])
	return string(b)
}

func writes(gh *githubtest.Server) []string {
	var w []string
	for _, q := range gh.Requests() {
		if q.Method != "GET" {
			w = append(w, q.Method+" "+q.Path)
		}
	}
	return w
}

func openIssues(gh *githubtest.Server) []githubtest.Issue {
	var out []githubtest.Issue
	for _, is := range gh.Issues() {
		if is.State == "open" {
			out = append(out, is)
		}
	}
	return out
}

// kops seeds a file:// state store whose primaries were made now.
func kops(t *testing.T) string {
	t.Helper()
	state := "file://" + filepath.Join(t.TempDir(), "state")
	kopstest.Seed(t, state, vfs.NewVFSContext(), "kubernetes-ca", "service-account")
	return state
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../model/jwks/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIssueModeOpensUpdatesAndCloses runs the Action three times: the
// overdue key set gets one issue, kept (not duplicated) on the next run,
// and closed with a comment once the key set was rotated.
func TestIssueModeOpensUpdatesAndCloses(t *testing.T) {
	r := newRunner(t)
	// DiracX's signing key carries its creation time in its uuid7 kid (May 2025).
	r.file("keys/diracx.jwks", fixture(t, "diracx.json"))
	r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
	r.env["INPUT_KOPS_STATE_STORE"] = kops(t)
	r.env["INPUT_KOPS_CLUSTER"] = kopstest.ClusterName

	code, log := r.run()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	issues := openIssues(r.gh)
	if len(issues) != 1 {
		t.Fatalf("%d open issues, want 1 (the signing key):\n%+v", len(issues), issues)
	}
	is := issues[0]
	for _, want := range []string{"keys/diracx.jwks", "overdue", "source: kid", "rule `default`", "kubectl rotate jwk rotate --file keys/diracx.jwks",
		"<!-- kube-rotate:jwk-file:keys/diracx.jwks#signing -->", "https://github.example/acme/infra/actions/runs/42"} {
		if !strings.Contains(is.Title+is.Body, want) {
			t.Errorf("issue lacks %q:\n%s\n%s", want, is.Title, is.Body)
		}
	}
	if !strings.Contains(r.read("GITHUB_OUTPUT"), "overdue_count<<") || !regexp.MustCompile(`overdue_count<<\S+\n1\n`).MatchString(r.read("GITHUB_OUTPUT")) {
		t.Errorf("outputs:\n%s", r.read("GITHUB_OUTPUT"))
	}
	if s := r.read("GITHUB_STEP_SUMMARY"); !strings.Contains(s, "| Credential | Kind | Age |") || !strings.Contains(s, "kubernetes-ca") || !strings.Contains(s, "issue #1 opened") {
		t.Errorf("step summary:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(r.workspace, ReportPath)); err != nil {
		t.Errorf("report_json: %v", err)
	}

	// Still overdue: the same issue, no second one.
	if code, log := r.run(); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, log)
	}
	if got := openIssues(r.gh); len(got) != 1 || got[0].Number != is.Number {
		t.Fatalf("after the second run: %+v", got)
	}
	if n := len(r.gh.Issues()); n != 1 {
		t.Errorf("%d issues in all, want 1", n)
	}

	// Rotated (as `kubectl rotate jwk rotate --file` does): closed with a comment.
	st := &keystore.FileStore{Path: filepath.Join(r.workspace, "keys/diracx.jwks")}
	set, rec, err := st.Load(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ring := jwks.NewRing(set, "", rec)
	k, err := ring.Add(jwks.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Promote(k.KID); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(context.Background(), ring.Set, ring.Records, "jwk-rotate", "test"); err != nil {
		t.Fatal(err)
	}
	if code, log := r.run(); code != 0 {
		t.Fatalf("third run: exit %d\n%s", code, log)
	}
	all := r.gh.Issues()
	if len(all) != 1 || all[0].State != "closed" || len(all[0].Comments) != 1 || !strings.Contains(all[0].Comments[0], "no longer overdue") {
		t.Fatalf("after rotating: %+v", all)
	}
}

// TestPRModeOneStepOnePR: the key-set file gets one branch and one pull
// request with one new key; a second run keeps that step instead of
// generating another key.
func TestPRModeOneStepOnePR(t *testing.T) {
	r := newRunner(t)
	base := fixture(t, "diracx.json")
	r.file("keys/diracx.jwks", base)
	r.gh.SetFile("main", "keys/diracx.jwks", base)
	r.env["INPUT_MODE"] = "pr"
	r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"

	code, log := r.run()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	pulls := r.gh.Pulls()
	if len(pulls) != 1 || pulls[0].Head != "kube-rotate/keys/diracx.jwks" || pulls[0].Base != "main" {
		t.Fatalf("pull requests: %+v", pulls)
	}
	proposed, ok := r.gh.File("kube-rotate/keys/diracx.jwks", "keys/diracx.jwks")
	if !ok {
		t.Fatal("the key-set file is not on the branch")
	}
	keysOf := func(b []byte) []string {
		s, err := jwks.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range s.Keys {
			kids = append(kids, k.KID)
		}
		sort.Strings(kids)
		return kids
	}
	if got := keysOf(proposed); len(got) != len(keysOf(base))+1 {
		t.Fatalf("branch has keys %v, base %v: want one new key", got, keysOf(base))
	}
	if main, _ := r.gh.File("main", "keys/diracx.jwks"); !bytes.Equal(main, base) {
		t.Error("the default branch changed")
	}
	if side, ok := r.gh.File("kube-rotate/keys/diracx.jwks", "keys/diracx.jwks.kube-rotate.json"); !ok || !strings.Contains(string(side), `"next"`) {
		t.Errorf("records on the branch: %s", side)
	}
	if len(openIssues(r.gh)) != 0 {
		t.Errorf("an issue was opened for a credential the pull request handles: %+v", openIssues(r.gh))
	}

	if code, log := r.run(); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, log)
	}
	if got := r.gh.Pulls(); len(got) != 1 {
		t.Fatalf("%d pull requests after the second run", len(got))
	}
	again, _ := r.gh.File("kube-rotate/keys/diracx.jwks", "keys/diracx.jwks")
	if !bytes.Equal(again, proposed) {
		t.Error("the second run generated another key instead of keeping the proposed step")
	}
	if n := len(r.gh.CommitMessages("kube-rotate/keys/diracx.jwks")); n == 0 {
		t.Error("no commits on the branch")
	}
}

func TestBadInputOpensNothing(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		fault func(*githubtest.Server)
		want  []string
	}{
		{"missing token", map[string]string{"INPUT_GITHUB_TOKEN": ""}, nil, []string{"::error title=kube-rotate::input github_token is empty"}},
		{"unknown mode", map[string]string{"INPUT_MODE": "issues"}, nil, []string{`input mode "issues" is not known: use issue, pr, report or summary`}},
		{"garbage kubeconfig", map[string]string{"INPUT_KUBECONFIG": "not: [a kubeconfig"}, nil, []string{"input kubeconfig is not a kubeconfig"}},
		{"exec plugin", map[string]string{"INPUT_KUBECONFIG": execKubeconfig}, nil, []string{`user "eks" of context eks runs the credential plugin "aws" (exec:)`}},
		{"policy syntax", map[string]string{"INPUT_POLICY": "policy.yaml"}, nil, []string{"::error file=policy.yaml,line=5,title=kube-rotate::policy.yaml: policy: line 5"}},
		{"missing policy", map[string]string{"INPUT_POLICY": "nope.yaml"}, nil, []string{"input policy: nope.yaml cannot be read"}},
		{"missing key-set file", map[string]string{"INPUT_JWKS_FILES": "keys/none.jwks"}, nil, []string{"input jwks_files: keys/none.jwks cannot be read"}},
		{"bad dry_run", map[string]string{"INPUT_DRY_RUN": "maybe"}, nil, []string{`input dry_run "maybe" is not a boolean`}},
		{"bad max_age", map[string]string{"INPUT_MAX_AGE": "90 days"}, nil, []string{"input max_age"}},
		{"kops without cluster", map[string]string{"INPUT_KOPS_STATE_STORE": "file:///nowhere"}, nil, []string{"kops_state_store and kops_cluster go together"}},
		{"pr without files", map[string]string{"INPUT_MODE": "pr", "INPUT_JWKS_FILES": ""}, nil, []string{"mode pr rotates key-set files"}},
		{"no repository", map[string]string{"GITHUB_REPOSITORY": ""}, nil, []string{"GITHUB_REPOSITORY"}},
		{"bad token", map[string]string{"INPUT_GITHUB_TOKEN": "wrong"}, nil, []string{"401"}},
		{"403 on create", nil, func(s *githubtest.Server) {
			s.FailNext("POST", "issues", 403, "Resource not accessible by integration", 0)
		},
			[]string{"403", "issues: write"}},
		{"422 on create", nil, func(s *githubtest.Server) { s.FailNext("POST", "issues", 422, "Validation Failed", 0) }, []string{"422"}},
		{"500 on create is not retried", nil, func(s *githubtest.Server) { s.FailNext("POST", "issues", 500, "Server Error", 0) }, []string{"500", "not retried"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t)
			r.file("keys/diracx.jwks", fixture(t, "diracx.json"))
			r.file("policy.yaml", []byte("apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: 90 days\n"))
			r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
			for k, v := range tt.env {
				r.env[k] = v
			}
			if tt.fault != nil {
				tt.fault(r.gh)
			}
			code, log := r.run()
			if code != ExitError {
				t.Fatalf("exit %d, want %d\n%s", code, ExitError, log)
			}
			errs := regexp.MustCompile(`(?m)^::error.*$`).FindAllString(log, -1)
			if len(errs) != 1 {
				t.Fatalf("%d error annotations, want 1:\n%s", len(errs), log)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("error %q lacks %q", errs[0], w)
				}
			}
			if len(openIssues(r.gh)) != 0 || len(r.gh.Pulls()) != 0 {
				t.Errorf("something was opened: %+v %+v", r.gh.Issues(), r.gh.Pulls())
			}
			if tt.name == "500 on create is not retried" {
				if w := writes(r.gh); len(w) != 1 {
					t.Errorf("writes %v, want exactly one POST", w)
				}
			} else if tt.fault == nil {
				if w := writes(r.gh); len(w) != 0 {
					t.Errorf("bad input reached GitHub: %v", w)
				}
			}
		})
	}
}

const execKubeconfig = `apiVersion: v1
kind: Config
current-context: eks
clusters:
- name: eks
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: eks
  context: {cluster: eks, user: eks}
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod]
`

// A 500 on a read is retried; the run then succeeds.
func TestServerErrorOnReadIsRetried(t *testing.T) {
	r := newRunner(t)
	r.file("keys/diracx.jwks", fixture(t, "diracx.json"))
	r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
	r.gh.FailNext("GET", "issues", 500, "Server Error", 1)
	start := time.Now()
	code, log := r.run()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	if len(openIssues(r.gh)) != 1 {
		t.Errorf("issues: %+v", r.gh.Issues())
	}
	t.Logf("run with one retry took %s", time.Since(start))
}

func TestDryRunAndReportWriteNothing(t *testing.T) {
	for _, env := range []map[string]string{{"INPUT_DRY_RUN": "true"}, {"INPUT_MODE": "report", "INPUT_GITHUB_TOKEN": ""}} {
		r := newRunner(t)
		r.file("keys/diracx.jwks", fixture(t, "diracx.json"))
		r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
		for k, v := range env {
			r.env[k] = v
		}
		code, log := r.run()
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", env, code, log)
		}
		if w := writes(r.gh); len(w) != 0 {
			t.Errorf("%v: writes %v", env, w)
		}
		if env["INPUT_DRY_RUN"] == "true" && !strings.Contains(r.read("GITHUB_STEP_SUMMARY"), "would open") {
			t.Errorf("dry-run summary does not say what would happen:\n%s", r.read("GITHUB_STEP_SUMMARY"))
		}
	}
}

func TestFailOnAndMissingFileCommands(t *testing.T) {
	r := newRunner(t)
	r.file("keys/diracx.jwks", fixture(t, "diracx.json"))
	r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
	r.env["INPUT_MODE"] = "report"
	r.env["INPUT_FAIL_ON"] = "overdue"
	delete(r.env, "GITHUB_OUTPUT")
	delete(r.env, "GITHUB_STEP_SUMMARY")
	code, log := r.run()
	if code != ExitFailOn || !strings.Contains(log, "GITHUB_OUTPUT is not set") {
		t.Fatalf("exit %d, want %d, with a warning about GITHUB_OUTPUT:\n%s", code, ExitFailOn, log)
	}
}

// action.yml declares exactly the inputs the code reads, with snake_case
// names, and the image the runner builds has the module in its context.
func TestActionMetadata(t *testing.T) {
	b, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Inputs  map[string]struct{ Default string }
		Outputs map[string]any
		Runs    struct{ Using, Image string }
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("inputs.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:GetInput|boolInput\(gha,) ?\(?"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\{"([a-z_]+)", &in\.`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	for name := range meta.Inputs {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(name) {
			t.Errorf("input %q is not snake_case", name)
		}
		if !read[name] {
			t.Errorf("input %q is declared but never read", name)
		}
	}
	for name := range read {
		if _, ok := meta.Inputs[name]; !ok {
			t.Errorf("input %q is read but not declared in action.yml", name)
		}
	}
	if meta.Inputs["github_token"].Default != "${{ github.token }}" {
		t.Errorf("github_token default %q", meta.Inputs["github_token"].Default)
	}
	for _, o := range []string{"overdue_count", "warn_count", "report_json"} {
		if _, ok := meta.Outputs[o]; !ok {
			t.Errorf("output %s not declared", o)
		}
	}
	if meta.Runs.Using != "docker" {
		t.Errorf("runs.using %q", meta.Runs.Using)
	}
	image := filepath.Join("../..", meta.Runs.Image)
	if _, err := os.Stat(filepath.Join(filepath.Dir(image), "go.mod")); err != nil {
		t.Errorf("the runner builds %s with %s as context, which lacks go.mod", meta.Runs.Image, filepath.Dir(meta.Runs.Image))
	}
	df, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	lines := string(df)
	for _, bad := range []string{"\nUSER ", ":nonroot"} {
		if strings.Contains(lines, bad) {
			t.Errorf("Dockerfile has %q: GitHub's file commands need root", strings.TrimSpace(bad))
		}
	}
	final := lines[strings.LastIndex(lines, "\nFROM "):]
	if strings.Contains(final, "\nWORKDIR") || !strings.Contains(final, `ENTRYPOINT ["/`) || !strings.Contains(lines, "CGO_ENABLED=0") {
		t.Errorf("final stage must have no WORKDIR and an exec-form absolute ENTRYPOINT, and the build must be static:\n%s", final)
	}
}

// TestPRModeSlurmNeverChangesWhoSigns: the pull request that publishes a
// new Slurm key appends it last without "use", so the key Slurm signs with
// (the first, as no key is "use":"default") stays the same until a later
// step promotes it.
func TestPRModeSlurmNeverChangesWhoSigns(t *testing.T) {
	r := newRunner(t)
	base := fixture(t, "slurm.json")
	created := time.Now().Add(-400 * 24 * time.Hour).UTC().Format(time.RFC3339)
	side := []byte(`{"1f0e3dad-9990-4b2c-8a3e-2f1c0b6a7d15":{"state":"active","created":"` + created + `"}}`)
	for _, branch := range []string{"", "main"} {
		if branch == "" {
			r.file("keys/slurm.jwks", base)
			r.file("keys/slurm.jwks.kube-rotate.json", side)
			continue
		}
		r.gh.SetFile(branch, "keys/slurm.jwks", base)
		r.gh.SetFile(branch, "keys/slurm.jwks.kube-rotate.json", side)
	}
	r.env["INPUT_MODE"] = "pr"
	r.env["INPUT_JWKS_FILES"] = "keys/slurm.jwks"
	if code, log := r.run(); code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	proposed, ok := r.gh.File("kube-rotate/keys/slurm.jwks", "keys/slurm.jwks")
	if !ok {
		t.Fatal("the key-set file is not on the branch")
	}
	s, err := jwks.Parse(proposed)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := jwks.Parse(base)
	ring := jwks.NewRing(s, "", nil)
	if len(s.Keys) != 3 || string(s.Keys[0].Raw) != string(orig.Keys[0].Raw) || string(s.Keys[1].Raw) != string(orig.Keys[1].Raw) {
		t.Fatalf("the new key must be appended after the existing ones, which stay as they were")
	}
	if ring.ActiveIndex() != 0 || strings.Contains(string(s.Keys[2].Raw), `"use"`) {
		t.Errorf("the proposed set changes who signs: active %d, new key %s", ring.ActiveIndex(), s.Keys[2].KID)
	}
}

// TestPRModeResumesAfterAFailureAtEachStep: GitHub fails one request of
// the pull-request procedure (advance, branch, commit, pull-request); the
// run fails, and the next run finishes from GitHub's objects: a step whose
// effect GitHub shows is not taken again, and a step committed whole is
// kept (no second key).
func TestPRModeResumesAfterAFailureAtEachStep(t *testing.T) {
	const branch = "kube-rotate/keys/diracx.jwks"
	tests := []struct {
		name           string
		method, path   string
		failedStep     string
		kept           bool     // the re-run proposes what the failed run committed
		notInRerun     []string // writes the re-run must not make
		wantRerunWrite []string
	}{
		{name: "advance: listing pull requests", method: "GET", path: "pulls", failedStep: StepAdvance,
			wantRerunWrite: []string{"POST /repos/acme/infra/git/refs", "POST /repos/acme/infra/pulls"}},
		{name: "branch: creating it", method: "POST", path: "git/refs", failedStep: StepBranch,
			notInRerun: []string{"PATCH /repos/acme/infra/git/refs/heads/" + branch}, wantRerunWrite: []string{"POST /repos/acme/infra/git/refs"}},
		{name: "commit: the records", method: "PUT", path: "contents/keys/diracx.jwks.kube-rotate.json", failedStep: StepCommit,
			notInRerun: []string{"POST /repos/acme/infra/git/refs", "PATCH /repos/acme/infra/git/refs/heads/" + branch}},
		{name: "commit: the key set, after its records", method: "PUT", path: "contents/keys/diracx.jwks", failedStep: StepCommit,
			// Half a step is not kept: the branch is reset and the step taken anew.
			notInRerun: []string{"POST /repos/acme/infra/git/refs"}, wantRerunWrite: []string{"PATCH /repos/acme/infra/git/refs/heads/" + branch}},
		{name: "pull-request: opening it", method: "POST", path: "pulls", failedStep: StepPullRequest, kept: true,
			notInRerun: []string{"POST /repos/acme/infra/git/refs", "PATCH /repos/acme/infra/git/refs/heads/" + branch, "PUT /repos/acme/infra/contents/keys/diracx.jwks", "PUT /repos/acme/infra/contents/keys/diracx.jwks.kube-rotate.json"}},
		{name: "pull-request: labeling it", method: "POST", path: "issues/*/labels", failedStep: StepPullRequest, kept: true,
			notInRerun:     []string{"POST /repos/acme/infra/pulls", "POST /repos/acme/infra/git/refs", "PUT /repos/acme/infra/contents/keys/diracx.jwks"},
			wantRerunWrite: []string{"POST /repos/acme/infra/issues/1/labels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t)
			base := fixture(t, "diracx.json")
			r.file("keys/diracx.jwks", base)
			r.gh.SetFile("main", "keys/diracx.jwks", base)
			r.env["INPUT_MODE"] = "pr"
			r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
			r.gh.FailNext(tt.method, tt.path, 403, "Resource not accessible by integration", 1)
			code, log := r.run()
			if code != ExitError || !strings.Contains(log, "("+tt.failedStep+") failed") {
				t.Fatalf("first run: exit %d, want %d with step %s failed:\n%s", code, ExitError, tt.failedStep, log)
			}
			before, _ := r.gh.File(branch, "keys/diracx.jwks")
			r.gh.ClearFaults()
			r.gh.ResetRequests()
			if code, log := r.run(); code != 0 {
				t.Fatalf("re-run: exit %d\n%s", code, log)
			}
			w := writes(r.gh)
			for _, not := range tt.notInRerun {
				if slices.Contains(w, not) {
					t.Errorf("the re-run did %s again: %v", not, w)
				}
			}
			for _, want := range tt.wantRerunWrite {
				if !slices.Contains(w, want) {
					t.Errorf("the re-run did not %s: %v", want, w)
				}
			}
			pulls := r.gh.Pulls()
			if len(pulls) != 1 || pulls[0].Head != branch || !slices.Contains(pulls[0].Labels, "kube-rotate") {
				t.Fatalf("pull requests after the re-run: %+v", pulls)
			}
			proposed, ok := r.gh.File(branch, "keys/diracx.jwks")
			if !ok {
				t.Fatal("the key-set file is not on the branch")
			}
			s, err := jwks.Parse(proposed)
			if err != nil {
				t.Fatal(err)
			}
			orig, _ := jwks.Parse(base)
			if len(s.Keys) != len(orig.Keys)+1 {
				t.Errorf("branch has %d keys, base %d: want one new key", len(s.Keys), len(orig.Keys))
			}
			if tt.kept && !bytes.Equal(proposed, before) {
				t.Error("the re-run made another key instead of keeping the step the failed run committed")
			}
			var newKID string
			for _, k := range s.Keys {
				if orig.Find(k.KID) < 0 {
					newKID = k.KID
				}
			}
			if side, ok := r.gh.File(branch, "keys/diracx.jwks.kube-rotate.json"); !ok || newKID == "" || !strings.Contains(string(side), newKID) {
				t.Errorf("the records on the branch do not know the new key:\n%s", side)
			}
			if len(openIssues(r.gh)) != 0 {
				t.Errorf("issues opened: %+v", openIssues(r.gh))
			}
		})
	}
}

// TestPRModeDryRunWritesNothing: mode pr with dry_run says what would
// happen and writes nothing.
func TestPRModeDryRunWritesNothing(t *testing.T) {
	r := newRunner(t)
	base := fixture(t, "diracx.json")
	r.file("keys/diracx.jwks", base)
	r.gh.SetFile("main", "keys/diracx.jwks", base)
	r.env["INPUT_MODE"] = "pr"
	r.env["INPUT_JWKS_FILES"] = "keys/diracx.jwks"
	r.env["INPUT_DRY_RUN"] = "true"
	if code, log := r.run(); code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	if w := writes(r.gh); len(w) != 0 {
		t.Errorf("dry run wrote %v", w)
	}
	if s := r.read("GITHUB_STEP_SUMMARY"); !strings.Contains(s, "pull request on branch kube-rotate/keys/diracx.jwks would open") {
		t.Errorf("summary:\n%s", s)
	}
}

// The example workflows use only inputs and outputs action.yml declares.
func TestExampleWorkflowsMatchActionYML(t *testing.T) {
	b, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Inputs  map[string]any
		Outputs map[string]any
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../examples/workflows/*.yml")
	if len(files) < 2 {
		t.Fatalf("examples/workflows holds %d workflows", len(files))
	}
	outputRE := regexp.MustCompile(`steps\.[a-z_-]+\.outputs\.([a-z_]+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Uses string
					With map[string]any
				}
			}
		}
		if err := yaml.Unmarshal(b, &wf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		uses := 0
		for job, j := range wf.Jobs {
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "kube-rotate/kube-rotate@") {
					continue
				}
				uses++
				for k := range s.With {
					if _, ok := meta.Inputs[k]; !ok {
						t.Errorf("%s: job %s passes input %q, which action.yml does not declare", filepath.Base(f), job, k)
					}
				}
			}
		}
		if uses == 0 {
			t.Errorf("%s does not use the Action", filepath.Base(f))
		}
		for _, m := range outputRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := meta.Outputs[m[1]]; !ok {
				t.Errorf("%s reads output %q, which action.yml does not declare", filepath.Base(f), m[1])
			}
		}
	}
}
