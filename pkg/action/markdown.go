package action

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// IssueTitle names the credential and its state; it stays the same from
// run to run while the state does.
func IssueTitle(it report.Item) string {
	return fmt.Sprintf("Rotate %s%s (%s %s)", it.Credential, onCluster(it), it.Kind, it.State)
}

// onCluster is " in cluster NAME" for a credential of a named cluster
// (a kOps keyset's credential names its cluster already).
func onCluster(it report.Item) string {
	if it.Cluster == "" || it.Kind == policy.KindKeyset {
		return ""
	}
	return " in cluster " + it.Cluster
}

// IssueBody says what is overdue, its age and where that comes from, the
// policy rule, and the exact commands to rotate it.
func IssueBody(it report.Item, r *report.Report, runURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** is **%s**: %s.\n\n", it.Credential, it.State, orDash(it.Reason))
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, strings.ReplaceAll(v, "|", `\|`))
		}
	}
	row("Kind", it.Kind)
	if it.Kind != policy.KindKeyset {
		row("Cluster", code(it.Cluster, true))
		if c := clusterOf(r, it.Cluster); c != nil && c.Context != "" {
			row("Context", code(c.Context, true)+" ("+c.Server+")")
		}
	}
	if it.Namespace != "" {
		row("Namespace", "`"+it.Namespace+"`")
	}
	row("Secret", code(it.Name, it.File == "" && it.Kind != policy.KindKeyset))
	row("File", code(it.File, true))
	row("Data key", code(it.Key, true))
	row("Key ID", code(it.KID, true))
	row("kOps cluster", code(it.Cluster, true))
	row("Keyset", code(it.Keyset, true))
	if it.Since != nil {
		row("Age", fmt.Sprintf("%s (since %s; source: %s)", it.Age, it.Since.Format("2006-01-02 15:04 MST"), it.AgeSource))
	} else {
		row("Age", "unknown")
	}
	if it.NotAfter != nil {
		row("Expires", it.NotAfter.Format("2006-01-02 15:04 MST"))
	}
	limits := "maxAge " + it.MaxAge
	if it.WarnBefore != "" {
		limits += ", warnBefore " + it.WarnBefore
	}
	if it.Overlap != "" {
		limits += ", overlap " + it.Overlap
	}
	row("Policy", fmt.Sprintf("rule `%s` of %s: %s", it.Rule, r.Policy, limits))
	if len(it.Commands) > 0 {
		b.WriteString("\n### Rotate it\n\n```sh\n")
		for _, c := range it.Commands {
			if strings.HasPrefix(c, display.DefaultKubectlRotate+" secret ") {
				b.WriteString("# plan first: keys, fingerprints, consumers, undo command\n" + c + " --dry-run=client\n")
			}
			b.WriteString(c + "\n")
		}
		b.WriteString("```\n")
	}
	b.WriteString("\nThis issue is kept by the kube-rotate Action: each scheduled run updates it while the credential is due, and closes it once it is not.")
	if runURL != "" {
		fmt.Fprintf(&b, " Last checked by [this run](%s).", runURL)
	}
	b.WriteString("\n")
	return b.String()
}

// clusterOf finds a cluster of the report by name.
func clusterOf(r *report.Report, name string) *v1alpha1.ReportCluster {
	for i := range r.Clusters {
		if r.Clusters[i].Name == name {
			return &r.Clusters[i]
		}
	}
	return nil
}

func code(s string, ok bool) string {
	if s == "" || !ok {
		return ""
	}
	return "`" + s + "`"
}

