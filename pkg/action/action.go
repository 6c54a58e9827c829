// Package action is the core of the kube-rotate GitHub Action: it reads the
// inputs, checks every credential's age against the policy (pkg/cluster/report),
// writes the outputs and step summary, and keeps one GitHub issue per
// overdue credential, or one pull request per key-set file kept in the
// repository. action/main.go only calls Main.
package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sethvargo/go-githubactions"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/version"
)

// Exit codes of Main.
const (
	ExitOK     = 0
	ExitError  = 1
	ExitFailOn = 3
)

// FleetConcurrency is how many clusters the Action reads at once.
const FleetConcurrency = 4

// ReportPath is where the JSON report is written, relative to the
// workspace (later steps of the job see it there too).
const ReportPath = ".kube-rotate/report.json"

// Env is what the Action gets from the runner.
type Env struct {
	Getenv func(string) string
	Out    io.Writer
	// HTTPClient for the GitHub API; nil for the default.
	HTTPClient *http.Client
}

// Main runs the Action and returns its exit code. Every error becomes one
// ::error annotation; nothing is opened on GitHub unless every input is
// good and every source could be read.
func Main(ctx context.Context, env Env) int {
	gha := githubactions.New(githubactions.WithGetenv(env.Getenv), githubactions.WithWriter(env.Out))
	v := version.Get()
	gha.Infof("kube-rotate action %s", v.Version)
	code, err := run(ctx, gha, env)
	if err != nil {
		fail(gha, err)
		return ExitError
	}
	return code
}

// fail writes one error annotation, placed on the input file when known.
func fail(gha *githubactions.Action, err error) {
	var ie *inputError
	if errors.As(err, &ie) && ie.file != "" {
		fields := map[string]string{"title": "kube-rotate", "file": ie.file}
		if ie.line != "" {
			fields["line"] = ie.line
		}
		gha.WithFieldsMap(fields).Errorf("%s", firstLine(err.Error()))
		return
	}
	gha.WithFieldsMap(map[string]string{"title": "kube-rotate"}).Errorf("%s", firstLine(err.Error()))
}

func run(ctx context.Context, gha *githubactions.Action, env Env) (int, error) {
	in, err := readInputs(gha, env.Getenv)
	if err != nil {
		return ExitError, err
	}
	if in.Mode == ModeSummary {
		return fleetSummary(gha, env, in)
	}
	var gh *github.Client
	if in.Mode != ModeReport {
		if gh, err = github.New(in.APIURL, in.Token, in.Owner, in.Repo, env.HTTPClient); err != nil {
			return ExitError, err
		}
	}
	o := report.Options{Policy: in.policy, PolicyName: in.Policy, Namespace: in.Namespace, Selector: in.Selector,
		KopsState: in.KopsState, KopsCluster: in.KopsCluster}
	if o.PolicyName == "" {
		o.PolicyName = "inputs max_age/warn_before/overlap"
	}
	for _, f := range in.JWKSFiles {
		o.JWKSFiles = append(o.JWKSFiles, in.path(f))
	}
	var members []report.Member
	if in.Kubeconfig != "" {
		f, err := loadKubeconfig(gha, in)
		if err != nil {
			return ExitError, err
		}
		members = f.members
	}
	r, err := report.BuildFleet(ctx, o, members, FleetConcurrency)
	if err != nil {
		return ExitError, fmt.Errorf("checking credentials: %w", err)
	}
	for _, c := range r.Clusters {
		if c.Context != "" {
			gha.Infof("cluster %s: context %s, server %s", c.Name, c.Context, c.Server)
		}
	}
	// A cluster that cannot be read is one error line; the others are
	// checked and their issues kept, and the step fails at the end.
	for _, e := range r.Errors {
		gha.WithFieldsMap(map[string]string{"title": "kube-rotate"}).Errorf("%s", e)
	}
	relativize(r, in)
	s := r.Summary
	gha.Infof("%d credentials: %d ok, %d warn, %d overdue, %d expired, %d unknown", s.Total, s.OK, s.Warn, s.Overdue, s.Expired, s.Unknown)
	for _, it := range r.Due() {
		gha.WithFieldsMap(map[string]string{"title": "Credential " + string(it.State)}).Warningf("%s%s: %s", it.Credential, onCluster(it), it.Reason)
	}

	var actions []string
	switch in.Mode {
	case ModeIssue:
		actions, err = syncIssues(ctx, gh, in, r, r.Due(), nil)
	case ModePR:
		actions, err = proposeAndSync(ctx, gh, in, r)
	}
	// Outputs and summary are written even when GitHub failed: the check
	// itself stands.
	if werr := writeResults(gha, env.Getenv, in, r, actions); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return ExitError, err
	}
	return exitCode(gha, in, r), nil
}

