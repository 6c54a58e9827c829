package action

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/keystore"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// syncIssues keeps one issue per due credential. handled maps the ids of
// credentials a pull request takes care of to that pull request: their
// issues are closed with a pointer to it.
func syncIssues(ctx context.Context, gh *github.Client, in *Inputs, r *report.Report, due []report.Item, handled map[string]string) ([]string, error) {
	want := make([]github.IssueSpec, 0, len(due))
	for _, it := range due {
		if _, ok := handled[it.ID]; ok {
			continue
		}
		spec := github.IssueSpec{Key: it.ID, Title: IssueTitle(it), Body: IssueBody(it, r, in.RunURL), Labels: in.Labels}
		if legacy := report.LegacyID(it); legacy != "" {
			spec.Aliases = []string{legacy}
		}
		want = append(want, spec)
	}
	checked := make(map[string]bool, len(r.Items))
	states := make(map[string]report.Item, len(r.Items))
	// Issues opened before ids named their cluster: one whose credential
	// this run found fine may be closed (github.SyncOptions.Claims), and
	// the close comment names the cluster that rotated latest.
	claims := map[string]time.Time{}
	dueIDs := make(map[string]bool, len(due))
	for _, it := range due {
		dueIDs[it.ID] = true
	}
	for _, it := range r.Items {
		checked[it.ID], states[it.ID] = true, it
		legacy := report.LegacyID(it)
		if legacy == "" || dueIDs[it.ID] || it.Since == nil {
			continue
		}
		if t, ok := claims[legacy]; !ok || it.Since.After(t) {
			claims[legacy], states[legacy] = it.Since.Time, it
		}
	}
	closeComment := func(key string) string {
		if pr, ok := handled[key]; ok {
			return fmt.Sprintf("kube-rotate: %s is being rotated in %s; closing this issue.", states[key].Credential, pr)
		}
		it := states[key]
		text := fmt.Sprintf("kube-rotate: %s%s is no longer overdue (state %s, age %s, limit %s, checked %s); closing.",
			it.Credential, onCluster(it), it.State, orDash(it.Age), it.MaxAge, r.Generated.Format("2006-01-02 15:04 MST"))
		if !checked[key] {
			text += " This issue was opened before issues named their cluster, and the credential was rotated in cluster " + it.Cluster +
				" after its last update. A cluster where it is still due opens its own issue on its next run."
		}
		return text
	}
	res, err := gh.SyncIssuesWith(ctx, in.Labels[0], want, github.SyncOptions{Checked: checked, Claims: claims, CloseComment: closeComment, DryRun: in.DryRun})
	var lines []string
	for _, x := range res {
		line := fmt.Sprintf("issue %s: %s", x.Action, x.Key)
		if x.URL != "" {
			line = fmt.Sprintf("issue #%d %s: %s (%s)", x.Number, x.Action, x.Key, x.URL)
		}
		lines = append(lines, line)
	}
	if err != nil {
		return lines, fmt.Errorf("keeping issues: %w", err)
	}
	return lines, nil
}

// proposeAndSync opens or updates one pull request per key-set file with a
// due key, then keeps issues for everything else that is due.
func proposeAndSync(ctx context.Context, gh *github.Client, in *Inputs, r *report.Report) ([]string, error) {
	handled := map[string]string{}
	var lines []string
	for _, f := range in.JWKSFiles {
		var due []report.Item
		var all []report.Item
		for _, it := range r.Items {
			if it.File != f {
				continue
			}
			all = append(all, it)
			if it.State == policy.StateOverdue || it.State == policy.StateExpired {
				due = append(due, it)
			}
		}
		if len(due) == 0 {
			continue
		}
		res, err := proposeFile(ctx, gh, in, r, f, all)
		if err != nil {
			return lines, err
		}
		if res == nil || (res.Number == 0 && res.Action == github.ActionUnchanged) {
			continue // nothing to propose: the issue stays
		}
		ref := fmt.Sprintf("pull request #%d", res.Number)
		if res.Number == 0 {
			ref = "pull request on branch " + res.Branch
		}
		lines = append(lines, fmt.Sprintf("%s %s: %s (%s)", ref, res.Action, f, res.URL))
		for _, it := range due {
			handled[it.ID] = ref
		}
	}
	more, err := syncIssues(ctx, gh, in, r, r.Due(), handled)
	return append(lines, more...), err
}

// proposeFile takes the next rotation step of one key-set file on the
// branch kube-rotate/FILE and keeps one pull request open for it, as a
// procedure on the engine (proposal, propose.go). When a pull request is
// already open, its step is kept (a new key is not generated again) and
// only its description is refreshed. It returns nil when no step applies.
func proposeFile(ctx context.Context, gh *github.Client, in *Inputs, r *report.Report, file string, items []report.Item) (*github.PRResult, error) {
	return newProposal(gh, in, r, file, items).run(ctx)
}

// advanceFile runs jwks.Ring.Advance on a copy of the file and its
// records, and returns their new contents.
func advanceFile(in *Inputs, file string, items []report.Item) (jwks.Step, []github.FileChange, error) {
	var st jwks.Step
	tmp, err := os.MkdirTemp("", "kube-rotate-pr-")
	if err != nil {
		return st, nil, err
	}
	defer os.RemoveAll(tmp)
	src := in.path(file)
	dst := filepath.Join(tmp, filepath.Base(file))
	for _, p := range [][2]string{{src, dst}, {src + ".kube-rotate.json", dst + ".kube-rotate.json"}} {
		b, err := os.ReadFile(p[0])
		if os.IsNotExist(err) && p[0] != src {
			continue
		}
		if err != nil {
			return st, nil, fmt.Errorf("key-set file %s: %w", file, err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			return st, nil, err
		}
	}
	store := &keystore.FileStore{Path: dst}
	set, rec, err := store.Load(context.Background(), false)
	if err != nil {
		return st, nil, fmt.Errorf("key-set file %s: %w", file, err)
	}
	ring := jwks.NewRing(set, "", rec)
	signingDue := false
	var overlap string
	for _, it := range items {
		if strings.HasSuffix(it.ID, "#signing") {
			signingDue = it.State == policy.StateOverdue || it.State == policy.StateExpired
			overlap = it.Overlap
		}
	}
	st, err = ring.Advance(signingDue, durationOrZero(overlap), jwks.AddOptions{})
	if err != nil {
		return st, nil, fmt.Errorf("key-set file %s: %w", file, err)
	}
	if !st.Changed() {
		return st, nil, nil
	}
	if err := keystore.Save(context.Background(), store, ring, "jwk-advance", "kube-rotate-action"); err != nil {
		return st, nil, fmt.Errorf("key-set file %s: %w", file, err)
	}
	var files []github.FileChange
	for _, p := range [][2]string{{dst, file}, {dst + ".kube-rotate.json", file + ".kube-rotate.json"}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			return st, nil, err
		}
		files = append(files, github.FileChange{Path: filepath.ToSlash(p[1]), Content: b})
	}
	return st, files, nil
}

func durationOrZero(s string) time.Duration {
	if s == "" {
		return 0
	}
	v, err := duration.Parse(s)
	if err != nil {
		return 0
	}
	return v
}
