package github

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	gogithub "github.com/google/go-github/v92/github"
)

// The operations of ProposeFiles one at a time, for callers that run them
// as the steps of a procedure (pkg/action): each reads or makes one thing
// on GitHub, so a step's state can be read back from GitHub's objects.

// BranchSHA returns the commit a branch points at, or "" if it is missing.
func (c *Client) BranchSHA(ctx context.Context, branch string) (string, error) {
	return c.branchSHA(ctx, branch)
}

// Commit is what CommitInfo returns of a commit.
type Commit struct {
	SHA, Message string
	Parents      []string
}

// CommitInfo reads a commit's message and parents.
func (c *Client) CommitInfo(ctx context.Context, sha string) (*Commit, error) {
	gc, _, err := c.gh.Git.GetCommit(ctx, c.owner, c.repo, sha)
	if err != nil {
		return nil, c.fail(fmt.Sprintf("reading commit %s", sha), err, "contents: read")
	}
	out := &Commit{SHA: gc.GetSHA(), Message: gc.GetMessage()}
	for _, p := range gc.Parents {
		out.Parents = append(out.Parents, p.GetSHA())
	}
	return out, nil
}

// CreateBranch creates branch at sha; one that exists already (created
// concurrently) is left as it is.
func (c *Client) CreateBranch(ctx context.Context, branch, sha string) error {
	_, _, err := c.gh.Git.CreateRef(ctx, c.owner, c.repo, gogithub.CreateRef{Ref: "refs/heads/" + branch, SHA: sha})
	if err != nil && !is422(err, "already exists") {
		return c.fail(fmt.Sprintf("creating branch %s", branch), err, "contents: write")
	}
	return nil
}

// ResetBranch points branch at sha (a forced update).
func (c *Client) ResetBranch(ctx context.Context, branch, sha string) error {
	_, _, err := c.gh.Git.UpdateRef(ctx, c.owner, c.repo, "heads/"+branch, gogithub.UpdateRef{SHA: sha, Force: gogithub.Ptr(true)})
	if err != nil {
		return c.fail(fmt.Sprintf("resetting branch %s to %s", branch, sha), err, "contents: write")
	}
	return nil
}

// ChangedFiles returns the files whose content at ref (a branch or a
// commit) is not theirs, missing ones included.
func (c *Client) ChangedFiles(ctx context.Context, ref string, files []FileChange) ([]FileChange, error) {
	var out []FileChange
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, fmt.Errorf("in %s: %w", c.Repo(), err)
		}
		have, _, found, err := c.getFile(ctx, p, ref)
		if err != nil {
			return nil, err
		}
		if found && have != nil && bytes.Equal(have, f.Content) {
			continue
		}
		out = append(out, FileChange{Path: p, Content: f.Content})
	}
	return out, nil
}

// CommitFiles commits, in order, each file whose content on branch is not
// theirs (one commit per file, with the contents API and the blob sha as
// its precondition), and returns how many it committed.
func (c *Client) CommitFiles(ctx context.Context, branch, message string, files []FileChange) (int, error) {
	if strings.TrimSpace(message) == "" {
		return 0, fmt.Errorf("committing to %s in %s: commit message is empty", branch, c.Repo())
	}
	n := 0
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return n, fmt.Errorf("in %s: %w", c.Repo(), err)
		}
		have, sha, found, err := c.getFile(ctx, p, branch)
		if err != nil {
			return n, err
		}
		if found && have != nil && bytes.Equal(have, f.Content) {
			continue
		}
		opts := &gogithub.RepositoryContentFileOptions{Message: gogithub.Ptr(message), Content: f.Content, Branch: gogithub.Ptr(branch)}
		if found {
			opts.SHA = gogithub.Ptr(sha)
		}
		if _, _, err := c.gh.Repositories.UpdateFile(ctx, c.owner, c.repo, p, opts); err != nil {
			return n, c.fail(fmt.Sprintf("writing %s on branch %s", p, branch), err, "contents: write")
		}
		n++
	}
	return n, nil
}

// PullRequestHeads returns the head commit of every pull request, open or
// closed, from owner:branch.
func (c *Client) PullRequestHeads(ctx context.Context, branch string) ([]string, error) {
	opts := &gogithub.PullRequestListOptions{State: "all", Head: c.owner + ":" + branch}
	opts.PerPage = 100
	var out []string
	for pr, err := range c.gh.PullRequests.ListIter(ctx, c.owner, c.repo, opts) {
		if err != nil {
			return nil, c.fail(fmt.Sprintf("listing pull requests from %s", branch), err, "pull-requests: read")
		}
		if pr.GetHead().GetRef() == branch {
			out = append(out, pr.GetHead().GetSHA())
		}
	}
	return out, nil
}

// PRUpToDate returns the open pull request from spec.Branch into the
// default branch (nil if none), and whether its title, body and labels are
// spec's.
func (c *Client) PRUpToDate(ctx context.Context, spec PRSpec) (*PRResult, bool, error) {
	base, err := c.DefaultBranch(ctx)
	if err != nil {
		return nil, false, err
	}
	pr, err := c.openPR(ctx, spec.Branch, base)
	if err != nil || pr == nil {
		return nil, false, err
	}
	_, missing := mergeLabels(pr.Labels, spec.Labels)
	ok := pr.GetTitle() == spec.Title && normBody(pr.GetBody()) == normBody(spec.Body) && !missing
	return &PRResult{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), Branch: spec.Branch, Action: ActionUnchanged}, ok, nil
}

// EnsurePR opens the pull request from spec.Branch into the default branch,
// or updates the open one's title, body and labels (spec.Files and
// spec.CommitMessage are not used: the branch is the caller's). Action is
// "opened", "updated" or "unchanged"; with dryRun nothing is written and
// it is "would open" or "would update".
func (c *Client) EnsurePR(ctx context.Context, spec PRSpec, dryRun bool) (PRResult, error) {
	res := PRResult{Branch: spec.Branch}
	check := spec
	check.CommitMessage, check.Files = "-", []FileChange{{Path: "x"}}
	if err := validateSpec(check); err != nil {
		return res, fmt.Errorf("pull request in %s: %w", c.Repo(), err)
	}
	base, err := c.DefaultBranch(ctx)
	if err != nil {
		return res, err
	}
	if spec.Branch == base {
		return res, fmt.Errorf("pull request in %s: branch %q is the default branch; use a separate branch", c.Repo(), spec.Branch)
	}
	pr, err := c.openPR(ctx, spec.Branch, base)
	if err != nil {
		return res, err
	}
	return c.ensurePR(ctx, spec, base, pr, false, dryRun, res)
}
