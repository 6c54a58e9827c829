//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kube-rotate/kube-rotate/e2e/internal/actionrun"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
)

// ghToken is the job's token; the fake GitHub accepts only it.
const ghToken = "ghs_e2eFakeInstallationToken0123456789"

// actionKubeconfig is the test cluster's kubeconfig reduced to its current
// context with certificates embedded, as a user stores it in a secret
// for the Action.
func actionKubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.NewDefaultClientConfigLoadingRules().Load()
	if err != nil {
		t.Fatalf("loading KUBECONFIG: %v", err)
	}
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		t.Fatalf("minifying KUBECONFIG: %v", err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		t.Fatalf("flattening KUBECONFIG: %v", err)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// workflow is a repository checked out in a workspace, its fake GitHub,
// and the inputs of the Action's step.
type workflow struct {
	*actionrun.Workflow
	inputs map[string]string
}

func newWorkflow(t *testing.T, inputs map[string]string) *workflow {
	t.Helper()
	w := actionrun.New(t, ghToken)
	w.Timeout = scaled(3 * time.Minute)
	return &workflow{Workflow: w, inputs: inputs}
}

// run runs the Action's step with the workflow's inputs.
func (w *workflow) run() actionrun.Result {
	w.T.Helper()
	return w.Run(w.inputs)
}

// issuesFor returns the issues whose hidden marker names the credential id.
func issuesFor(gh *githubtest.Server, id string) []githubtest.Issue {
	var out []githubtest.Issue
	for _, is := range gh.Issues() {
		if strings.Contains(is.Body, actionrun.Marker(id)) {
			out = append(out, is)
		}
	}
	return out
}

// openIssueCount counts the open issues.
func openIssueCount(gh *githubtest.Server) int {
	n := 0
	for _, is := range gh.Issues() {
		if is.State == "open" {
			n++
		}
	}
	return n
}

// readReport reads the report the Action wrote into the workspace, where
// it writes it by default.
func readReport(t *testing.T, w *workflow, r actionrun.Result) *report.Report {
	t.Helper()
	if r.Outputs["report_json"] != ".kube-rotate/report.json" {
		t.Fatalf("output report_json = %q, want .kube-rotate/report.json", r.Outputs["report_json"])
	}
	return w.Report(r)
}

// TestActionIssues: mode issue on a real cluster, three scheduled runs:
// one issue per overdue Secret; the second run updates them instead of
// opening more; after a rotation the issue is commented and closed.
func TestActionIssues(t *testing.T) {
	cid := clusterName(t) + "/"
	ns := newNamespace(t)
	createAgedSecret(t, ns, "api-token", 100*day, nil, map[string]string{"token": "api-token-value-0001"})
	createAgedSecret(t, ns, "db-password", 120*day, nil, map[string]string{"password": "db-password-value-0002"})
	createAgedSecret(t, ns, "cookie-key", 80*day, nil, map[string]string{"key": "cookie-key-value-0003"})
	createAgedSecret(t, ns, "fresh", 0, nil, map[string]string{"v": "fresh-value-00004"})
	kubeconfig := actionKubeconfig(t)
	w := newWorkflow(t, map[string]string{"kubeconfig": kubeconfig, "namespace": ns, "github_token": ghToken})
	apiID, dbID := "secret:"+cid+ns+"/api-token", "secret:"+cid+ns+"/db-password"

	// Run 1: an issue per overdue Secret, none for the others.
	r1 := w.run()
	if r1.Code != 0 {
		t.Fatalf("run 1: exit %d", r1.Code)
	}
	issues := w.GH.Issues()
	if len(issues) != 2 || len(issuesFor(w.GH, apiID)) != 1 || len(issuesFor(w.GH, dbID)) != 1 {
		t.Fatalf("run 1: issues %+v, want one for each overdue Secret", issues)
	}
	api := issuesFor(w.GH, apiID)[0]
	if api.State != "open" || api.Title != "Rotate "+ns+"/api-token in cluster "+clusterName(t)+" (secret overdue)" || !slices.Equal(api.Labels, []string{"kube-rotate"}) {
		t.Errorf("api-token issue: %q %s labels %v", api.Title, api.State, api.Labels)
	}
	for _, want := range []string{"**" + ns + "/api-token** is **overdue**", "rotated-at", "maxAge 90d",
		"kubectl rotate secret api-token -n " + ns + " --key token --generate random:32",
		"(https://github.com/" + actionrun.Owner + "/" + actionrun.Repo + "/actions/runs/1001)"} {
		if !strings.Contains(api.Body, want) {
			t.Errorf("api-token issue body lacks %q:\n%s", want, api.Body)
		}
	}
	if r1.Outputs["overdue_count"] != "2" || r1.Outputs["warn_count"] != "1" {
		t.Errorf("run 1 outputs %v, want overdue_count 2, warn_count 1", r1.Outputs)
	}
	rep := readReport(t, w, r1)
	if rep.Summary != (report.Summary{Total: 4, OK: 1, Warn: 1, Overdue: 2}) {
		t.Errorf("report.json summary %+v (ids %v): only namespace %s must be checked", rep.Summary, ids(rep), ns)
	}
	for _, want := range []string{
		"| Credential | Kind | Age | Source | Limit | State | Rotate |",
		"| " + ns + "/api-token | secret | 100d",
		"**2 overdue**",
		fmt.Sprintf("- issue #%d opened: %s (https://github.com/%s/%s/issues/%d)", api.Number, apiID, actionrun.Owner, actionrun.Repo, api.Number),
	} {
		if !strings.Contains(r1.Summary, want) {
			t.Errorf("run 1 step summary lacks %q:\n%s", want, r1.Summary)
		}
	}
	if !strings.Contains(r1.Stdout, "::warning title=Credential overdue::"+ns+"/api-token in cluster "+clusterName(t)+": 100d") {
		t.Errorf("run 1: no warning annotation for api-token")
	}

	// Run 2: same issues, updated in place; nothing new opened.
	w.GH.ResetRequests()
	r2 := w.run()
	if r2.Code != 0 {
		t.Fatalf("run 2: exit %d", r2.Code)
	}
	if n := w.Count(http.MethodPost, "issues"); n != 0 || len(w.GH.Issues()) != 2 || openIssueCount(w.GH) != 2 {
		t.Fatalf("run 2: %d issues created, issues now %+v; want the same two, open", n, w.GH.Issues())
	}
	api2 := issuesFor(w.GH, apiID)[0]
	if api2.Number != api.Number || !strings.Contains(api2.Body, "/actions/runs/1002)") || len(api2.Comments) != 0 {
		t.Errorf("run 2: api-token issue #%d (was #%d) not updated with the new run, or commented: %+v", api2.Number, api.Number, api2)
	}
	if !strings.Contains(r2.Summary, fmt.Sprintf("- issue #%d updated: %s", api.Number, apiID)) {
		t.Errorf("run 2 summary does not say the issue was updated:\n%s", r2.Summary)
	}

	// Rotate api-token: the next run closes its issue with a comment.
	mustRun(t, "secret", "api-token", "-n", ns, "--key", "token", "--generate", "hex:32")
	w.GH.ResetRequests()
	r3 := w.run()
	if r3.Code != 0 {
		t.Fatalf("run 3: exit %d", r3.Code)
	}
	api3 := issuesFor(w.GH, apiID)[0]
	if api3.State != "closed" || api3.StateReason != "completed" || len(api3.Comments) != 1 ||
		!strings.Contains(api3.Comments[0], ns+"/api-token in cluster "+clusterName(t)+" is no longer overdue (state ok") {
		t.Errorf("run 3: api-token issue %s (%s), comments %q; want closed as completed with one comment", api3.State, api3.StateReason, api3.Comments)
	}
	if db := issuesFor(w.GH, dbID); len(db) != 1 || db[0].State != "open" || len(w.GH.Issues()) != 2 {
		t.Errorf("run 3: issues %+v; db-password's must stay open and none be added", w.GH.Issues())
	}
	if r3.Outputs["overdue_count"] != "1" || !strings.Contains(r3.Summary, fmt.Sprintf("- issue #%d closed: %s", api.Number, apiID)) {
		t.Errorf("run 3: outputs %v, summary:\n%s", r3.Outputs, r3.Summary)
	}

	// No value anywhere: log, summary, report, issues. The kubeconfig's
	// client key appears only in ::add-mask:: commands.
	vals := secretValues(t, ns)
	rb, _ := os.ReadFile(filepath.Join(w.Workspace, ".kube-rotate", "report.json"))
	var published []string
	for _, is := range w.GH.Issues() {
		published = append(published, is.Title, is.Body)
		published = append(published, is.Comments...)
	}
	for i, r := range []actionrun.Result{r1, r2, r3} {
		assertNoValues(t, fmt.Sprintf("run %d log", i+1), r.Stdout, vals)
		assertNoValues(t, fmt.Sprintf("run %d summary", i+1), r.Summary, vals)
	}
	assertNoValues(t, "report.json", string(rb), vals)
	assertNoValues(t, "issues", strings.Join(published, "\n"), vals)
	kc, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range kc.AuthInfos {
		for _, l := range strings.Split(string(ai.ClientKeyData), "\n") {
			if len(l) < 8 || strings.HasPrefix(l, "-----") {
				continue
			}
			masked := false
			for _, ol := range strings.Split(r1.Stdout, "\n") {
				if strings.Contains(ol, l) {
					if ol != "::add-mask::"+l {
						t.Errorf("run 1 log shows the client key outside ::add-mask::")
					}
					masked = true
				}
			}
			if !masked {
				t.Errorf("run 1 did not mask a line of the client key")
			}
		}
	}
}

// TestActionPullRequest: mode pr with a key-set file kept in the
// repository whose signing key is overdue: one branch and one pull request
// that publishes a new key; a second run keeps both as they are. Overdue
// Secrets of the same run get issues.
func TestActionPullRequest(t *testing.T) {
	cid := clusterName(t) + "/"
	ns := newNamespace(t)
	createAgedSecret(t, ns, "slurm-token", 40*day, nil, map[string]string{"token": "slurm-token-value-0005"})
	const file = "deploy/diracx-jwks.json"
	branch := "kube-rotate/" + file
	fixture := readFixture(t, "diracx.json")
	w := newWorkflow(t, map[string]string{"kubeconfig": actionKubeconfig(t), "namespace": ns, "github_token": ghToken,
		"mode": "pr", "jwks_files": file, "max_age": "30d"})
	w.GH.SetFile("main", file, fixture)
	writeFile(t, filepath.Join(w.Workspace, file), string(fixture))
	base, _ := jwks.Parse(fixture)
	baseSHA := w.GH.BranchSHA("main")

	r1 := w.run()
	if r1.Code != 0 {
		t.Fatalf("run 1: exit %d", r1.Code)
	}
	if b := w.GH.Branches(); !slices.Equal(b, []string{branch, "main"}) {
		t.Fatalf("run 1: branches %v, want main and %s", b, branch)
	}
	pulls := w.GH.Pulls()
	if len(pulls) != 1 || pulls[0].State != "open" || pulls[0].Head != branch || pulls[0].Base != "main" ||
		pulls[0].Title != "Rotate the key set in "+file || !slices.Contains(pulls[0].Labels, "kube-rotate") {
		t.Fatalf("run 1: pull requests %+v, want one open from %s into main, labeled kube-rotate", pulls, branch)
	}
	pr := pulls[0]
	if !strings.Contains(pr.Body, "**publish new key ") {
		t.Errorf("pull request body does not say the step:\n%s", pr.Body)
	}
	proposed, ok := w.GH.File(branch, file)
	if !ok {
		t.Fatalf("%s is not on branch %s", file, branch)
	}
	set, err := jwks.Parse(proposed)
	if err != nil {
		t.Fatalf("proposed key set does not parse: %v", err)
	}
	if len(set.Keys) != len(base.Keys)+1 {
		t.Fatalf("proposed key set has %d keys, base %d: want one more", len(set.Keys), len(base.Keys))
	}
	for _, k := range base.Keys {
		if i := set.Find(k.KID); i < 0 || string(set.Keys[i].Raw) != string(k.Raw) {
			t.Errorf("key %s of the base is missing or changed on the branch", k.KID)
		}
	}
	side, _ := w.GH.File(branch, file+".kube-rotate.json")
	rec, err := jwks.ParseRecords(side)
	if err != nil {
		t.Fatal(err)
	}
	ring, baseRing := jwks.NewRing(set, "", rec), jwks.NewRing(base, "", nil)
	var added string
	for i, k := range set.Keys {
		if base.Find(k.KID) < 0 {
			added = k.KID
			if ring.State(i) != jwks.StateNext {
				t.Errorf("new key %s is %s: it must be published before it signs", k.KID, ring.State(i))
			}
		}
	}
	if set.Keys[ring.ActiveIndex()].KID != base.Keys[baseRing.ActiveIndex()].KID {
		t.Error("the pull request changed the signing key in its first step")
	}
	if msgs := w.GH.CommitMessages(branch); len(msgs) < 2 || !strings.HasPrefix(msgs[0], "kube-rotate: "+file+": publish new key "+added) {
		t.Errorf("commits on %s: %q", branch, msgs)
	}
	if w.GH.BranchSHA("main") != baseSHA {
		t.Error("the Action committed to main")
	}
	if b, _ := os.ReadFile(filepath.Join(w.Workspace, file)); !bytes.Equal(b, fixture) {
		t.Error("the Action changed the checked-out file")
	}
	// The Secret got an issue; the key set did not (its pull request
	// takes care of it).
	if is := issuesFor(w.GH, "secret:"+cid+ns+"/slurm-token"); len(is) != 1 || is[0].State != "open" || len(w.GH.Issues()) != 1 {
		t.Errorf("run 1: issues %+v, want one for slurm-token only", w.GH.Issues())
	}
	if !strings.Contains(r1.Summary, fmt.Sprintf("- pull request #%d opened: %s", pr.Number, file)) || r1.Outputs["overdue_count"] != "2" {
		t.Errorf("run 1: outputs %v, summary:\n%s", r1.Outputs, r1.Summary)
	}
	if rep := readReport(t, w, r1); itemsByID(rep)["jwk-file:"+file+"#signing"].State != "overdue" {
		t.Errorf("report has no overdue jwk-file:%s#signing: %v", file, ids(rep))
	}

	// Run 2: the pull request stands; no new branch, commit or key.
	headSHA := w.GH.BranchSHA(branch)
	w.GH.ResetRequests()
	r2 := w.run()
	if r2.Code != 0 {
		t.Fatalf("run 2: exit %d", r2.Code)
	}
	pulls = w.GH.Pulls()
	if len(pulls) != 1 || pulls[0].Number != pr.Number || pulls[0].State != "open" {
		t.Errorf("run 2: pull requests %+v, want #%d alone and open", pulls, pr.Number)
	}
	if b := w.GH.Branches(); !slices.Equal(b, []string{branch, "main"}) || w.GH.BranchSHA(branch) != headSHA {
		t.Errorf("run 2: branches %v, %s moved: %v", b, branch, w.GH.BranchSHA(branch) != headSHA)
	}
	if now, _ := w.GH.File(branch, file); !bytes.Equal(now, proposed) {
		t.Error("run 2 changed the proposed key set (a new key was generated)")
	}
	if n := w.Count(http.MethodPost, "pulls") + w.Count(http.MethodPost, "git/refs") + w.Count(http.MethodPost, "issues"); n != 0 {
		t.Errorf("run 2 created %d pull requests, branches or issues: %v", n, w.Writes())
	}
	for _, r := range w.GH.Requests() {
		if r.Method == http.MethodPut {
			t.Errorf("run 2 wrote a file: %s %s", r.Method, r.Path)
		}
	}
	if len(w.GH.Issues()) != 1 {
		t.Errorf("run 2: issues %+v", w.GH.Issues())
	}
	if !regexp.MustCompile(fmt.Sprintf(`- pull request #%d (updated|unchanged): %s`, pr.Number, regexp.QuoteMeta(file))).MatchString(r2.Summary) {
		t.Errorf("run 2 summary:\n%s", r2.Summary)
	}
}

// TestActionBadInput: every bad input and GitHub failure ends the run with
// one ::error annotation saying what is wrong, and changes nothing on
// GitHub; a failed GET is retried, a failed POST is not.
func TestActionBadInput(t *testing.T) {
	ns := newNamespace(t)
	createAgedSecret(t, ns, "api-token", 100*day, nil, map[string]string{"token": "api-token-value-0006"})
	createAgedSecret(t, ns, "db-password", 100*day, nil, map[string]string{"password": "db-password-value-0007"})
	kubeconfig := actionKubeconfig(t)
	good := func() map[string]string {
		return map[string]string{"kubeconfig": kubeconfig, "namespace": ns, "github_token": ghToken}
	}
	execKubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: prod
  context: {cluster: prod, user: gke}
current-context: prod
users:
- name: gke
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      interactiveMode: Never
`
	const policyPath = ".github/rotation-policy.yaml"
	tests := []struct {
		name   string
		inputs func(map[string]string)
		setup  func(w *workflow)
		code   int
		want   []string          // in the ::error message
		fields map[string]string // of the ::error annotation
		// failedWrites: write requests GitHub refused (the injected fault).
		failedWrites int
		check        func(t *testing.T, w *workflow, r actionrun.Result)
	}{
		{name: "missing token", inputs: func(in map[string]string) { in["github_token"] = "" }, code: 1,
			want: []string{"input github_token is empty"}},
		{name: "garbage kubeconfig", inputs: func(in map[string]string) { in["kubeconfig"] = "{{ secrets.KUBE_CONFIG }" }, code: 1,
			want: []string{"input kubeconfig is not a kubeconfig"}},
		{name: "exec credential plugin", inputs: func(in map[string]string) { in["kubeconfig"] = execKubeconfig }, code: 1,
			want: []string{"credential plugin", `"gke-gcloud-auth-plugin"`}},
		{name: "policy syntax error", inputs: func(in map[string]string) { in["policy"] = policyPath }, code: 1,
			setup: func(w *workflow) {
				writeFile(t, filepath.Join(w.Workspace, policyPath),
					"apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: 90d\n    warnBefor: 14d\n")
			},
			want: []string{policyPath, "warnBefor"}, fields: map[string]string{"file": policyPath, "line": "6"}},
		{name: "policy yaml error", inputs: func(in map[string]string) { in["policy"] = policyPath }, code: 1,
			setup: func(w *workflow) {
				writeFile(t, filepath.Join(w.Workspace, policyPath),
					"apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n\tmaxAge: 90d\n")
			},
			want: []string{policyPath, "yaml"}, fields: map[string]string{"file": policyPath, "line": "5"}},
		{name: "unknown mode", inputs: func(in map[string]string) { in["mode"] = "issues" }, code: 1,
			want: []string{`input mode "issues" is not known`}},
		{name: "token rejected", inputs: func(in map[string]string) { in["github_token"] = "ghp_revoked0000000000" }, code: 1,
			want: []string{"401 Bad credentials", "the token was rejected"}},
		{name: "403 creating an issue", setup: func(w *workflow) {
			w.GH.FailNext(http.MethodPost, "issues", http.StatusForbidden, "Resource not accessible by integration", 1)
		}, code: 1, want: []string{"creating issue", "403 Resource not accessible by integration", "issues: write"}, failedWrites: 1,
			check: func(t *testing.T, w *workflow, r actionrun.Result) {
				if n := w.Count(http.MethodPost, "issues"); n != 1 {
					t.Errorf("%d POSTs to issues, want 1", n)
				}
				if r.Outputs["overdue_count"] != "2" {
					t.Errorf("outputs %v: the check's results must be written even when GitHub fails", r.Outputs)
				}
			}},
		{name: "422 creating an issue", setup: func(w *workflow) {
			w.GH.FailNext(http.MethodPost, "issues", http.StatusUnprocessableEntity, "Validation Failed", 1)
		}, code: 1, want: []string{"creating issue", "422 Validation Failed"}, failedWrites: 1},
		{name: "500 creating an issue", setup: func(w *workflow) {
			w.GH.FailNext(http.MethodPost, "issues", http.StatusInternalServerError, "Server Error", 1)
		}, code: 1, want: []string{"500 Server Error", "not retried"}, failedWrites: 1,
			check: func(t *testing.T, w *workflow, r actionrun.Result) {
				if n := w.Count(http.MethodPost, "issues"); n != 1 {
					t.Errorf("%d POSTs to issues, want exactly 1 (a create is never retried)", n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			if tt.inputs != nil {
				tt.inputs(in)
			}
			w := newWorkflow(t, in)
			if tt.setup != nil {
				tt.setup(w)
			}
			r := w.run()
			errs := r.ErrorLines()
			if r.Code != tt.code || len(errs) != 1 {
				t.Fatalf("exit %d with %d ::error lines; want exit %d and one", r.Code, len(errs), tt.code)
			}
			fields, msg := actionrun.Annotation(errs[0])
			if fields["title"] != "kube-rotate" || strings.Contains(msg, "%0A") {
				t.Errorf("annotation %q: want title kube-rotate and a one-line message", errs[0])
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("::error message %q lacks %q", msg, want)
				}
			}
			for k, v := range tt.fields {
				if fields[k] != v {
					t.Errorf("annotation %s=%q, want %q (%s)", k, fields[k], v, errs[0])
				}
			}
			failed := 0
			for _, q := range w.GH.Requests() {
				if q.Method == http.MethodGet {
					continue
				}
				if q.Status < 400 {
					t.Errorf("GitHub changed: %s %s (%d)", q.Method, q.Path, q.Status)
				} else {
					failed++
				}
			}
			if failed != tt.failedWrites || len(w.GH.Issues()) > 0 {
				t.Errorf("%d refused write requests, want %d; issues %+v", failed, tt.failedWrites, w.GH.Issues())
			}
			if tt.check != nil {
				tt.check(t, w, r)
			}
		})
	}

	t.Run("500 listing issues is retried", func(t *testing.T) {
		w := newWorkflow(t, good())
		w.GH.FailNext(http.MethodGet, "issues", http.StatusInternalServerError, "Server Error", 1)
		r := w.run()
		if r.Code != 0 || len(r.ErrorLines()) != 0 {
			t.Fatalf("exit %d, errors %q; want the retried GET to succeed", r.Code, r.ErrorLines())
		}
		var statuses []int
		for _, q := range w.GH.Requests() {
			if q.Method == http.MethodGet && q.Path == "/repos/"+actionrun.Owner+"/"+actionrun.Repo+"/issues" {
				statuses = append(statuses, q.Status)
			}
		}
		if !slices.Equal(statuses, []int{500, 200}) {
			t.Errorf("GET issues answered %v, want 500 then 200", statuses)
		}
		if len(w.GH.Issues()) != 2 || w.Count(http.MethodPost, "issues") != 2 {
			t.Errorf("issues %+v, want the two overdue Secrets' opened once each", w.GH.Issues())
		}
	})
}

// TestActionDryRunAndReport: dry_run writes nothing to GitHub and says
// what it would do; mode report needs no token and fail_on exits 3.
func TestActionDryRunAndReport(t *testing.T) {
	cid := clusterName(t) + "/"
	ns := newNamespace(t)
	createAgedSecret(t, ns, "api-token", 100*day, nil, map[string]string{"token": "api-token-value-0008"})
	createAgedSecret(t, ns, "rotated", 0, nil, map[string]string{"token": "rotated-value-0009"})
	const file = "keys/jwks.json"
	fixture := readFixture(t, "diracx.json")
	w := newWorkflow(t, map[string]string{"kubeconfig": actionKubeconfig(t), "namespace": ns, "github_token": ghToken,
		"dry_run": "true", "mode": "pr", "jwks_files": file, "max_age": "30d"})
	writeFile(t, filepath.Join(w.Workspace, file), string(fixture))
	w.GH.SetFile("main", file, fixture)
	// An issue an earlier run opened for a Secret rotated since.
	stale := w.GH.AddIssue(githubtest.Issue{Title: "Rotate " + ns + "/rotated (secret overdue)", Labels: []string{"kube-rotate"},
		Body: "old\n\n<!-- kube-rotate:secret:" + cid + ns + "/rotated -->", User: githubtest.BotLogin})
	branches := w.GH.Branches()

	r := w.run()
	if r.Code != 0 {
		t.Fatalf("dry run: exit %d", r.Code)
	}
	if wr := w.Writes(); len(wr) != 0 {
		t.Errorf("dry run wrote to GitHub: %v", wr)
	}
	if is := w.GH.Issues(); len(is) != 1 || is[0].State != "open" || len(w.GH.Pulls()) != 0 || !slices.Equal(w.GH.Branches(), branches) {
		t.Errorf("dry run changed the repository: issues %+v, pulls %+v, branches %v", is, w.GH.Pulls(), w.GH.Branches())
	}
	for _, want := range []string{
		"- pull request on branch kube-rotate/" + file + " would open: " + file,
		"- issue would open: secret:" + cid + ns + "/api-token",
		fmt.Sprintf("- issue #%d would close: secret:%s%s/rotated", stale, cid, ns),
	} {
		if !strings.Contains(r.Summary, want) {
			t.Errorf("dry-run summary lacks %q:\n%s", want, r.Summary)
		}
	}
	if r.Outputs["overdue_count"] != "2" {
		t.Errorf("dry run outputs %v", r.Outputs)
	}

	// Mode report: no token needed, nothing asked of GitHub; fail_on
	// overdue fails the step with exit 3.
	rw := newWorkflow(t, map[string]string{"kubeconfig": actionKubeconfig(t), "namespace": ns, "mode": "report", "fail_on": "overdue"})
	rr := rw.run()
	errs := rr.ErrorLines()
	if rr.Code != 3 || len(errs) != 1 || !strings.Contains(errs[0], "(fail_on: overdue): 1 overdue, 0 expired") {
		t.Errorf("mode report, fail_on overdue: exit %d, errors %q; want exit 3 and one ::error", rr.Code, errs)
	}
	if n := len(rw.GH.Requests()); n != 0 {
		t.Errorf("mode report sent %d requests to GitHub", n)
	}
	if rep := readReport(t, rw, rr); rep.Summary.Overdue != 1 || !strings.Contains(rr.Summary, "| "+ns+"/api-token | secret |") {
		t.Errorf("mode report: summary %+v, step summary:\n%s", rep.Summary, rr.Summary)
	}
	// The kubeconfig as base64, wrapped as base64(1) prints it (a
	// KUBE_CONFIG_DATA secret).
	enc := base64.StdEncoding.EncodeToString([]byte(actionKubeconfig(t)))
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc + "\n")
	rw.inputs["kubeconfig"] = wrapped.String()
	rw.inputs["fail_on"] = "warn"
	rw.inputs["max_age"] = "365d"
	rr = rw.run()
	if rr.Code != 0 || len(rr.ErrorLines()) != 0 {
		t.Errorf("base64 kubeconfig, nothing past warn at max_age 365d: exit %d, errors %q", rr.Code, rr.ErrorLines())
	}
	if rep := readReport(t, rw, rr); rep.Summary != (report.Summary{Total: 2, OK: 2}) {
		t.Errorf("base64 kubeconfig: report summary %+v, want the namespace's two Secrets ok", rep.Summary)
	}
}
