package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	gogithub "github.com/google/go-github/v92/github"
	"path"
	"slices"
	"strings"
)

// FileChange is the wanted content of one file in the repository.
type FileChange struct {
	// Path is relative to the repository root, with forward slashes; it is
	// cleaned ("./a/b" is "a/b").
	Path    string
	Content []byte
}

// PRSpec describes the pull request ProposeFiles keeps open.
type PRSpec struct {
	// Branch is the head branch, owned by the caller: ProposeFiles creates
	// it, and resets it to the default branch when no pull request is open
	// for it.
	Branch        string
	Title         string
	Body          string
	CommitMessage string
	Files         []FileChange
	Labels        []string
}

// PRResult says what ProposeFiles did (or, in a dry run, would do).
type PRResult struct {
	// Number and URL are 0 and "" when there is no pull request (nothing to
	// propose, or one would be opened in a dry run).
	Number int
	URL    string
	Branch string
	// Action is one of "opened", "updated", "unchanged", and in a dry run
	// "would open", "would update".
	Action string
}

// ReadFile returns a file's content at ref (a branch, tag or commit; "" is
// the default branch); found is false when GitHub answers 404.
func (c *Client) ReadFile(ctx context.Context, filePath, ref string) (content []byte, found bool, err error) {
	fc, _, found, err := c.getFile(ctx, filePath, ref)
	if err != nil || !found {
		return nil, found, err
	}
	return fc, true, nil
}

// getFile returns a file's content and blob sha at ref. A file too large
// for the contents API (over 1 MB) comes back with nil content and its sha.
func (c *Client) getFile(ctx context.Context, filePath, ref string) (content []byte, sha string, found bool, err error) {
	op := fmt.Sprintf("reading %s", filePath)
	if filePath, err = cleanPath(filePath); err != nil {
		return nil, "", false, fmt.Errorf("%s in %s: %w", op, c.Repo(), err)
	}
	if ref != "" {
		op += " at " + ref
	}
	fc, dir, _, err := c.gh.Repositories.GetContents(ctx, c.owner, c.repo, filePath, &gogithub.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		if isNotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, c.fail(op, err, "contents: read")
	}
	if fc == nil || dir != nil {
		return nil, "", false, fmt.Errorf("%s in %s: it is a directory, not a file", op, c.Repo())
	}
	if fc.GetType() != "" && fc.GetType() != "file" {
		return nil, "", false, fmt.Errorf("%s in %s: it is a %s, not a file", op, c.Repo(), fc.GetType())
	}
	if fc.GetEncoding() == "none" {
		return nil, fc.GetSHA(), true, nil
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, "", false, fmt.Errorf("%s in %s: decoding content: %w", op, c.Repo(), err)
	}
	return []byte(s), fc.GetSHA(), true, nil
}

// OpenPR returns the open pull request whose head is owner:branch, if any
// (nil if none).
func (c *Client) OpenPR(ctx context.Context, branch string) (*PRResult, error) {
	pr, err := c.openPR(ctx, branch, "")
	if err != nil || pr == nil {
		return nil, err
	}
	return &PRResult{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), Branch: branch, Action: ActionUnchanged}, nil
}

func (c *Client) openPR(ctx context.Context, branch, base string) (*gogithub.PullRequest, error) {
	opts := &gogithub.PullRequestListOptions{State: "open", Head: c.owner + ":" + branch, Base: base}
	opts.PerPage = 100
	for pr, err := range c.gh.PullRequests.ListIter(ctx, c.owner, c.repo, opts) {
		if err != nil {
			return nil, c.fail(fmt.Sprintf("listing open pull requests from %s", branch), err, "pull-requests: read")
		}
		if pr.GetHead().GetRef() == branch {
			return pr, nil
		}
	}
	return nil, nil
}

// branchSHA returns the commit a branch points at, or "" if it is missing.
func (c *Client) branchSHA(ctx context.Context, branch string) (string, error) {
	ref, _, err := c.gh.Git.GetRef(ctx, c.owner, c.repo, "heads/"+branch)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", c.fail(fmt.Sprintf("reading branch %s", branch), err, "contents: read")
	}
	return ref.GetObject().GetSHA(), nil
}

// cleanPath normalizes a repository path ("./a//b" becomes "a/b") and
// rejects paths outside the repository.
func cleanPath(p string) (string, error) {
	c := path.Clean(p)
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("file path %q is not valid: want a path relative to the repository root, with forward slashes", p)
	}
	return c, nil
}

