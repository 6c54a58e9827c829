//go:build e2e

package fleet

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kube-rotate/kube-rotate/e2e/internal/actionrun"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

// The credential ids of app/db in each cluster, and the one it had before
// ids named their cluster.
const (
	prodID    = "secret:prod/app/db"
	stagingID = "secret:staging/app/db"
	legacyID  = "secret:app/db"
)

// jobs are the inputs of a workflow with one job per cluster, each reading
// its own cluster's kubeconfig (a matrix over clusters does the same).
type jobs struct{ prod, staging map[string]string }

// perClusterJobs are the two ways a job's cluster gets its identity: the
// kubeconfig's cluster entry (prod, staging), or the input cluster when
// both kubeconfigs use the same generic names (kube-rotate-e2e).
func perClusterJobs(t *testing.T) map[string]jobs {
	return map[string]jobs{
		"identity from the kubeconfig cluster entry": {
			prod:    map[string]string{"kubeconfig": kubeconfig(t, prod.as())},
			staging: map[string]string{"kubeconfig": kubeconfig(t, staging.as())},
		},
		"identity from input cluster": {
			prod:    map[string]string{"kubeconfig": prod.ownKubeconfig(t), "cluster": "prod"},
			staging: map[string]string{"kubeconfig": staging.ownKubeconfig(t), "cluster": "staging"},
		},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	k := slices.Collect(maps.Keys(m))
	sort.Strings(k)
	return k
}

// TestActionOneJobPerCluster is the defect of issue 18: both clusters hold
// app/db, overdue in prod and fresh in staging; the Action runs for prod,
// then for staging, in the same repository with the default label. Each
// cluster keeps its own issue: staging's run leaves prod's alone, staging
// gets its own once its app/db is overdue too, and rotating prod's closes
// only prod's.
func TestActionOneJobPerCluster(t *testing.T) {
	rotateConfig := writeKubeconfig(t, kubeconfig(t, prod.as(), staging.as()))
	cases := perClusterJobs(t)
	for _, name := range sortedKeys(cases) {
		job := cases[name]
		t.Run(name, func(t *testing.T) {
			reset(t, prod, staging)
			prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0001"})
			staging.secret(t, "db", 0, map[string]string{"password": "staging-db-password-0002"})
			w := newWorkflow(t)

			// prod's job: one issue, for prod.
			r := w.Run(job.prod)
			if r.Code != 0 {
				t.Fatalf("prod's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			p := w.mustIssue(prodID)
			if len(w.GH.Issues()) != 1 || p.State != "open" || !slices.Equal(p.Labels, []string{label}) || !strings.Contains(p.Title, "app/db") {
				t.Fatalf("after prod's run: %s; want one open issue for app/db in prod, labeled %s", w.describe(), label)
			}
			if got := clusters(t, r); !maps.Equal(got, map[string]clusterCounts{"prod": cc(1, 0, 1)}) {
				t.Errorf("prod's run: output clusters %v, want prod with 1 overdue", got)
			}
			if r.Outputs["overdue_count"] != "1" || r.Outputs["warn_count"] != "0" {
				t.Errorf("prod's run: outputs %v, want overdue_count 1, warn_count 0", r.Outputs)
			}
			rep := w.Report(r)
			if len(rep.Items) != 1 || rep.Items[0].ID != prodID || rep.Items[0].Cluster != "prod" {
				t.Errorf("prod's report: items %+v, want %s of cluster prod alone", rep.Items, prodID)
			}
			if want := fmt.Sprintf("issue #%d opened: %s", p.Number, prodID); !strings.Contains(r.Summary, want) {
				t.Errorf("prod's step summary lacks %q", want)
			}

			// staging's job, app/db fresh there: prod's issue is not
			// staging's to close.
			w.GH.ResetRequests()
			r = w.Run(job.staging)
			if r.Code != 0 {
				t.Fatalf("staging's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			if now := w.mustIssue(prodID); now.State != "open" || len(now.Comments) != 0 || len(w.GH.Issues()) != 1 {
				t.Fatalf("after staging's run: %s; prod's issue #%d must stay open, uncommented, and no other be opened", w.describe(), p.Number)
			}
			if wr := w.writesTo(p.Number); len(wr) != 0 || w.created() != 0 {
				t.Errorf("staging's run wrote to prod's issue #%d (%v) or opened %d issues", p.Number, wr, w.created())
			}
			if got := clusters(t, r); !maps.Equal(got, map[string]clusterCounts{"staging": cc(1, 1, 0)}) {
				t.Errorf("staging's run: output clusters %v, want staging with 1 ok", got)
			}
			if r.Outputs["overdue_count"] != "0" {
				t.Errorf("staging's run: outputs %v, want overdue_count 0", r.Outputs)
			}

			// staging's app/db overdue too: staging opens its own.
			staging.age(t, "db", 100*day)
			w.GH.ResetRequests()
			r = w.Run(job.staging)
			if r.Code != 0 {
				t.Fatalf("staging's second run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			s := w.mustIssue(stagingID)
			if s.State != "open" || s.Number == p.Number || len(w.GH.Issues()) != 2 || w.created() != 1 {
				t.Fatalf("after staging's second run: %s; want staging's own open issue next to prod's", w.describe())
			}
			if wr := w.writesTo(p.Number); len(wr) != 0 {
				t.Errorf("staging's second run wrote to prod's issue #%d: %v", p.Number, wr)
			}
			if p.Title == s.Title {
				// Two open issues a person cannot tell apart in the list.
				t.Errorf("prod's and staging's issues have the same title %q: it must name the cluster", p.Title)
			}

			// prod's job again: its issue updated in place, nothing new.
			w.GH.ResetRequests()
			if r = w.Run(job.prod); r.Code != 0 || w.created() != 0 || len(w.writesTo(s.Number)) != 0 {
				t.Fatalf("prod's second run: exit %d, %d issues opened, writes to staging's #%d: %v", r.Code, w.created(), s.Number, w.writesTo(s.Number))
			}

			// Rotate prod's app/db with kubectl rotate: prod's next run
			// closes prod's issue, staging's stays open.
			mustRotate(t, rotateConfig, "secret", "db", "-n", ns, "--key", "password", "--generate", "hex:16", "--context", prod.ctx())
			w.GH.ResetRequests()
			r = w.Run(job.prod)
			if r.Code != 0 {
				t.Fatalf("prod's run after the rotation: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			p = w.mustIssue(prodID)
			if p.State != "closed" || p.StateReason != "completed" || len(p.Comments) != 1 || !strings.Contains(p.Comments[0], "no longer overdue") {
				t.Errorf("prod's issue #%d after the rotation: %s (%s), comments %q; want closed as completed with one comment", p.Number, p.State, p.StateReason, p.Comments)
			}
			if now := w.mustIssue(stagingID); now.State != "open" || len(now.Comments) != 0 || len(w.writesTo(s.Number)) != 0 {
				t.Errorf("staging's issue #%d after prod's run: %s, comments %q, writes %v; want it untouched and open", s.Number, now.State, now.Comments, w.writesTo(s.Number))
			}
			if want := fmt.Sprintf("issue #%d closed: %s", p.Number, prodID); !strings.Contains(r.Summary, want) {
				t.Errorf("step summary lacks %q", want)
			}

			// staging's job: its issue stays, prod's stays closed.
			w.GH.ResetRequests()
			r = w.Run(job.staging)
			if r.Code != 0 || w.mustIssue(stagingID).State != "open" || w.mustIssue(prodID).State != "closed" || len(w.writesTo(p.Number)) != 0 || len(w.GH.Issues()) != 2 {
				t.Errorf("staging's last run: exit %d; %s; want staging's open, prod's closed and untouched", r.Code, w.describe())
			}

			vals := values(t, prod, staging)
			for _, is := range w.GH.Issues() {
				noValues(t, fmt.Sprintf("issue #%d", is.Number), is.Title+is.Body+strings.Join(is.Comments, ""), vals)
			}
		})
	}
}

// fleetKubeconfig holds both clusters; its current context is prod's.
func fleetKubeconfig(t *testing.T) string {
	return kubeconfig(t, prod.as(), staging.as())
}

// TestActionOneJobOverFleet: one run over a kubeconfig holding both
// clusters, with input contexts all or a list of them: one issue per
// cluster, a step summary section per cluster, counts per cluster and in
// total. Input contexts empty checks the current context only and leaves
// the other cluster's issue alone.
func TestActionOneJobOverFleet(t *testing.T) {
	kc := fleetKubeconfig(t)
	for _, contexts := range []string{"all", "prod-ctx,staging-ctx", "staging-ctx\nprod-ctx\n"} {
		t.Run(fmt.Sprintf("contexts %q", contexts), func(t *testing.T) {
			reset(t, prod, staging)
			prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0003"})
			staging.secret(t, "db", 100*day, map[string]string{"password": "staging-db-password-0004"})
			staging.secret(t, "cache", 0, map[string]string{"password": "staging-cache-password-0005"})
			w := newWorkflow(t)
			in := map[string]string{"kubeconfig": kc, "contexts": contexts}

			r := w.Run(in)
			if r.Code != 0 {
				t.Fatalf("exit %d, errors %q", r.Code, r.ErrorLines())
			}
			p, s := w.mustIssue(prodID), w.mustIssue(stagingID)
			if p.State != "open" || s.State != "open" || len(w.GH.Issues()) != 2 {
				t.Fatalf("issues: %s; want one open issue per cluster", w.describe())
			}
			want := map[string]clusterCounts{"prod": cc(1, 0, 1), "staging": cc(2, 1, 1)}
			if got := clusters(t, r); !maps.Equal(got, want) {
				t.Errorf("output clusters %v, want %v", got, want)
			}
			if r.Outputs["overdue_count"] != "2" || r.Outputs["warn_count"] != "0" {
				t.Errorf("outputs %v, want the totals: overdue_count 2, warn_count 0", r.Outputs)
			}
			rep := w.Report(r)
			byCluster := map[string][]string{}
			for _, it := range rep.Items {
				byCluster[it.Cluster] = append(byCluster[it.Cluster], it.Credential)
			}
			if !slices.Equal(byCluster["prod"], []string{"app/db"}) || len(byCluster["staging"]) != 2 || len(byCluster) != 2 {
				t.Errorf("report items by cluster: %v", byCluster)
			}
			ps, ss := section(r, "prod"), section(r, "staging")
			if ps == "" || ss == "" {
				t.Fatalf("step summary has no section \"### Cluster prod\" or \"### Cluster staging\":\n%s", r.Summary)
			}
			if !strings.Contains(ps, "| app/db |") || strings.Contains(ps, "app/cache") {
				t.Errorf("prod's section must list app/db and not staging's app/cache:\n%s", ps)
			}
			if !strings.Contains(ss, "| app/db |") || !strings.Contains(ss, "| app/cache |") {
				t.Errorf("staging's section must list app/db and app/cache:\n%s", ss)
			}

			// The next scheduled run: the same two issues.
			w.GH.ResetRequests()
			if r = w.Run(in); r.Code != 0 || w.created() != 0 || len(w.GH.Issues()) != 2 || w.mustIssue(prodID).State != "open" || w.mustIssue(stagingID).State != "open" {
				t.Fatalf("second run: exit %d, %d opened; %s", r.Code, w.created(), w.describe())
			}

			// contexts empty: the kubeconfig's current context (prod's)
			// only; staging's issue is not prod's run's to close.
			staging.age(t, "db", 0)
			w.GH.ResetRequests()
			r = w.Run(map[string]string{"kubeconfig": kc})
			if r.Code != 0 {
				t.Fatalf("run over the current context: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			if got := sortedKeys(clusters(t, r)); !slices.Equal(got, []string{"prod"}) {
				t.Errorf("run over the current context checked clusters %v, want prod", got)
			}
			if wr := w.writesTo(s.Number); len(wr) != 0 || w.mustIssue(stagingID).State != "open" {
				t.Errorf("run over prod only wrote to staging's issue #%d: %v", s.Number, wr)
			}
		})
	}
}

// TestActionFleetClusterUnreadable: one of the kubeconfig's clusters cannot
// be read (its credentials are rejected): one ::error line naming it, exit
// 1; the others are still checked and their issues kept.
func TestActionFleetClusterUnreadable(t *testing.T) {
	reset(t, prod, staging)
	prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0006"})
	staging.secret(t, "db", 100*day, map[string]string{"password": "staging-db-password-0007"})
	cfg, err := clientcmd.Load([]byte(fleetKubeconfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	// A third cluster entry whose user's token the API server rejects (an
	// expired credential): cluster "expired".
	cfg.Clusters["expired"] = cfg.Clusters["prod"].DeepCopy()
	cfg.AuthInfos["expired-user"] = &clientcmdapi.AuthInfo{Token: "e2e-not-a-valid-token"}
	cfg.Contexts["expired-ctx"] = &clientcmdapi.Context{Cluster: "expired", AuthInfo: "expired-user"}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorkflow(t)
	in := map[string]string{"kubeconfig": string(b), "contexts": "all"}

	// Before: both readable clusters' issues are open.
	r := w.Run(map[string]string{"kubeconfig": fleetKubeconfig(t), "contexts": "all"})
	if r.Code != 0 || len(w.GH.Issues()) != 2 {
		t.Fatalf("first run: exit %d; %s", r.Code, w.describe())
	}
	p, s := w.mustIssue(prodID), w.mustIssue(stagingID)

	w.GH.ResetRequests()
	r = w.Run(in)
	errs := r.ErrorLines()
	if r.Code != 1 || len(errs) != 1 || !strings.Contains(errs[0], "expired") {
		t.Fatalf("exit %d, ::error lines %q; want exit 1 and one line naming cluster expired", r.Code, errs)
	}
	got := clusters(t, r)
	if got["expired"].Error == "" || !maps.Equal(map[string]clusterCounts{"prod": got["prod"], "staging": got["staging"]},
		map[string]clusterCounts{"prod": cc(1, 0, 1), "staging": cc(1, 0, 1)}) || len(got) != 3 {
		t.Errorf("output clusters %v: want expired with its error, prod and staging with 1 overdue each", got)
	}
	if r.Outputs["overdue_count"] != "2" {
		t.Errorf("outputs %v, want overdue_count 2", r.Outputs)
	}
	if w.created() != 0 || len(w.GH.Issues()) != 2 || w.mustIssue(prodID).State != "open" || w.mustIssue(stagingID).State != "open" {
		t.Errorf("the readable clusters' issues #%d and #%d must stay open, none be added: %s", p.Number, s.Number, w.describe())
	}
}

// legacyIssue seeds the issue an Action of before issue 18 opened for
// app/db: its marker has no cluster.
func legacyIssue(w *workflow) int {
	return w.GH.AddIssue(githubtest.Issue{
		Title:  "Rotate app/db (secret overdue)",
		Labels: []string{label}, User: githubtest.BotLogin,
		Body: "**app/db** is **overdue**: rotated-at 100d ago, past maxAge 90d.\n\n" +
			"This issue is kept by the kube-rotate Action: each scheduled run updates it while the credential is due, and closes it once it is not.\n\n" +
			actionrun.Marker(legacyID),
	})
}

// TestActionLegacyIssue: an issue opened before ids named their cluster
// (marker secret:app/db) belongs to the first cluster that checks app/db.
// A run that finds app/db due adopts it (same issue, marker rewritten, no
// second issue); a run that finds it fine closes it with a comment, and a
// cluster where it is still due then opens its own.
func TestActionLegacyIssue(t *testing.T) {
	jobs := perClusterJobs(t)["identity from the kubeconfig cluster entry"]
	fleet := map[string]string{"kubeconfig": fleetKubeconfig(t), "contexts": "all"}
	adoptedBy := func(t *testing.T, w *workflow, n int, id string) {
		t.Helper()
		is := w.mustIssue(id)
		if is.Number != n || is.State != "open" || strings.Contains(is.Body, actionrun.Marker(legacyID)) || !strings.HasSuffix(strings.TrimSpace(is.Body), actionrun.Marker(id)) {
			t.Errorf("issue #%d (%s, marker %q) must be the old issue #%d, open, its marker now %q:\n%s", is.Number, is.State, markerOf(is), n, id, is.Body)
		}
		if run := fmt.Sprintf("/actions/runs/%d)", w.RunID()); !strings.Contains(is.Body, run) {
			t.Errorf("issue #%d: body not rewritten by the run that adopted it (no link to %s):\n%s", is.Number, run, is.Body)
		}
		if _, ok := w.issue(legacyID); ok {
			t.Errorf("an issue still carries the old marker: %s", w.describe())
		}
	}
	tests := []struct {
		name           string
		stagingOverdue bool
		check          func(t *testing.T, w *workflow, old int)
	}{
		{name: "prod's job adopts it, staging's leaves it", check: func(t *testing.T, w *workflow, old int) {
			if r := w.Run(jobs.prod); r.Code != 0 {
				t.Fatalf("prod's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			adoptedBy(t, w, old, prodID)
			if w.created() != 0 || len(w.GH.Issues()) != 1 {
				t.Fatalf("prod's run opened a second issue: %s", w.describe())
			}
			w.GH.ResetRequests()
			if r := w.Run(jobs.staging); r.Code != 0 || len(w.writesTo(old)) != 0 || w.mustIssue(prodID).State != "open" || len(w.GH.Issues()) != 1 {
				t.Errorf("staging's run (app/db fresh there): exit %d, writes to #%d %v; %s; want prod's adopted issue untouched", r.Code, old, w.writesTo(old), w.describe())
			}
		}},
		{name: "staging's job, app/db unchanged there since the issue, leaves it; prod's adopts it", check: func(t *testing.T, w *workflow, old int) {
			// The issue was updated after staging's app/db was last
			// written: staging's credential cannot be the one that was
			// due, so staging's run must not close it.
			r := w.Run(jobs.staging)
			if r.Code != 0 {
				t.Fatalf("staging's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			if is := w.mustIssue(legacyID); is.State != "open" || len(w.writesTo(old)) != 0 || w.created() != 0 {
				t.Fatalf("staging's run, app/db fresh there and unchanged since the issue: old issue #%d %s, writes %v; %s; want it left alone", old, is.State, w.writesTo(old), w.describe())
			}
			w.GH.ResetRequests()
			if r = w.Run(jobs.prod); r.Code != 0 {
				t.Fatalf("prod's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			adoptedBy(t, w, old, prodID)
			if w.created() != 0 || len(w.GH.Issues()) != 1 {
				t.Errorf("prod's run opened a second issue: %s", w.describe())
			}
		}},
		{name: "staging's job, app/db rotated there since the issue's last update, closes it", check: func(t *testing.T, w *workflow, old int) {
			// The rotation must be later than the issue at the seconds
			// both are kept in: wait for the clock to pass its update.
			updated := w.updatedAt(old)
			for time.Now().Truncate(time.Second).Compare(updated) <= 0 {
				if time.Since(updated) < -time.Minute {
					t.Fatalf("the fake's clock (%s) is a minute ahead of this one", updated)
				}
				time.Sleep(50 * time.Millisecond)
			}
			mustRotate(t, writeKubeconfig(t, fleetKubeconfig(t)), "secret", "db", "-n", ns, "--key", "password", "--generate", "hex:16", "--context", staging.ctx())
			if r := w.Run(jobs.staging); r.Code != 0 {
				t.Fatalf("staging's run: exit %d, errors %q", r.Code, r.ErrorLines())
			}
			is := w.mustIssue(legacyID)
			if is.State != "closed" || is.StateReason != "completed" || len(is.Comments) != 1 || !strings.Contains(is.Comments[0], "app/db") || w.created() != 0 {
				t.Errorf("old issue #%d %s (%s), comments %q; %s; want it closed as completed with one comment", old, is.State, is.StateReason, is.Comments, w.describe())
			}
		}},
		{name: "one job over both adopts it for prod", check: func(t *testing.T, w *workflow, old int) {
			if r := w.Run(fleet); r.Code != 0 {
				t.Fatalf("exit %d, errors %q", r.Code, r.ErrorLines())
			}
			adoptedBy(t, w, old, prodID)
			if w.created() != 0 || len(w.GH.Issues()) != 1 {
				t.Errorf("%s; want the old issue adopted by prod and nothing opened or closed", w.describe())
			}
		}},
		{name: "one job over both, due in both: one adopts it, the other opens its own", stagingOverdue: true, check: func(t *testing.T, w *workflow, old int) {
			if r := w.Run(fleet); r.Code != 0 {
				t.Fatalf("exit %d, errors %q", r.Code, r.ErrorLines())
			}
			p, s := w.mustIssue(prodID), w.mustIssue(stagingID)
			if (p.Number != old && s.Number != old) || p.Number == s.Number || p.State != "open" || s.State != "open" || len(w.GH.Issues()) != 2 || w.created() != 1 {
				t.Errorf("%s; want the old issue #%d adopted by one cluster and one issue opened for the other", w.describe(), old)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, prod, staging)
			prod.secret(t, "db", 100*day, map[string]string{"password": "prod-db-password-0008"})
			staging.secret(t, "db", 0, map[string]string{"password": "staging-db-password-0009"})
			if tt.stagingOverdue {
				staging.age(t, "db", 100*day)
			}
			w := newWorkflow(t)
			old := legacyIssue(w)
			tt.check(t, w, old)
		})
	}
}