// prSpec describes the pull request of one key-set file.
func prSpec(branch, file, step string, items []report.Item, r *report.Report, in *Inputs, files []github.FileChange) github.PRSpec {
	var b strings.Builder
	fmt.Fprintf(&b, "kube-rotate: the key set in `%s` is due for rotation. This pull request takes one step: **%s**.\n\n", file, step)
	b.WriteString("Merge it and deploy; the next scheduled run takes the next step (publish a key, then promote it once verifiers have it, then delete retiring keys after their overlap), so every deployed key set keeps verifying every token in use.\n\n")
	b.WriteString("| Key | State | Age | Limit | Status |\n|---|---|---|---|---|\n")
	for _, it := range items {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", it.KID, it.KeyState, orDash(it.Age), it.MaxAge, it.State)
	}
	fmt.Fprintf(&b, "\nThe same step by hand: `kubectl rotate jwk rotate --file %s` does the whole procedure at once; `kubectl rotate jwk list --file %s` shows the keys.\n", file, file)
	if in.RunURL != "" {
		fmt.Fprintf(&b, "\nLast checked by [this run](%s) against %s.\n", in.RunURL, r.Policy)
	}
	return github.PRSpec{Branch: branch, Title: "Rotate the key set in " + file, Body: b.String(),
		CommitMessage: "kube-rotate: " + file + ": " + step, Files: files, Labels: in.Labels}
}

// Summary is the step summary: counts, a section per cluster with its
// table (a cluster that could not be read says why), the credentials of
// no cluster (key-set files), and what was done on GitHub.
func Summary(r *report.Report, mode string, actions []string) string {
	var b strings.Builder
	s := r.Summary
	fmt.Fprintf(&b, "## kube-rotate: credential ages\n\n%d credentials checked against %s: **%d overdue**, %d expired, %d warn, %d unknown, %d ok.\n",
		s.Total, r.Policy, s.Overdue, s.Expired, s.Warn, s.Unknown, s.OK)
	if n := len(r.Clusters); n > 1 {
		fmt.Fprintf(&b, "\n%d clusters:\n\n| Cluster | Overdue | Expired | Warn | Unknown | OK | Read |\n|---|---|---|---|---|---|---|\n", n)
		for _, c := range r.Clusters {
			read := "yes"
			if c.Error != "" {
				read = "**no**: " + esc(c.Error)
			}
			cs := c.Summary
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s |\n", esc(c.Name), cs.Overdue, cs.Expired, cs.Warn, cs.Unknown, cs.OK, read)
		}
	}
	grouped := map[string]bool{}
	for _, c := range r.Clusters {
		grouped[c.Name] = true
		fmt.Fprintf(&b, "\n### Cluster %s\n\n", esc(c.Name))
		if c.Context != "" {
			fmt.Fprintf(&b, "Context `%s`, server %s.", c.Context, c.Server)
			if len(c.AlsoContexts) > 0 {
				fmt.Fprintf(&b, " Also reached by %s (checked once).", strings.Join(c.AlsoContexts, ", "))
			}
			b.WriteString(" ")
		}
		if c.Error != "" {
			fmt.Fprintf(&b, "**Could not be read**: %s. Its issues were left as they were.\n", esc(c.Error))
			continue
		}
		cs := c.Summary
		fmt.Fprintf(&b, "%d credentials: **%d overdue**, %d expired, %d warn, %d unknown, %d ok.\n", cs.Total, cs.Overdue, cs.Expired, cs.Warn, cs.Unknown, cs.OK)
		itemTable(&b, r.Items, func(it report.Item) bool { return it.Cluster == c.Name })
	}
	other := func(it report.Item) bool { return !grouped[it.Cluster] }
	if slices.ContainsFunc(r.Items, other) {
		b.WriteString("\n### Key-set files\n")
		itemTable(&b, r.Items, other)
	}
	if len(actions) > 0 {
		fmt.Fprintf(&b, "\n### GitHub (mode %s)\n\n", mode)
		for _, a := range actions {
			b.WriteString("- " + a + "\n")
		}
	}
	return b.String()
}

// itemTable writes the table of the items in selects.
func itemTable(b *strings.Builder, items []report.Item, in func(report.Item) bool) {
	head := false
	for _, it := range items {
		if !in(it) {
			continue
		}
		if !head {
			b.WriteString("\n| Credential | Kind | Age | Source | Limit | State | Rotate |\n|---|---|---|---|---|---|---|\n")
			head = true
		}
		cmd := "-"
		if len(it.Commands) > 0 {
			cmd = "`" + strings.Join(it.Commands, " && ") + "`"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", esc(it.Credential), it.Kind, orDash(it.Age), esc(orDash(it.AgeSource)), it.MaxAge, it.State, esc(cmd))
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func replacePrefix(s, old, new string) string {
	if strings.HasPrefix(s, old) {
		return new + s[len(old):]
	}
	return s
}

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