// ProposeFiles keeps one pull request open from spec.Branch into the default
// branch that sets spec.Files to their content:
//
//   - the open pull request from owner:Branch into the default branch is
//     looked up;
//   - each file is compared with its content on the branch (on the default
//     branch when no pull request is open);
//   - if something is to change, the branch is created from the default
//     branch if missing; if it exists but no pull request is open for it
//     (say, an old one was merged or closed), it is reset to the default
//     branch;
//   - each file whose content differs is committed with the contents API
//     (one commit per file, message CommitMessage);
//   - the pull request is opened, or its title and body updated, and
//     spec.Labels it lacks are added.
//
// When no pull request is open and every file already has its content on the
// default branch, nothing is proposed and nothing written: the result is
// "unchanged" with no number. Action is "unchanged" too when nothing changed on an open pull
// request. With dryRun nothing is written.
func (c *Client) ProposeFiles(ctx context.Context, spec PRSpec, dryRun bool) (PRResult, error) {
	res := PRResult{Branch: spec.Branch}
	if err := validateSpec(spec); err != nil {
		return res, fmt.Errorf("proposing files in %s: %w", c.Repo(), err)
	}
	files := make([]FileChange, len(spec.Files))
	for i, f := range spec.Files {
		f.Path, _ = cleanPath(f.Path) // validated above
		files[i] = f
	}
	base, err := c.DefaultBranch(ctx)
	if err != nil {
		return res, err
	}
	if spec.Branch == base {
		return res, fmt.Errorf("proposing files in %s: branch %q is the default branch; use a separate branch", c.Repo(), spec.Branch)
	}
	pr, err := c.openPR(ctx, spec.Branch, base)
	if err != nil {
		return res, err
	}
	if pr != nil {
		res.Number, res.URL = pr.GetNumber(), pr.GetHTMLURL()
	}

	baseSHA, err := c.branchSHA(ctx, base)
	if err != nil {
		return res, err
	}
	if baseSHA == "" {
		return res, fmt.Errorf("proposing files in %s: default branch %s not found", c.Repo(), base)
	}
	headSHA, err := c.branchSHA(ctx, spec.Branch)
	if err != nil {
		return res, err
	}

	// Without an open pull request the branch starts over from the default
	// branch, so compare with that; else with the branch.
	compareRef := spec.Branch
	if pr == nil || headSHA == "" {
		compareRef = baseSHA
	}
	type write struct {
		f     FileChange
		sha   string
		found bool
	}
	var writes []write
	for _, f := range files {
		have, sha, found, err := c.getFile(ctx, f.Path, compareRef)
		if err != nil {
			return res, err
		}
		if found && have != nil && bytes.Equal(have, f.Content) {
			continue
		}
		writes = append(writes, write{f: f, sha: sha, found: found})
	}
	filesChanged := len(writes) > 0
	if pr == nil && !filesChanged {
		res.Action = ActionUnchanged // nothing to propose
		return res, nil
	}

	if !dryRun {
		switch {
		case headSHA == "":
			_, _, err := c.gh.Git.CreateRef(ctx, c.owner, c.repo, gogithub.CreateRef{Ref: "refs/heads/" + spec.Branch, SHA: baseSHA})
			if err != nil && !is422(err, "already exists") {
				return res, c.fail(fmt.Sprintf("creating branch %s", spec.Branch), err, "contents: write")
			}
		case pr == nil && headSHA != baseSHA:
			_, _, err := c.gh.Git.UpdateRef(ctx, c.owner, c.repo, "heads/"+spec.Branch, gogithub.UpdateRef{SHA: baseSHA, Force: gogithub.Ptr(true)})
			if err != nil {
				return res, c.fail(fmt.Sprintf("resetting branch %s to %s", spec.Branch, base), err, "contents: write")
			}
		}
		for _, wr := range writes {
			opts := &gogithub.RepositoryContentFileOptions{
				Message: gogithub.Ptr(spec.CommitMessage),
				Content: wr.f.Content,
				Branch:  gogithub.Ptr(spec.Branch),
			}
			if wr.found {
				opts.SHA = gogithub.Ptr(wr.sha)
			}
			if _, _, err := c.gh.Repositories.UpdateFile(ctx, c.owner, c.repo, wr.f.Path, opts); err != nil {
				return res, c.fail(fmt.Sprintf("writing %s on branch %s", wr.f.Path, spec.Branch), err, "contents: write")
			}
		}
	}

	return c.ensurePR(ctx, spec, base, pr, filesChanged, dryRun, res)
}

