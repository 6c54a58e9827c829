package action

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// Modes of the Action.
const (
	ModeIssue  = "issue"
	ModePR     = "pr"
	ModeReport = "report"
	// ModeSummary merges the reports of a matrix's jobs (input reports)
	// into one fleet summary; it reads no cluster and writes nothing to
	// GitHub.
	ModeSummary = "summary"
)

// DefaultLabel is the label every issue and pull request of the Action
// carries; issues are found again by it.
const DefaultLabel = "kube-rotate"

// Inputs are the Action's inputs (action.yml), read from INPUT_*.
type Inputs struct {
	Kubeconfig string
	// Cluster is the cluster's identity (input cluster), for one context.
	Cluster string
	// Contexts are the kubeconfig contexts to check (input contexts);
	// ContextsAll is "all". Neither: the current context.
	Contexts    []string
	ContextsAll bool
	Policy      string
	KopsState   string
	KopsCluster string
	JWKSFiles   []string
	Mode        string
	Labels      []string
	Token       string
	DryRun      bool
	Namespace   string
	Selector    string
	MaxAge      time.Duration
	WarnBefore  time.Duration
	Overlap     time.Duration
	FailOn      string

	// Reports are the report files (or directories or globs of them) of
	// mode summary.
	Reports []string

	// Workspace is GITHUB_WORKSPACE (the checked-out repository).
	Workspace string
	// Owner and Repo come from GITHUB_REPOSITORY.
	Owner, Repo string
	// APIURL is GITHUB_API_URL.
	APIURL string
	// RunURL links to this workflow run, for issue bodies.
	RunURL string

	policy *policy.Policy
}

// inputError is bad input; Line and File, when set, place the annotation.
type inputError struct {
	msg        string
	file, line string
}

func (e *inputError) Error() string { return e.msg }

func bad(format string, a ...any) error { return &inputError{msg: fmt.Sprintf(format, a...)} }

