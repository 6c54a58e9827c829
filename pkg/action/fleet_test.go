package action

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
)

// jobReport is the report_json one matrix job writes for its cluster.
func jobReport(t *testing.T, cluster string, states ...v1alpha1.CredentialState) []byte {
	t.Helper()
	r := report.Report{TypeMeta: metav1.TypeMeta{APIVersion: "rotate.kube-rotate.io/v1alpha1", Kind: report.Kind},
		Generated: metav1.NewTime(time.Date(2026, 12, 1, 6, 17, 0, 0, time.UTC)), Policy: "rotation-policy.yaml"}
	c := v1alpha1.ReportCluster{Name: cluster, Context: cluster, Server: "https://" + cluster + ".example"}
	if len(states) == 0 {
		c.Error = "listing secret metadata: connection refused"
		r.Errors = []string{"cluster " + cluster + ": " + c.Error}
	}
	for i, s := range states {
		name := []string{"db", "api", "cache"}[i]
		r.Items = append(r.Items, v1alpha1.ReportItem{ID: "secret:" + cluster + "/app/" + name, Kind: "secret", Credential: "app/" + name,
			Namespace: "app", Name: name, Cluster: cluster, State: s, MaxAge: "90d", Rule: "default"})
	}
	r.Clusters = []v1alpha1.ReportCluster{c}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSummaryModeMergesTheJobsReports(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string][]byte
		reports  string
		code     int
		clusters string // output clusters
		overdue  string
		summary  []string // in order
		errs     []string
	}{
		{name: "two jobs, artifacts downloaded into one directory",
			files: map[string][]byte{
				"reports/rotation-report-prod/report.json":    jobReport(t, "prod", v1alpha1.StateOverdue, v1alpha1.StateOK),
				"reports/rotation-report-staging/report.json": jobReport(t, "staging", v1alpha1.StateOK, v1alpha1.StateWarn, v1alpha1.StateOK),
			},
			reports:  "reports",
			clusters: `{"prod":{"total":2,"ok":1,"warn":0,"overdue":1,"expired":0,"unknown":0,"error":""},"staging":{"total":3,"ok":2,"warn":1,"overdue":0,"expired":0,"unknown":0,"error":""}}`,
			overdue:  "1",
			summary: []string{"5 credentials checked against rotation-policy.yaml: **1 overdue**", "2 clusters:", "| prod | 1 | 0 | 0 | 0 | 1 | yes |", "| staging | 0 | 0 | 1 | 0 | 2 | yes |",
				"### Cluster prod", "| app/db | secret |", "### Cluster staging", "| app/api | secret |"}},
		{name: "a job whose cluster could not be read", code: ExitError,
			files: map[string][]byte{
				"a/report.json": jobReport(t, "prod", v1alpha1.StateOK),
				"b/report.json": jobReport(t, "eu"),
			},
			reports:  "a/report.json, b/*.json",
			clusters: `{"eu":{"total":0,"ok":0,"warn":0,"overdue":0,"expired":0,"unknown":0,"error":"listing secret metadata: connection refused"},"prod":{"total":1,"ok":1,"warn":0,"overdue":0,"expired":0,"unknown":0,"error":""}}`,
			overdue:  "0",
			summary:  []string{"| eu | 0 | 0 | 0 | 0 | 0 | **no**: listing secret metadata: connection refused |", "### Cluster eu", "**Could not be read**"},
			errs:     []string{"cluster eu: listing secret metadata: connection refused"}},
		{name: "two jobs named their clusters the same", code: ExitError,
			files: map[string][]byte{
				"r/1.json": jobReport(t, "kubernetes", v1alpha1.StateOK),
				"r/2.json": jobReport(t, "kubernetes", v1alpha1.StateOK),
			},
			reports: "r",
			errs:    []string{`input reports: cluster "kubernetes" is in reports 1 and 2: give each job its own cluster name`}},
		{name: "no artifact was downloaded", code: ExitError, reports: "reports",
			errs: []string{"input reports: reports names no report file: download the jobs' report artifacts there first (actions/download-artifact)"}},
		{name: "not a report", code: ExitError, files: map[string][]byte{"r/x.json": []byte(`{"kind":"Other"}`)}, reports: "r",
			errs: []string{"input reports: r/x.json is not a kube-rotate report (kind RotationReport): give the report_json files of the jobs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t)
			for p, b := range tt.files {
				r.file(p, b)
			}
			r.env["INPUT_MODE"], r.env["INPUT_REPORTS"], r.env["INPUT_GITHUB_TOKEN"] = "summary", tt.reports, ""
			code, log := r.run()
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, log)
			}
			var errs []string
			for _, l := range strings.Split(log, "\n") {
				if rest, ok := strings.CutPrefix(l, "::error "); ok {
					_, msg, _ := strings.Cut(rest, "::")
					errs = append(errs, msg)
				}
			}
			if strings.Join(errs, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("errors %q, want %q", errs, tt.errs)
			}
			if len(r.gh.Requests()) != 0 {
				t.Errorf("mode summary asked GitHub: %v", r.gh.Requests())
			}
			if tt.clusters == "" {
				return
			}
			out := r.read("GITHUB_OUTPUT")
			if !strings.Contains(out, tt.clusters) || !strings.Contains(out, "overdue_count<<") {
				t.Errorf("outputs lack clusters %s:\n%s", tt.clusters, out)
			}
			sum, at := r.read("GITHUB_STEP_SUMMARY"), 0
			for _, want := range tt.summary {
				i := strings.Index(sum[at:], want)
				if i < 0 {
					t.Errorf("summary lacks %q after offset %d:\n%s", want, at, sum)
					break
				}
				at += i + len(want)
			}
		})
	}
}
