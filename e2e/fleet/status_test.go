//go:build e2e

package fleet

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// Exit codes of `kubectl rotate status`.
const (
	exitFailOn      = 3 // --fail-on is met
	exitUnreachable = 4 // a cluster could not be read (takes precedence)
)

// tableRow is one row of a printed table, by column header.
type tableRow map[string]string

// parseTable splits kubectl-style table output into rows, cutting each line
// at the columns of the header.
func parseTable(t *testing.T, out string) (header []string, rows []tableRow) {
	t.Helper()
	ls := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(ls) == 0 || ls[0] == "" {
		t.Fatalf("no table in output %q", out)
	}
	head := []rune(ls[0])
	var starts []int
	for i, r := range head {
		if r != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	header = strings.Fields(ls[0])
	if len(header) != len(starts) {
		t.Fatalf("header %q: column headers must not contain spaces", ls[0])
	}
	for _, l := range ls[1:] {
		rs := []rune(l)
		row := tableRow{}
		for i, name := range header {
			from, to := min(starts[i], len(rs)), len(rs)
			if i+1 < len(starts) {
				to = min(starts[i+1], len(rs))
			}
			row[name] = strings.TrimSpace(string(rs[from:to]))
		}
		rows = append(rows, row)
	}
	return header, rows
}

// clusterStates is "CLUSTER CREDENTIAL STATE" of every row, sorted.
func clusterStates(rows []tableRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["CLUSTER"]+" "+r["CREDENTIAL"]+" "+r["STATE"])
	}
	sort.Strings(out)
	return out
}

// parseReport parses `status -o json`.
func parseReport(t *testing.T, r cli) *v1alpha1.RotationReport {
	t.Helper()
	var rep v1alpha1.RotationReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status -o json does not parse: %v\n%s", err, r.stdout)
	}
	return &rep
}

// errorLines are the stderr lines starting with "error:".
func errorLines(stderr string) []string {
	var out []string
	for _, l := range lines(stderr) {
		if strings.HasPrefix(l, "error:") {
			out = append(out, l)
		}
	}
	return out
}

// reportClusters returns the report's clusters by name.
func reportClusters(rep *v1alpha1.RotationReport) map[string]v1alpha1.ReportCluster {
	out := map[string]v1alpha1.ReportCluster{}
	for _, c := range rep.Clusters {
		out[c.Name] = c
	}
	return out
}

// itemClusters is "CLUSTER ID" of every item, sorted.
func itemClusters(rep *v1alpha1.RotationReport) []string {
	var out []string
	for _, it := range rep.Items {
		out = append(out, it.Cluster+" "+it.ID)
	}
	sort.Strings(out)
	return out
}