// readInputs reads and checks every input before anything is read from a
// cluster or written to GitHub.
func readInputs(gha *githubactions.Action, getenv func(string) string) (*Inputs, error) {
	in := &Inputs{
		Kubeconfig:  gha.GetInput("kubeconfig"),
		Cluster:     strings.TrimSpace(gha.GetInput("cluster")),
		Policy:      gha.GetInput("policy"),
		KopsState:   gha.GetInput("kops_state_store"),
		KopsCluster: gha.GetInput("kops_cluster"),
		Mode:        gha.GetInput("mode"),
		Token:       gha.GetInput("github_token"),
		Namespace:   gha.GetInput("namespace"),
		Selector:    gha.GetInput("selector"),
		FailOn:      gha.GetInput("fail_on"),
		Workspace:   getenv("GITHUB_WORKSPACE"),
		APIURL:      getenv("GITHUB_API_URL"),
	}
	if in.Mode == "" {
		in.Mode = ModeIssue
	}
	switch in.Mode {
	case ModeIssue, ModePR, ModeReport, ModeSummary:
	default:
		return nil, bad("input mode %q is not known: use issue, pr, report or summary", in.Mode)
	}
	switch in.FailOn {
	case "", "overdue", "warn":
	default:
		return nil, bad("input fail_on %q is not known: use overdue, warn or leave it empty", in.FailOn)
	}
	var err error
	if in.DryRun, err = boolInput(gha, "dry_run"); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"max_age", &in.MaxAge, 90 * 24 * time.Hour}, {"warn_before", &in.WarnBefore, 14 * 24 * time.Hour}, {"overlap", &in.Overlap, 0}} {
		*d.dst = d.def
		if v := gha.GetInput(d.name); v != "" {
			if *d.dst, err = duration.Parse(v); err != nil {
				return nil, bad("input %s: %v", d.name, err)
			}
		}
	}
	in.Labels = splitList(gha.GetInput("labels"))
	if len(in.Labels) == 0 {
		in.Labels = []string{DefaultLabel}
	}
	if in.Workspace == "" {
		in.Workspace = "."
	}
	in.Reports = splitList(gha.GetInput("reports"))
	if in.Mode == ModeSummary {
		if len(in.Reports) == 0 {
			return nil, bad("mode summary merges the report_json files of other jobs: list them (files, directories or globs) in input reports")
		}
		if in.Kubeconfig != "" || in.KopsState != "" || gha.GetInput("jwks_files") != "" {
			return nil, bad("mode summary reads only input reports: check clusters, kOps and key-set files in the jobs whose reports it merges")
		}
		return in, nil
	}
	if len(in.Reports) > 0 {
		return nil, bad("input reports goes with mode summary")
	}
	if in.Mode != ModeReport {
		if in.Token == "" {
			return nil, bad("input github_token is empty: mode %s opens issues or pull requests; keep the default ${{ github.token }} or pass a token, or use mode: report", in.Mode)
		}
		repo := getenv("GITHUB_REPOSITORY")
		owner, name, ok := strings.Cut(repo, "/")
		if !ok || owner == "" || name == "" {
			return nil, bad("GITHUB_REPOSITORY %q is not owner/repo: run the Action from a GitHub workflow", repo)
		}
		in.Owner, in.Repo = owner, name
		if s, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_RUN_ID"); s != "" && id != "" {
			in.RunURL = s + "/" + repo + "/actions/runs/" + id
		}
	}
	contexts := splitList(gha.GetInput("contexts"))
	if len(contexts) == 1 && contexts[0] == "all" {
		in.ContextsAll = true
	} else {
		in.Contexts = contexts
	}
	if len(contexts) > 0 && in.Kubeconfig == "" {
		return nil, bad("input contexts names kubeconfig contexts: give the kubeconfig input too")
	}
	if in.Cluster != "" {
		if err := kube.ValidateClusterName(in.Cluster); err != nil {
			return nil, bad("input cluster %q %v: give another name", in.Cluster, err)
		}
		if in.ContextsAll || len(in.Contexts) > 1 {
			return nil, bad("input cluster names one cluster, but input contexts selects several: leave cluster empty (each context's cluster name is used) or run one step per cluster")
		}
		if in.Kubeconfig == "" {
			return nil, bad("input cluster names the cluster of the kubeconfig input: give the kubeconfig too")
		}
	}
	if (in.KopsState == "") != (in.KopsCluster == "") {
		return nil, bad("inputs kops_state_store and kops_cluster go together: give both to check a kOps cluster's keysets, or neither")
	}
	for _, f := range splitList(gha.GetInput("jwks_files")) {
		p := in.path(f)
		if _, err := os.Stat(p); err != nil {
			return nil, &inputError{msg: fmt.Sprintf("input jwks_files: %s cannot be read (%v): give paths relative to the repository root", f, errors.Unwrap(err)), file: f}
		}
		in.JWKSFiles = append(in.JWKSFiles, f)
	}
	if in.Mode == ModePR && len(in.JWKSFiles) == 0 {
		return nil, bad("mode pr rotates key-set files kept in the repository: list them in input jwks_files (credentials in the cluster get issues in mode issue)")
	}
	if in.Kubeconfig == "" && in.KopsState == "" && len(in.JWKSFiles) == 0 {
		return nil, bad("nothing to check: give input kubeconfig, kops_state_store and kops_cluster, or jwks_files")
	}
	if err := in.readPolicy(); err != nil {
		return nil, err
	}
	return in, nil
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// readPolicy parses the policy file, or builds one from max_age,
// warn_before and overlap.
func (in *Inputs) readPolicy() error {
	if in.Policy == "" {
		p, err := policy.Default(in.MaxAge, in.WarnBefore, in.Overlap)
		if err != nil {
			return bad("inputs max_age/warn_before: %v", err)
		}
		in.policy = p
		return nil
	}
	b, err := os.ReadFile(in.path(in.Policy))
	if err != nil {
		return &inputError{msg: fmt.Sprintf("input policy: %s cannot be read (%v): give a path relative to the repository root", in.Policy, errors.Unwrap(err)), file: in.Policy}
	}
	p, err := policy.Parse(b)
	if err != nil {
		e := &inputError{msg: in.Policy + ": " + err.Error(), file: in.Policy}
		if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
			e.line = m[1]
		}
		return e
	}
	in.policy = p
	return nil
}

// path resolves a workspace-relative path.
func (in *Inputs) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(in.Workspace, p)
}

// boolInput reads a YAML 1.2 core boolean, as GitHub's toolkit does.
func boolInput(gha *githubactions.Action, name string) (bool, error) {
	v := gha.GetInput(name)
	switch v {
	case "", "false", "False", "FALSE":
		return false, nil
	case "true", "True", "TRUE":
		return true, nil
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b, nil
	}
	return false, bad("input %s %q is not a boolean: use true or false", name, v)
}

// splitList splits an input on newlines and commas.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
