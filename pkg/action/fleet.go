package action

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
)

// fleetSummary is mode summary: the reports of a matrix's jobs (one job
// per cluster, each keeping its own issues) merged into one step summary,
// one report and the outputs, as a final job of the workflow writes them.
func fleetSummary(gha *githubactions.Action, env Env, in *Inputs) (int, error) {
	files, err := reportFiles(in)
	if err != nil {
		return ExitError, err
	}
	var reports []*report.Report
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return ExitError, bad("input reports: %s cannot be read: %v", rel(in, f), err)
		}
		var r report.Report
		if err := json.Unmarshal(b, &r); err != nil || r.Kind != report.Kind {
			return ExitError, &inputError{msg: fmt.Sprintf("input reports: %s is not a kube-rotate report (kind %s): give the report_json files of the jobs", rel(in, f), report.Kind), file: rel(in, f)}
		}
		reports = append(reports, &r)
	}
	r, err := report.Merge(reports)
	if err != nil {
		return ExitError, bad("input reports: %s", err)
	}
	s := r.Summary
	gha.Infof("%d reports, %d clusters, %d credentials: %d ok, %d warn, %d overdue, %d expired, %d unknown", len(reports), len(r.Clusters), s.Total, s.OK, s.Warn, s.Overdue, s.Expired, s.Unknown)
	for _, e := range r.Errors {
		gha.WithFieldsMap(map[string]string{"title": "kube-rotate"}).Errorf("%s", e)
	}
	if err := writeResults(gha, env.Getenv, in, r, nil); err != nil {
		return ExitError, err
	}
	return exitCode(gha, in, r), nil
}

// reportFiles resolves input reports: files, directories (every *.json in
// them, at any depth) and globs, relative to the workspace; each entry
// must name at least one file. The merged report this mode writes is
// never read back.
func reportFiles(in *Inputs) ([]string, error) {
	own, _ := filepath.Abs(in.path(ReportPath))
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if abs, _ := filepath.Abs(p); abs != own && !seen[abs] {
			seen[abs] = true
			out = append(out, p)
		}
	}
	for _, entry := range in.Reports {
		p := in.path(entry)
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, bad("input reports: %q is not a valid pattern: %v", entry, err)
		}
		n := len(out)
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				add(m)
				continue
			}
			var found []string
			_ = filepath.WalkDir(m, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
					found = append(found, path)
				}
				return nil
			})
			sort.Strings(found)
			for _, f := range found {
				add(f)
			}
		}
		if len(out) == n {
			return nil, bad("input reports: %s names no report file: download the jobs' report artifacts there first (actions/download-artifact)", entry)
		}
	}
	return out, nil
}

// rel shows a path relative to the workspace.
func rel(in *Inputs, p string) string {
	if r, err := filepath.Rel(in.Workspace, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