// TestStatusFleet: `kubectl rotate status` over three clusters with
// --all-contexts and --context a,b: one table with a CLUSTER column,
// --fail-on over the whole fleet; then with qa stopped: qa reported in one
// stderr line (which cluster, which context, why), the others listed,
// exit 4 whatever --fail-on says, and in -o json qa in clusters[] with its
// error.
func TestStatusFleet(t *testing.T) {
	reset(t, prod, staging, qa)
	prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0101"})
	staging.secret(t, "db", 0, map[string]string{"password": "staging-db-password-0102"})
	qa.secret(t, "db", 0, map[string]string{"password": "qa-db-password-0103"})
	kc := writeKubeconfig(t, kubeconfig(t, prod.as(), staging.as(), qa.as()))
	vals := values(t, prod, staging, qa)

	type want struct {
		code int
		rows []string // CLUSTER CREDENTIAL STATE
	}
	check := func(t *testing.T, args []string, w want, down string) {
		t.Helper()
		r := rotate(t, kc, append([]string{"status", "-A"}, args...)...)
		noValues(t, "status output", r.stdout+r.stderr, vals)
		if r.code != w.code {
			t.Errorf("exit %d, want %d", r.code, w.code)
		}
		errs := errorLines(r.stderr)
		if down == "" {
			if len(errs) != 0 {
				t.Errorf("error lines %q, want none", errs)
			}
		} else {
			prefix := "error: cluster " + down + " (context " + down + "-ctx): "
			if len(errs) != 1 || !strings.HasPrefix(errs[0], prefix) || len(strings.TrimPrefix(errs[0], prefix)) < 10 || !strings.Contains(errs[0], "refused") {
				t.Errorf("error lines %q; want one %q line saying why (connection refused)", errs, prefix+"…")
			}
			if n := strings.Count(r.stderr, "cluster "+down); n != 1 {
				t.Errorf("stderr names cluster %s %d times, want once:\n%s", down, n, r.stderr)
			}
		}
		header, rows := parseTable(t, r.stdout)
		if len(header) == 0 || header[0] != "CLUSTER" {
			t.Errorf("table header %q: want CLUSTER first", header)
		}
		if got := clusterStates(rows); !slices.Equal(got, w.rows) {
			t.Errorf("rows %q, want %q", got, w.rows)
		}
	}
	all := []string{"prod app/db overdue", "qa app/db ok", "staging app/db ok"}
	up := []struct {
		name string
		args []string
		want want
	}{
		{"all contexts", []string{"--all-contexts"}, want{0, all}},
		{"all contexts, fail-on overdue: prod's app/db", []string{"--all-contexts", "--fail-on", "overdue"}, want{exitFailOn, all}},
		{"a list without prod, fail-on overdue", []string{"--context", "staging-ctx,qa-ctx", "--fail-on", "overdue"}, want{0, []string{"qa app/db ok", "staging app/db ok"}}},
		{"a list with prod, one at a time", []string{"--context", "qa-ctx,prod-ctx", "--concurrency", "1", "--fail-on", "overdue"}, want{exitFailOn, []string{"prod app/db overdue", "qa app/db ok"}}},
	}
	for _, tt := range up {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.args, tt.want, "") })
	}
	t.Run("all contexts -o json", func(t *testing.T) {
		r := rotate(t, kc, "status", "-A", "--all-contexts", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		rep := parseReport(t, r)
		if got, want := itemClusters(rep), []string{"prod secret:prod/app/db", "qa secret:qa/app/db", "staging secret:staging/app/db"}; !slices.Equal(got, want) {
			t.Errorf("items (cluster id) %q, want %q", got, want)
		}
		cs := reportClusters(rep)
		for _, m := range []*member{prod, staging, qa} {
			c := cs[m.name]
			if c.Context != m.ctx() || c.Server == "" || c.Error != "" || c.Summary.Total != 1 {
				t.Errorf("clusters[%s] = %+v; want context %s, its server, one item, no error", m.name, c, m.ctx())
			}
		}
		// A command copied from a fleet report must act on the cluster
		// of its row, not on the current context.
		for _, it := range rep.Items {
			for _, c := range it.Commands {
				if !strings.Contains(c, "--context "+it.Cluster+"-ctx") {
					t.Errorf("item %s: command %q does not name the context of cluster %s", it.ID, c, it.Cluster)
				}
			}
		}
		if len(rep.Clusters) != 3 || rep.Summary.Total != 3 || rep.Summary.Overdue != 1 || len(rep.Errors) != 0 {
			t.Errorf("clusters %+v, summary %+v, errors %q", rep.Clusters, rep.Summary, rep.Errors)
		}
	})

	// qa stops.
	if err := qa.c.Down(); err != nil {
		t.Fatalf("stopping qa: %v", err)
	}
	readable := []string{"prod app/db overdue", "staging app/db ok"}
	downCases := []struct {
		name string
		args []string
		want want
		down string
	}{
		{"all contexts", []string{"--all-contexts"}, want{exitUnreachable, readable}, "qa"},
		{"all contexts, fail-on overdue met: unreachable wins", []string{"--all-contexts", "--fail-on", "overdue"}, want{exitUnreachable, readable}, "qa"},
		{"a list with qa, fail-on overdue not met", []string{"--context", "staging-ctx,qa-ctx", "--fail-on", "overdue"}, want{exitUnreachable, []string{"staging app/db ok"}}, "qa"},
		{"a list without qa, fail-on overdue", []string{"--context", "prod-ctx,staging-ctx", "--fail-on", "overdue"}, want{exitFailOn, readable}, ""},
	}
	for _, tt := range downCases {
		t.Run("qa stopped: "+tt.name, func(t *testing.T) { check(t, tt.args, tt.want, tt.down) })
	}
	t.Run("qa stopped: all contexts -o json", func(t *testing.T) {
		r := rotate(t, kc, "status", "-A", "--all-contexts", "-o", "json")
		if r.code != exitUnreachable {
			t.Errorf("exit %d, want %d", r.code, exitUnreachable)
		}
		if errs := errorLines(r.stderr); len(errs) != 1 || !strings.HasPrefix(errs[0], "error: cluster qa (context qa-ctx): ") {
			t.Errorf("stderr error lines %q, want one for qa", errs)
		}
		rep := parseReport(t, r)
		if got, want := itemClusters(rep), []string{"prod secret:prod/app/db", "staging secret:staging/app/db"}; !slices.Equal(got, want) {
			t.Errorf("items (cluster id) %q, want %q", got, want)
		}
		cs := reportClusters(rep)
		if c := cs["qa"]; c.Error == "" || c.Context != "qa-ctx" || c.Summary.Total != 0 || strings.Contains(c.Error, "\n") {
			t.Errorf("clusters[qa] = %+v; want its context and a one-line error", c)
		}
		if c := cs["prod"]; c.Error != "" || c.Summary.Overdue != 1 {
			t.Errorf("clusters[prod] = %+v; want it read, one overdue", c)
		}
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "qa") || len(rep.Clusters) != 3 {
			t.Errorf("errors %q, clusters %+v; want one error naming qa and all three clusters", rep.Errors, rep.Clusters)
		}
	})
}