// ensurePR opens the pull request from spec.Branch into base (pr nil), or
// updates the open one's title, body and labels; filesChanged says the
// branch got new commits (an open one is "updated" then).
func (c *Client) ensurePR(ctx context.Context, spec PRSpec, base string, pr *gogithub.PullRequest, filesChanged, dryRun bool, res PRResult) (PRResult, error) {
	if pr == nil {
		if dryRun {
			res.Action = ActionWouldOpen
			return res, nil
		}
		created, _, err := c.gh.PullRequests.Create(ctx, c.owner, c.repo, gogithub.CreatePullRequest{
			Title: gogithub.Ptr(spec.Title),
			Head:  spec.Branch,
			Base:  base,
			Body:  gogithub.Ptr(spec.Body),
		})
		if err != nil {
			if !is422(err, "pull request already exists") {
				return res, c.fail(fmt.Sprintf("creating pull request from %s", spec.Branch), err, "pull-requests: write")
			}
			// Opened concurrently: adopt it.
			if pr, err = c.openPR(ctx, spec.Branch, base); err != nil {
				return res, err
			}
			if pr == nil {
				return res, fmt.Errorf("creating pull request from %s in %s: GitHub says one exists, but none is open", spec.Branch, c.Repo())
			}
		} else {
			res.Number, res.URL, res.Action = created.GetNumber(), created.GetHTMLURL(), ActionOpened
			if err := c.addLabels(ctx, created.GetNumber(), nil, spec.Labels); err != nil {
				return res, err
			}
			return res, nil
		}
	}

	res.Number, res.URL = pr.GetNumber(), pr.GetHTMLURL()
	changed := filesChanged
	edit := &gogithub.PullRequest{}
	if pr.GetTitle() != spec.Title {
		edit.Title, changed = gogithub.Ptr(spec.Title), true
	}
	if normBody(pr.GetBody()) != normBody(spec.Body) {
		edit.Body, changed = gogithub.Ptr(spec.Body), true
	}
	_, missing := mergeLabels(pr.Labels, spec.Labels)
	changed = changed || missing
	res.Action = ActionUnchanged
	if changed {
		res.Action = ActionUpdated
		if dryRun {
			res.Action = ActionWouldUpdate
		}
	}
	if dryRun {
		return res, nil
	}
	if edit.Title != nil || edit.Body != nil {
		if _, _, err := c.gh.PullRequests.Edit(ctx, c.owner, c.repo, pr.GetNumber(), edit); err != nil {
			return res, c.fail(fmt.Sprintf("updating pull request #%d", pr.GetNumber()), err, "pull-requests: write")
		}
	}
	if err := c.addLabels(ctx, pr.GetNumber(), pr.Labels, spec.Labels); err != nil {
		return res, err
	}
	return res, nil
}

// addLabels adds the labels in want that have lacks.
func (c *Client) addLabels(ctx context.Context, number int, have []*gogithub.Label, want []string) error {
	var add []string
	for _, w := range want {
		w = strings.TrimSpace(w)
		if w == "" || slices.ContainsFunc(have, func(l *gogithub.Label) bool { return strings.EqualFold(l.GetName(), w) }) ||
			slices.ContainsFunc(add, func(a string) bool { return strings.EqualFold(a, w) }) {
			continue
		}
		add = append(add, w)
	}
	if len(add) == 0 {
		return nil
	}
	if _, _, err := c.gh.Issues.AddLabelsToIssue(ctx, c.owner, c.repo, number, add); err != nil {
		return c.fail(fmt.Sprintf("labeling pull request #%d", number), err, "pull-requests: write")
	}
	return nil
}

func validateSpec(s PRSpec) error {
	var errs []string
	if s.Branch == "" || strings.HasPrefix(s.Branch, "refs/") || strings.ContainsAny(s.Branch, " ~^:?*[\\") || strings.Contains(s.Branch, "..") {
		errs = append(errs, fmt.Sprintf("branch %q is not a valid branch name", s.Branch))
	}
	if strings.TrimSpace(s.Title) == "" {
		errs = append(errs, "pull request title is empty")
	}
	if strings.TrimSpace(s.CommitMessage) == "" {
		errs = append(errs, "commit message is empty")
	}
	if len(s.Files) == 0 {
		errs = append(errs, "no files to propose")
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		p, err := cleanPath(f.Path)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if seen[p] {
			errs = append(errs, fmt.Sprintf("file %s is given twice", p))
		}
		seen[p] = true
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
