package github_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/github/githubtest"
)

// Issues opened under an id without the cluster (before ids named it):
// the first wanted issue of the credential adopts one; a run that finds
// the credential fine closes it only when the credential was written after
// the issue's last update.
func TestSyncIssuesAdoptsAndClaimsOlderKeys(t *testing.T) {
	const legacy, prod, staging = "secret:app/db", "secret:prod/app/db", "secret:staging/app/db"
	spec := func(key string) github.IssueSpec {
		return github.IssueSpec{Key: key, Title: "Rotate app/db in cluster " + strings.Split(strings.TrimPrefix(key, "secret:"), "/")[0], Body: "due", Aliases: []string{legacy}}
	}
	later := func() time.Time { return time.Now().Add(time.Hour) }
	earlier := func() time.Time { return time.Now().Add(-time.Hour) }
	tests := []struct {
		name string
		want []github.IssueSpec
		// claims maps legacy to when the credential was written (fine
		// clusters); nil: no claim.
		claim func() time.Time
		// ownIssue: the wanting cluster already has an issue of its own.
		ownIssue    bool
		wantActions []string // in result order
		legacyOpen  bool
		openKeys    []string
	}{
		{name: "due: adopted, not duplicated", want: []github.IssueSpec{spec(prod)},
			wantActions: []string{"updated " + prod}, openKeys: []string{prod}},
		{name: "due in two clusters of one run: the first adopts, the second opens its own", want: []github.IssueSpec{spec(prod), spec(staging)},
			wantActions: []string{"updated " + prod, "opened " + staging}, openKeys: []string{prod, staging}},
		{name: "due with an issue of its own: the older one is left to its owner", want: []github.IssueSpec{spec(prod)}, ownIssue: true,
			wantActions: []string{"unchanged " + prod}, legacyOpen: true, openKeys: []string{legacy, prod}},
		{name: "fine, rewritten after the issue's last update: closed", claim: later,
			wantActions: []string{"closed " + legacy}},
		{name: "fine, unchanged since the issue's last update: not its issue, left open", claim: earlier,
			legacyOpen: true, openKeys: []string{legacy}},
		{name: "fine, time unknown: left open", claim: func() time.Time { return time.Time{} },
			legacyOpen: true, openKeys: []string{legacy}},
		{name: "not checked at all: left open", legacyOpen: true, openKeys: []string{legacy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			old := srv.AddIssue(githubtest.Issue{Title: "Rotate app/db (secret overdue)", Body: "old body\n\n" + github.Marker(legacy), Labels: []string{label}, User: githubtest.BotLogin})
			if tt.ownIssue {
				srv.AddIssue(githubtest.Issue{Title: "Rotate app/db in cluster prod", Body: "due\n\n" + github.Marker(prod), Labels: []string{label}, User: githubtest.BotLogin})
			}
			o := github.SyncOptions{Checked: map[string]bool{}, CloseComment: func(k string) string { return "fine in this cluster" }}
			for _, s := range tt.want {
				o.Checked[s.Key] = true
			}
			if tt.claim != nil {
				o.Claims = map[string]time.Time{legacy: tt.claim()}
			}
			res, err := c.SyncIssuesWith(context.Background(), label, tt.want, o)
			if err != nil {
				t.Fatal(err)
			}
			got := actions(res, func(r github.IssueResult) string { return r.Action + " " + r.Key })
			if strings.Join(got, "; ") != strings.Join(tt.wantActions, "; ") {
				t.Errorf("results %q, want %q", got, tt.wantActions)
			}
			var open []string
			for _, is := range srv.Issues() {
				if is.State != "open" {
					continue
				}
				i := strings.LastIndex(is.Body, "<!-- kube-rotate:")
				open = append(open, strings.TrimSuffix(is.Body[i+len("<!-- kube-rotate:"):], " -->"))
				if is.Number == old && !tt.legacyOpen && is.Body != "due\n\n"+github.Marker(prod) {
					t.Errorf("adopted issue #%d body %q: want the new marker", old, is.Body)
				}
			}
			if strings.Join(open, " ") != strings.Join(tt.openKeys, " ") {
				t.Errorf("open issues by marker %q, want %q", open, tt.openKeys)
			}
			for _, is := range srv.Issues() {
				if is.Number == old && is.State == "closed" && (len(is.Comments) != 1 || is.Comments[0] != "fine in this cluster") {
					t.Errorf("closed older issue: comments %q", is.Comments)
				}
			}
		})
	}
}