// TestStatusClusterIdentity: a cluster is its kubeconfig cluster entry, not
// its server. Two entries for one server (a tunnel, a proxy in front of
// several clusters) are two clusters; two contexts of one entry (two users,
// say) are one cluster, scanned once, the other context in alsoContexts.
// --cluster-name names a single cluster.
func TestStatusClusterIdentity(t *testing.T) {
	reset(t, prod)
	prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0201"})
	kc := writeKubeconfig(t, kubeconfig(t,
		prod.as(),
		kctx{name: "prod-readonly", entry: "prod", from: prod},
		kctx{name: "prod-tunnel-ctx", entry: "prod-tunnel", from: prod},
	))
	status := func(t *testing.T, args ...string) *v1alpha1.RotationReport {
		t.Helper()
		r := rotate(t, kc, append([]string{"status", "-A", "-o", "json"}, args...)...)
		if r.code != exitFailOn {
			t.Fatalf("exit %d, want %d (app/db is overdue)", r.code, exitFailOn)
		}
		return parseReport(t, r)
	}
	contextsOf := func(c v1alpha1.ReportCluster) []string {
		out := append([]string{c.Context}, c.AlsoContexts...)
		sort.Strings(out)
		return out
	}

	t.Run("all contexts", func(t *testing.T) {
		rep := status(t, "--all-contexts", "--fail-on", "overdue")
		if got, want := itemClusters(rep), []string{"prod secret:prod/app/db", "prod-tunnel secret:prod-tunnel/app/db"}; !slices.Equal(got, want) {
			t.Errorf("items (cluster id) %q, want %q: prod-readonly's scan must not repeat prod's", got, want)
		}
		cs := reportClusters(rep)
		if len(rep.Clusters) != 2 {
			t.Fatalf("clusters %+v, want prod and prod-tunnel", rep.Clusters)
		}
		if got := contextsOf(cs["prod"]); !slices.Equal(got, []string{"prod-ctx", "prod-readonly"}) {
			t.Errorf("cluster prod reached through %q (context %q, alsoContexts %q), want prod-ctx and prod-readonly", got, cs["prod"].Context, cs["prod"].AlsoContexts)
		}
		if c := cs["prod-tunnel"]; c.Context != "prod-tunnel-ctx" || len(c.AlsoContexts) != 0 || c.Server == "" || c.Server != cs["prod"].Server {
			t.Errorf("clusters[prod-tunnel] = %+v; want context prod-tunnel-ctx alone, on prod's server %q", c, cs["prod"].Server)
		}
	})
	t.Run("a list of two contexts of one entry", func(t *testing.T) {
		rep := status(t, "--context", "prod-ctx,prod-readonly", "--fail-on", "overdue")
		if len(rep.Clusters) != 1 || rep.Clusters[0].Name != "prod" || rep.Clusters[0].Context != "prod-ctx" || !slices.Equal(rep.Clusters[0].AlsoContexts, []string{"prod-readonly"}) {
			t.Errorf("clusters %+v; want prod through prod-ctx, also prod-readonly", rep.Clusters)
		}
		if got := itemClusters(rep); !slices.Equal(got, []string{"prod secret:prod/app/db"}) {
			t.Errorf("items %q, want app/db once", got)
		}
	})
	for _, tt := range []struct {
		name, cluster string
		args          []string
	}{
		{"one context: its cluster entry", "prod-tunnel", []string{"--context", "prod-tunnel-ctx"}},
		{"one context, --cluster-name", "eu-west-1", []string{"--context", "prod-ctx", "--cluster-name", "eu-west-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := status(t, append(tt.args, "--fail-on", "overdue")...)
			if got, want := itemClusters(rep), []string{tt.cluster + " secret:" + tt.cluster + "/app/db"}; !slices.Equal(got, want) {
				t.Errorf("items (cluster id) %q, want %q", got, want)
			}
		})
	}
}