// exitCode is the step's result once the results are written: ExitError
// when a cluster could not be read, ExitFailOn when fail_on is met (with
// one annotation saying so), else ExitOK.
func exitCode(gha *githubactions.Action, in *Inputs, r *report.Report) int {
	if len(r.Errors) > 0 {
		return ExitError
	}
	if s := r.Summary; in.FailOn != "" && r.Failing(in.FailOn) {
		gha.WithFieldsMap(map[string]string{"title": "kube-rotate"}).Errorf("credentials past the policy (fail_on: %s): %d overdue, %d expired, %d warn, %d unknown",
			in.FailOn, s.Overdue, s.Expired, s.Warn, s.Unknown)
		return ExitFailOn
	}
	return ExitOK
}

// Counts are one cluster's figures in output clusters: its summary's
// fields, and why it could not be read.
type Counts struct {
	report.Summary
	Error string `json:"error"`
}

// ClusterCounts are output clusters: each checked cluster's counts, keyed
// by its identity; credentials of no cluster (key-set files) under "".
func ClusterCounts(r *report.Report) map[string]Counts {
	out := map[string]Counts{}
	for _, c := range r.Clusters {
		out[c.Name] = Counts{Summary: c.Summary, Error: c.Error}
	}
	rest := Counts{Summary: report.Summarize(r.Items, func(it report.Item) bool { _, ok := out[it.Cluster]; return !ok })}
	if rest.Total > 0 {
		out[""] = rest
	}
	return out
}

// relativize shows key-set files by their repository path.
func relativize(r *report.Report, in *Inputs) {
	for i := range r.Items {
		it := &r.Items[i]
		if it.File == "" {
			continue
		}
		for _, f := range in.JWKSFiles {
			if in.path(f) == it.File {
				abs := it.File
				it.File = f
				it.Credential = replacePrefix(it.Credential, abs, f)
				it.ID = replacePrefix(it.ID, "jwk-file:"+abs, "jwk-file:"+f)
				for j, c := range it.Commands {
					it.Commands[j] = replaceAll(c, abs, f)
				}
			}
		}
	}
}

// writeResults writes the JSON report, the outputs and the step summary.
// Outputs and the summary are skipped with a warning when the runner gave
// no file for them (go-githubactions would panic).
func writeResults(gha *githubactions.Action, getenv func(string) string, in *Inputs, r *report.Report, actions []string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(in.Workspace, ReportPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if getenv("GITHUB_OUTPUT") != "" {
		gha.SetOutput("overdue_count", strconv.Itoa(r.Summary.Overdue+r.Summary.Expired))
		gha.SetOutput("warn_count", strconv.Itoa(r.Summary.Warn+r.Summary.Unknown))
		gha.SetOutput("report_json", ReportPath)
		counts, err := json.Marshal(ClusterCounts(r))
		if err != nil {
			return err
		}
		gha.SetOutput("clusters", string(counts))
	} else {
		gha.Warningf("GITHUB_OUTPUT is not set: outputs overdue_count, warn_count, report_json and clusters are not written")
	}
	if getenv("GITHUB_STEP_SUMMARY") != "" {
		gha.AddStepSummary(Summary(r, in.Mode, actions))
	}
	return nil
}
