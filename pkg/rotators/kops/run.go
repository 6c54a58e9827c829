package kops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kops/pkg/apis/kops/registry"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/satokens"
	"github.com/kube-rotate/kube-rotate/pkg/display"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// Runner runs the kops CLI with args (update, rolling-update, export).
type Runner func(ctx context.Context, args []string) error

// ExecRunner runs `kops` from PATH with its output passed through.
func ExecRunner(out, errOut io.Writer) Runner {
	return func(ctx context.Context, args []string) error {
		path, err := exec.LookPath("kops")
		if err != nil {
			return fmt.Errorf("the kops CLI is not on PATH: install kops %s or run the printed commands yourself", "v1.36")
		}
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Stdout, cmd.Stderr, cmd.Env = out, errOut, os.Environ()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("kops %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
}

// ExecKopsVersion returns the version of the kops CLI on PATH (`kops
// version --short`).
func ExecKopsVersion(ctx context.Context) (string, error) {
	path, err := exec.LookPath("kops")
	if err != nil {
		return "", fmt.Errorf("the kops CLI is not on PATH: install kops %s or run the printed commands yourself", "v1.36")
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "version", "--short")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kops version --short: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimPrefix(strings.TrimSpace(out.String()), "v"), nil
}

// RunOptions of Run.
type RunOptions struct {
	// Yes runs the steps; without it Run prints them and changes nothing.
	Yes bool
	// Runner runs the kops CLI steps.
	Runner Runner
	Out    io.Writer
	// CLI are the kops flags; when CLISet is false the flags journaled by
	// the rotation's earlier run are used (so a re-run does what the run
	// it resumes did), else kOps' defaults.
	CLI    CLIOptions
	CLISet bool
	// Done says a person did the step the run stopped at (--done STEP).
	Done string
	// ReissueTokens reissues the legacy service-account token Secrets the
	// distrust would break, instead of stopping for a person.
	ReissueTokens bool
	// TokenTimeout bounds the wait for each reissued token.
	TokenTimeout time.Duration
	// KubeClient opens the cluster's API with a kubeconfig and context
	// (the run's --kubeconfig and --context, as journaled; "" for the
	// default kubeconfig and the cluster's name), for the service-account
	// tokens; it also says which kubeconfig and context. nil: the tokens
	// are a person's to check.
	KubeClient func(ctx context.Context, kubeconfig, kubeContext string) (kubernetes.Interface, string, error)
	// KopsVersion returns the version of the kops CLI the steps run; nil
	// skips the check against the cluster's kops-version.txt (tests).
	KopsVersion func(ctx context.Context) (string, error)
}

// hook, for tests: called before ("before") and after ("after") each
// step's work; an error fails the step there, as a crash would.
type hook func(step, phase string) error

// runState is one Run's view of the keysets, read again after every step.
type runState struct {
	s *Store
	o RunOptions
	v *view
}

func (p *runState) cur(ctx context.Context) (*view, error) {
	if p.v == nil {
		v, err := p.s.view(ctx)
		if err != nil {
			return nil, err
		}
		p.v = v
	}
	return p.v, nil
}

func (p *runState) at(step, phase string) error {
	if p.s.hook != nil {
		return p.s.hook(step, phase)
	}
	return nil
}

// Steps are kOps' procedure (docs/operations/rotate-secrets.md) as engine
// steps, in order (Procedure lists their names): the keyset steps stage,
// promote and distrust, each followed by kops update cluster --yes, kops
// rolling-update cluster --yes, kops validate cluster --wait and kops
// export kubecfg, and the steps only a person can do (PersonStep).
//
// Done: stage, promote and distrust are done when the keysets are past
// them; the other steps of a stage are done when the keysets are past
// that stage, when they do not apply to this rotation (Scope), or when
// the journal marks them for the key ids the keysets hold now
// (validMarks). Every Do first ties the journal to those ids (bind), so
// the marks it writes say which keys they were made for.
func (s *Store) Steps(ctx context.Context, o RunOptions) []procedure.Step {
	p := &runState{s: s, o: o}
	return p.steps(ctx)
}

// pastStage is the stage whose end makes a step done.
func pastStage(step string) Stage {
	for _, st := range []Stage{StageIdle, StageStaged, StagePromoted, StageDistrusted} {
		for _, name := range stageSteps[st] {
			if name == step {
				if st == StageDistrusted {
					return StageDistrusted // never past: the final steps are journaled
				}
				return st
			}
		}
	}
	return StageDistrusted
}

func (p *runState) steps(ctx context.Context) []procedure.Step {
	s := p.s
	var steps []procedure.Step
	for _, name := range Procedure {
		name := name
		f := &procedure.Func{StepName: name, What: p.o.CLI.Command(ctx, name, s.Cluster, s.StateStore)}
		f.UndoFunc = func(ctx context.Context, _ *procedure.Record) error {
			return fmt.Errorf("undo a stage with `%s rollback` (see `%s status`)", display.KopsRotate(ctx), display.KopsRotate(ctx))
		}
		past := pastStage(name)
		keyset := KeysetStepName(name)
		f.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
			v, err := p.cur(ctx)
			if err != nil {
				return false, err
			}
			if v.past(past) {
				return true, nil
			}
			if keyset {
				return false, nil
			}
			if !ScopeOf(v.sts, p.o.CLI).Applies(name) {
				return true, nil
			}
			marks, err := validMarks(r, v)
			if err != nil {
				return false, err
			}
			_, ok := marks[name]
			return ok, nil
		}
		f.DoFunc = func(ctx context.Context, r *procedure.Record) error {
			if !PersonStep(name) {
				fmt.Fprintf(p.o.Out, "==> %s\n", f.What)
			}
			defer func() { p.v = nil }() // read the keysets again after any step
			v, err := p.cur(ctx)
			if err != nil {
				return err
			}
			if err := bind(r, v, time.Now()); err != nil {
				return err
			}
			if err := r.Put(FactCLI, p.o.CLI); err != nil {
				return err
			}
			if err := p.at(name, "before"); err != nil {
				return err
			}
			var changes []Change
			switch {
			case name == StepStage:
				changes, err = s.Stage(ctx, s.Selected)
			case name == StepPromote:
				if changes, err = s.Promote(ctx, s.Selected); err == nil {
					err = RecordPromote(r, changes)
				}
			case name == StepDistrust:
				if err = exportGate(ctx, r.Steps); err == nil {
					changes, err = s.Distrust(ctx, s.Selected, false)
				}
			case PersonStep(name):
				err = p.person(ctx, name, r, v)
			default:
				err = p.o.Runner(ctx, append(p.o.CLI.Args(name), "--name", s.Cluster, "--state", s.StateStore))
			}
			for _, c := range changes {
				fmt.Fprintf(p.o.Out, "    %s\n", c)
			}
			if err != nil {
				return err
			}
			if err := p.at(name, "after"); err != nil {
				return err
			}
			if keyset {
				// The new keypairs are the rotation's ids from here on.
				p.v = nil
				v, err := p.cur(ctx)
				if err != nil {
					return err
				}
				return bind(r, v, time.Now())
			}
			return nil
		}
		steps = append(steps, f)
	}
	return steps
}

// FactCLI is the journal fact with the kops flags the rotation's run
// used, so that a re-run and `status` say the same command lines.
const FactCLI = "kops-cli"

// person does a person's step: it is done when the run was re-run with
// --done for it (the run stopped there before), and for the
// service-account tokens when there are none or they were reissued; else
// the run stops there (procedure.WaitError) and says what to do.
func (p *runState) person(ctx context.Context, step string, r *procedure.Record, v *view) error {
	if p.o.Done == step && r.Waiting == step {
		fmt.Fprintf(p.o.Out, "==> %s: done by a person (--done %s)\n", step, step)
		return nil
	}
	if step == StepServiceAcctTokens {
		return p.tokens(ctx, step)
	}
	var b strings.Builder
	target := fmt.Sprintf("--name %s --state %s", p.s.Cluster, p.s.StateStore)
	kubeconfig := "The kubeconfig kops export kubecfg wrote ($KUBECONFIG or ~/.kube/config)"
	if p.o.CLI.Kubeconfig != "" {
		kubeconfig = "The kubeconfig " + p.o.CLI.Kubeconfig
	}
	switch step {
	case StepApply1, StepApply2, StepApply3:
		fmt.Fprintf(&b, "kops wrote the cluster's Terraform to %s. Apply it there (terraform plan, then terraform apply):\n"+
			"the rolling update that follows replaces the instances with what it creates.\n", p.o.CLI.Out)
	case StepDistributeCA:
		fmt.Fprintf(&b, "Distribute the new certificate-authority-data (kOps' procedure, step 2).\n"+
			"%s now holds, for context %s, a CA bundle with the new kubernetes-ca certificate:\n", kubeconfig, p.s.Cluster)
		p.caBundle(ctx, &b)
		fmt.Fprintf(&b, "Hand that certificate-authority-data to every other client of this cluster's Kubernetes API\n"+
			"(CI systems, other people's kubeconfigs, anything that pins the CA) before the promote: after it the API\n"+
			"server's certificate is issued by the new CA, and a client without it stops trusting the server.\n"+
			"Skip this only if the API is reached through a load balancer with its own certificate.\n")
	case StepDistributeCreds:
		what := "new admin credentials, issued by the new kubernetes-ca"
		if p.o.CLI.Admin != 0 {
			what += fmt.Sprintf(" and valid for %s", p.o.CLI.Admin)
		}
		if p.o.CLI.User != "" || p.o.CLI.AuthPlugin {
			what = "the cluster's CA data and the user you chose (--user / --auth-plugin)"
		}
		fmt.Fprintf(&b, "Distribute new admin credentials (kOps' procedure, step 4).\n"+
			"%s now holds, for context %s, %s.\n"+
			"Everyone else with cluster admin credentials must get new ones (kops export kubecfg --admin %s) before the\n"+
			"distrust: credentials issued by the old CA stop working then.\n", kubeconfig, p.s.Cluster, what, target)
	}
	fmt.Fprintf(&b, "When it is done, go on with:\n  %s run --yes --done %s %s", display.KopsRotate(ctx), step, target)
	return &procedure.WaitError{Message: b.String()}
}

// caBundle writes the trusted kubernetes-ca certificates: ids, subjects
// and SHA-256 fingerprints (public data; nothing secret is printed).
func (p *runState) caBundle(ctx context.Context, w io.Writer) {
	sts, err := p.s.Statuses(ctx, []string{"kubernetes-ca"})
	if err != nil || len(sts) != 1 {
		return
	}
	st := sts[0]
	line := func(role string, it Item) {
		fmt.Fprintf(w, "  %-10s %s  sha256:%s\n", role, it.ID, it.Fingerprint)
	}
	line("primary", st.Primary)
	for _, it := range st.Staged {
		line("new", it)
	}
	for _, it := range st.Previous {
		line("previous", it)
	}
	for _, it := range st.TrustOnly {
		line("trust-only", it)
	}
}

// tokens checks the legacy service-account token Secrets, which the
// distrust breaks: none is done; with ReissueTokens they are issued again
// (the new key signs once the promote is rolled out); else the run stops
// with the list. A cluster that cannot be read is a person's to check.
func (p *runState) tokens(ctx context.Context, step string) error {
	tool, target := display.KopsRotate(ctx), fmt.Sprintf("--name %s --state %s", p.s.Cluster, p.s.StateStore)
	goOn := fmt.Sprintf("  %s run --yes --reissue-tokens %s   (issue them again with the new key)\n"+
		"  %s run --yes --done %s %s   (their users no longer need them, or got new ones)", tool, target, tool, step, target)
	if p.o.KubeClient == nil {
		return &procedure.WaitError{Message: "Legacy service-account token Secrets are signed with the service-account key and stop working at the distrust.\n" +
			"Check them with `" + tool + " service-account-tokens --kubeconfig FILE`, then go on with:\n" + goOn}
	}
	kc, where, err := p.o.KubeClient(ctx, p.o.CLI.Kubeconfig, p.o.CLI.Context)
	var toks []satokens.Token
	if err == nil {
		toks, err = satokens.List(ctx, kc, "")
	}
	if err != nil {
		return &procedure.WaitError{Message: fmt.Sprintf("Cannot list the legacy service-account token Secrets (%s): %v.\n"+
			"They stop working at the distrust. Pass --kubeconfig/--context for the cluster, or check them yourself with\n"+
			"`%s service-account-tokens --kubeconfig FILE`, then go on with:\n%s", where, err, tool, goOn)}
	}
	if len(toks) == 0 {
		fmt.Fprintf(p.o.Out, "==> service-account tokens: none of type kubernetes.io/service-account-token (%s): the distrust breaks none\n", where)
		return nil
	}
	if !p.o.ReissueTokens {
		var b strings.Builder
		fmt.Fprintf(&b, "%d legacy service-account token Secret(s) (%s) are signed with the old service-account key and stop working at the distrust:\n", len(toks), where)
		for _, t := range toks {
			fmt.Fprintf(&b, "  %s (serviceaccount %s)\n", t.Ref(), t.ServiceAccount)
		}
		b.WriteString("Go on with one of:\n" + goOn)
		return &procedure.WaitError{Message: b.String()}
	}
	fmt.Fprintf(p.o.Out, "==> reissuing %d legacy service-account token Secret(s) (%s)\n", len(toks), where)
	timeout := p.o.TokenTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	for _, t := range toks {
		if err := satokens.Reissue(ctx, kc, t, timeout); err != nil {
			return err
		}
		fmt.Fprintf(p.o.Out, "    %s: token issued again\n", t.Ref())
	}
	return nil
}

// procedure is the rotation on the engine, journaled in the state store.
// The journal is kept when the rotation completes: it is what says the
// final roll and export were done, so the rotation is over (Status, Run).
func (p *runState) procedure(ctx context.Context) (*procedure.Procedure, error) {
	j, err := p.s.Journal()
	if err != nil {
		return nil, err
	}
	return &procedure.Procedure{Name: p.s.procName(), Steps: p.steps(ctx), Journal: j, KeepJournal: true,
		UndoCommand: display.KopsRotate(ctx) + " rollback --name " + p.s.Cluster + " --state " + p.s.StateStore + " (one stage at a time)"}, nil
}

// prepare reads the journal before a run: it takes the kops flags the
// rotation's run journaled unless new ones are given, and checks --done
// against the step the run stopped at. Nothing is written.
func (p *runState) prepare(ctx context.Context) error {
	j, err := p.s.Journal()
	if err != nil {
		return err
	}
	r, err := j.Load(ctx)
	if err != nil {
		return err
	}
	var marks map[string]time.Time
	if r != nil {
		v, err := p.cur(ctx)
		if err != nil {
			return err
		}
		if marks, err = validMarks(r, v); err != nil {
			return err
		}
	}
	if !p.o.CLISet && len(marks) > 0 {
		var cli CLIOptions
		if found, err := r.Get(FactCLI, &cli); err != nil {
			return err
		} else if found {
			p.o.CLI = cli
		}
	}
	if err := p.o.CLI.Validate(); err != nil {
		return err
	}
	if p.o.Done != "" {
		waiting := ""
		if r != nil && len(marks) > 0 {
			waiting = r.Waiting
		}
		_, done := marks[p.o.Done]
		switch {
		case !PersonStep(p.o.Done):
			return fmt.Errorf("--done %s: not a step a person does; those are %s", p.o.Done, strings.Join(personSteps(), ", "))
		case done:
			// Done already: the same command re-run after a later failure.
		case waiting == "":
			return fmt.Errorf("--done %s: the run is not waiting for a person: drop --done (it only confirms the step a run stopped at, after printing what to do)", p.o.Done)
		case waiting != p.o.Done:
			return fmt.Errorf("--done %s: the run is waiting at %s, not %s: do that step, then pass --done %s", p.o.Done, waiting, p.o.Done, waiting)
		}
	}
	return nil
}

func personSteps() []string {
	var out []string
	for _, st := range Procedure {
		if PersonStep(st) {
			out = append(out, st)
		}
	}
	return out
}

// CheckKopsVersion refuses a kops CLI whose version is not the one that
// last updated the cluster (<configBase>/kops-version.txt, written by
// kops update cluster: pkg/model/config.go). kOps itself refuses an older
// one (upup/pkg/fi/cloudup/apply_cluster.go, "kops version older than
// last used to update the cluster"), after steps have run; a newer one
// would upgrade the cluster in the middle of the rotation. No file (never
// updated) passes.
func (s *Store) CheckKopsVersion(ctx context.Context, have string) error {
	base, err := registry.ConfigBase(s.vfsContext, s.cluster)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	b, err := base.Join(registry.PathKopsVersionUpdated).ReadFile(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s of cluster %s: %w", registry.PathKopsVersionUpdated, s.Cluster, err)
	}
	want := strings.TrimPrefix(strings.TrimSpace(string(b)), "v")
	if have == want {
		return nil
	}
	hv, herr := semver.Parse(have)
	wv, werr := semver.Parse(want)
	if herr == nil && werr == nil && hv.LT(wv) {
		return fmt.Errorf("the kops on PATH is %s, older than %s, which last updated cluster %s (%s): kops refuses to downgrade a cluster; put kops %s on PATH and re-run", have, want, s.Cluster, registry.PathKopsVersionUpdated, want)
	}
	return fmt.Errorf("the kops on PATH is %s, but cluster %s was last updated by kops %s (%s): a rotation must not upgrade the cluster on the way; put kops %s on PATH, or upgrade the cluster first (kops update cluster, rolling-update) and re-run", have, s.Cluster, want, registry.PathKopsVersionUpdated, want)
}

// Run drives the whole procedure from where it stands on the engine
// (pkg/procedure), one step at a time, journaling each finished step in
// the state store so a run killed at any point resumes at the right step.
// It stops at a person's step (a *procedure.WaitError, journaled): a
// re-run with Done set to that step goes on. A finished rotation is
// reported, not restarted: `kops-rotate stage` starts the next one.
func (s *Store) Run(ctx context.Context, o RunOptions) error {
	p := &runState{s: s, o: o}
	if err := p.prepare(ctx); err != nil {
		return err
	}
	proc, err := p.procedure(ctx)
	if err != nil {
		return err
	}
	plan, r, err := proc.Plan(ctx)
	if err != nil {
		return err
	}
	var next []string
	for _, st := range plan {
		if st.Done {
			continue
		}
		next = append(next, st.What)
		if KeysetStepName(st.Name) {
			break // the keyset step that ends the stage
		}
	}
	if len(next) == 0 {
		complete(ctx, o.Out, r)
		return nil
	}
	if !o.Yes {
		v, err := p.cur(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Stage: %s. Steps to run now (nothing was changed; add --yes to run them):\n", v.stage)
		for _, c := range next {
			fmt.Fprintf(o.Out, "  %s\n", c)
		}
		return nil
	}
	if o.KopsVersion != nil {
		have, err := o.KopsVersion(ctx)
		if err != nil {
			return err
		}
		if err := s.CheckKopsVersion(ctx, have); err != nil {
			return err
		}
	}
	r, err = proc.Run(ctx)
	if err != nil {
		return err
	}
	complete(ctx, o.Out, r)
	return nil
}

func complete(ctx context.Context, out io.Writer, r *procedure.Record) {
	fmt.Fprintf(out, "Rotation complete (finished %s). `%s stage all` starts the next one.\n", r.Steps[StepExportAfterDistr].Format("2006-01-02T15:04:05Z"), display.KopsRotate(ctx))
	var ids map[string]string
	if found, err := r.Get(FactKeys, &ids); err == nil && found && ids["kubernetes-ca"] != "" {
		fmt.Fprintln(out, "Last, a person (kOps' procedure, step 6): hand the kubeconfig's certificate-authority-data, now without the old CA, to every other client of the Kubernetes API.")
	}
}

// ExecValidate returns the check the single promote and distrust commands
// run when the journal has no validation since the rolling update (see
// Store.Validate): the kops CLI's version against the cluster's, then one
// `kops validate cluster` (with --kubeconfig when given). kops' own
// output is kept to its last line for the error.
func (s *Store) ExecValidate(kubeconfig string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		have, err := ExecKopsVersion(ctx)
		if err != nil {
			return &cannotValidate{err}
		}
		if err := s.CheckKopsVersion(ctx, have); err != nil {
			return &cannotValidate{err}
		}
		args := []string{"validate", "cluster", "--name", s.Cluster, "--state", s.StateStore}
		if kubeconfig != "" {
			args = append(args, "--kubeconfig", kubeconfig)
		}
		var out bytes.Buffer
		if err := ExecRunner(&out, &out)(ctx, args); err != nil {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(lines[len(lines)-1]))
		}
		return nil
	}
}

// cannotValidate is an error that kept kops validate cluster from running
// (no kops on PATH, another kops version): not a cluster that fails it.
type cannotValidate struct{ err error }

func (e *cannotValidate) Error() string { return e.err.Error() }
func (e *cannotValidate) Unwrap() error { return e.err }
