package action

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/github"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Steps of the pull-request procedure of one key-set file.
const (
	StepAdvance     = "advance"
	StepBranch      = "branch"
	StepCommit      = "commit"
	StepPullRequest = "pull-request"
)

// keptStep describes the step of a pull request that is open already.
const keptStep = "the step proposed earlier in this pull request"

// proposal is the rotation of one key-set file in mode pr, as a procedure
// on the engine (pkg/procedure): advance the key set one step (jwks.Ring,
// on a copy of the workspace file), put the branch kube-rotate/FILE at the
// default branch, commit the file and its records to it, open or update
// the pull request.
//
// It has no journal: every step's state is read from GitHub's objects, so
// a run that failed at any step (or was cancelled) is resumed by the next
// scheduled run. The pull request open: the step it proposes is kept (no
// new key is made), and only what differs from it is written. No pull
// request yet, but the branch carries a whole step a failed run committed
// (its commits are this procedure's, on top of the default branch as it is
// now, and no pull request was ever opened at it): that step is kept too,
// and the pull request is opened for it. A branch that carries anything
// else (a merged or closed pull request's, a step committed half-way, an
// older default branch) is reset to the default branch and a new step is
// taken.
type proposal struct {
	gh    *github.Client
	in    *Inputs
	r     *report.Report
	items []report.Item

	file, sidecar, branch string

	// Found out by the steps.
	looked           bool
	base, baseSHA    string
	headSHA          string
	open             *github.PRResult
	files            []github.FileChange
	what             string // the step, for the description and commit message
	kept, nothing    bool
	committed, would bool
	res              *github.PRResult
}

func newProposal(gh *github.Client, in *Inputs, r *report.Report, file string, items []report.Item) *proposal {
	file = filepath.ToSlash(file)
	return &proposal{gh: gh, in: in, r: r, items: items, file: file, sidecar: file + ".kube-rotate.json",
		branch: "kube-rotate/" + strings.TrimPrefix(file, "./")}
}

func (p *proposal) commitPrefix() string { return "kube-rotate: " + p.file + ": " }

// look reads what GitHub holds for the file's branch, once: the default
// branch, the branch, its open pull request, and whether the branch
// carries a step to keep.
func (p *proposal) look(ctx context.Context) error {
	if p.looked {
		return nil
	}
	var err error
	if p.open, err = p.gh.OpenPR(ctx, p.branch); err != nil {
		return err
	}
	if p.base, err = p.gh.DefaultBranch(ctx); err != nil {
		return err
	}
	if p.baseSHA, err = p.gh.BranchSHA(ctx, p.base); err != nil {
		return err
	}
	if p.baseSHA == "" {
		return fmt.Errorf("proposing files in %s: default branch %s not found", p.gh.Repo(), p.base)
	}
	if p.headSHA, err = p.gh.BranchSHA(ctx, p.branch); err != nil {
		return err
	}
	switch {
	case p.open != nil:
		p.what = keptStep
		if err := p.keepBranch(ctx); err != nil {
			return err
		}
	case p.headSHA != "" && p.headSHA != p.baseSHA:
		what, ok, err := p.unproposedStep(ctx)
		if err != nil {
			return err
		}
		if ok {
			p.what = what
			if err := p.keepBranch(ctx); err != nil {
				return err
			}
		}
	}
	p.looked = true
	return nil
}

// keepBranch takes the step's files from the branch.
func (p *proposal) keepBranch(ctx context.Context) error {
	p.files = nil
	for _, f := range []string{p.file, p.sidecar} {
		b, found, err := p.gh.ReadFile(ctx, f, p.branch)
		if err != nil {
			return err
		}
		if found {
			p.files = append(p.files, github.FileChange{Path: f, Content: b})
		}
	}
	p.kept = true
	return nil
}

// unproposedStep reports whether the branch (no pull request open) carries
// a whole step a failed run committed, and which: commits of this
// procedure only, right on top of the default branch as it is, no pull
// request ever opened at its head, and the key-set file changed (it is
// committed last, after its records).
func (p *proposal) unproposedStep(ctx context.Context) (string, bool, error) {
	heads, err := p.gh.PullRequestHeads(ctx, p.branch)
	if err != nil {
		return "", false, err
	}
	if slices.Contains(heads, p.headSHA) {
		return "", false, nil // a closed or merged pull request's branch
	}
	what := ""
	sha := p.headSHA
	for range 2 { // one commit per file: the records, then the key set
		c, err := p.gh.CommitInfo(ctx, sha)
		if err != nil {
			return "", false, err
		}
		step, ok := strings.CutPrefix(firstLine(c.Message), p.commitPrefix())
		if !ok || len(c.Parents) != 1 || what != "" && step != what {
			return "", false, nil
		}
		what = step
		if c.Parents[0] == p.baseSHA {
			head, found, err := p.gh.ReadFile(ctx, p.file, p.headSHA)
			if err != nil || !found {
				return "", false, err
			}
			base, _, err := p.gh.ReadFile(ctx, p.file, p.baseSHA)
			if err != nil {
				return "", false, err
			}
			return what, !bytes.Equal(head, base), nil
		}
		sha = c.Parents[0]
	}
	return "", false, nil
}

func (p *proposal) spec() github.PRSpec {
	return prSpec(p.branch, p.file, p.what, p.items, p.r, p.in, p.files)
}

// Steps are the procedure's four steps.
func (p *proposal) Steps() []procedure.Step {
	dry := p.in.DryRun
	return []procedure.Step{
		&procedure.Func{StepName: StepAdvance, What: "advance the key set in " + p.file + " one step (jwks.Ring), or keep the step branch " + p.branch + " carries",
			DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
				if err := p.look(ctx); err != nil {
					return false, err
				}
				return p.kept, nil
			},
			DoFunc: func(ctx context.Context, _ *procedure.Record) error {
				step, files, err := advanceFile(p.in, p.file, p.items)
				if err != nil {
					return err
				}
				if !step.Changed() {
					p.nothing = true
					return nil
				}
				p.files, p.what = files, step.String()
				// Files the default branch has already: nothing to propose.
				changed, err := p.gh.ChangedFiles(ctx, p.baseSHA, p.files)
				if err != nil {
					return err
				}
				p.nothing = len(changed) == 0
				return nil
			}},
		&procedure.Func{StepName: StepBranch, What: "create branch " + p.branch + " from the default branch, or reset it to the default branch",
			DoneFunc: func(context.Context, *procedure.Record) (bool, error) {
				return p.nothing || p.kept || p.headSHA == p.baseSHA, nil
			},
			DoFunc: func(ctx context.Context, _ *procedure.Record) error {
				if dry {
					return nil
				}
				if p.headSHA == "" {
					return p.gh.CreateBranch(ctx, p.branch, p.baseSHA)
				}
				return p.gh.ResetBranch(ctx, p.branch, p.baseSHA)
			}},
		&procedure.Func{StepName: StepCommit, What: "commit " + p.file + " and its records to branch " + p.branch,
			DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
				if p.nothing {
					return true, nil
				}
				if p.headSHA == "" && dry {
					return false, nil
				}
				changed, err := p.gh.ChangedFiles(ctx, p.branch, p.files)
				return len(changed) == 0, err
			},
			DoFunc: func(ctx context.Context, _ *procedure.Record) error {
				p.committed = true
				if dry {
					return nil
				}
				// The records first, the key set last: a branch whose key-set
				// file changed carries the whole step.
				files := slices.Clone(p.files)
				slices.Reverse(files)
				_, err := p.gh.CommitFiles(ctx, p.branch, p.spec().CommitMessage, files)
				return err
			}},
		&procedure.Func{StepName: StepPullRequest, What: "open the pull request from " + p.branch + ", or update its title, description and labels",
			DoneFunc: func(ctx context.Context, _ *procedure.Record) (bool, error) {
				if p.nothing {
					return true, nil
				}
				open, ok, err := p.gh.PRUpToDate(ctx, p.spec())
				if err != nil {
					return false, err
				}
				if open != nil {
					p.open = open
				}
				return ok, nil
			},
			DoFunc: func(ctx context.Context, _ *procedure.Record) error {
				res, err := p.gh.EnsurePR(ctx, p.spec(), dry)
				if err != nil {
					return err
				}
				p.res = &res
				return nil
			}},
	}
}

// Procedure is the proposal on the engine, without a journal.
func (p *proposal) Procedure() *procedure.Procedure {
	return &procedure.Procedure{Name: "kube-rotate action: pull request for " + p.file, Steps: p.Steps()}
}

// run takes the steps and says what was done, as ProposeFiles did: nil
// when no step applies.
func (p *proposal) run(ctx context.Context) (*github.PRResult, error) {
	if _, err := p.Procedure().Run(ctx); err != nil {
		return nil, fmt.Errorf("proposing the rotation of %s: %w", p.file, err)
	}
	if p.nothing {
		return nil, nil
	}
	res := p.res
	if res == nil {
		res = &github.PRResult{Branch: p.branch, Action: github.ActionUnchanged}
		if p.open != nil {
			res.Number, res.URL = p.open.Number, p.open.URL
		}
	}
	if p.committed && res.Action == github.ActionUnchanged {
		res.Action = github.ActionUpdated
		if p.in.DryRun {
			res.Action = github.ActionWouldUpdate
		}
	}
	return res, nil
}
