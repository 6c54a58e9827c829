package plan

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/hooks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// secretItem is a plan item that gives keys of a Secret new values.
type secretItem struct {
	pr *run
	it *planspec.Item
	ns string
}

// itemState is what the objects show of this rotation's values.
type itemState struct {
	// pending is NAME-pending when it holds this rotation's values.
	pending *corev1.Secret
	// finished: NAME-pending is gone and the Secret holds the values
	// create made (their fingerprints are journaled).
	finished bool
}

func (s *secretItem) fact(name string) string { return itemFact(s.it.Name, name) }

// state reads NAME-pending and the Secret.
func (s *secretItem) state(ctx context.Context, r *procedure.Record) (itemState, error) {
	if !started(r) {
		return itemState{}, nil
	}
	name := s.it.SecretName()
	secrets := s.pr.o.Clients.Kube.CoreV1().Secrets(s.ns)
	pend, err := secrets.Get(ctx, PendingName(name), metav1.GetOptions{})
	switch {
	case err == nil:
		if pend.Labels[PendingOfLabel] == name && pend.Annotations[RotationIDAnnotation] == r.String(factRotationID) {
			return itemState{pending: pend}, nil
		}
		// Not this rotation's: create refuses it with the reason.
		return itemState{}, nil
	case !apierrors.IsNotFound(err):
		return itemState{}, fmt.Errorf("item %s: reading secret/%s: %w", s.it.Name, PendingName(name), err)
	}
	var fps map[string]string
	if ok, err := r.Get(s.fact(factFingerprints), &fps); err != nil || !ok || len(fps) == 0 {
		return itemState{}, err
	}
	live, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return itemState{}, nil
	}
	if err != nil {
		return itemState{}, fmt.Errorf("item %s: reading secret/%s: %w", s.it.Name, name, err)
	}
	for k, fp := range fps {
		if v, ok := live.Data[k]; !ok || values.Fingerprint(v) != fp {
			return itemState{}, nil
		}
	}
	return itemState{finished: true}, nil
}

// pendingFingerprints are the fingerprints of the values in NAME-pending
// (not of the tokens kept beside them).
func pendingFingerprints(ps *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range ps.Data {
		if !strings.HasPrefix(k, TokenKeyPrefix) {
			out[k] = values.Fingerprint(v)
		}
	}
	return out
}

// read reads back this rotation's pending values; they must be there.
func (s *secretItem) read(ctx context.Context, r *procedure.Record) (*Pending, error) {
	cs, tokens, err := SecretChanges(s.it.Secret)
	if err != nil {
		return nil, fmt.Errorf("item %s: %w", s.it.Name, err)
	}
	pend, err := ReadPending(ctx, s.pr.o.Clients.Kube, s.ns, s.it.Name, r.String(factRotationID), s.it.Secret, cs, tokens)
	if err != nil {
		return nil, err
	}
	if pend == nil {
		return nil, fmt.Errorf("item %s: secret/%s is gone and secret/%s does not hold this rotation's values: undo with %s, then apply again",
			s.it.Name, PendingName(s.it.SecretName()), s.it.SecretName(), s.pr.undoCommand())
	}
	return pend, nil
}

func (s *secretItem) steps() []*step {
	it, o := s.it, s.pr.o
	mk := func(short, what string) *step {
		return &step{item: it, short: short, Func: procedure.Func{StepName: stepName(it.Name, short), What: what}}
	}

	create := mk(StepCreated, "new values in secret/"+PendingName(it.SecretName()))
	// Derived from NAME-pending: its journal write waits for the next
	// step's (a run killed before that finds the pending values there).
	create.DeferSave = true
	create.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
		st, err := s.state(ctx, r)
		return st.pending != nil || st.finished, err
	}
	create.DoFunc = func(ctx context.Context, r *procedure.Record) error {
		cs, tokens, err := SecretChanges(it.Secret)
		if err != nil {
			return fmt.Errorf("item %s: %w", it.Name, err)
		}
		pend, err := CreatePending(ctx, o.Clients.Kube, s.ns, it.Name, r.String(factRotationID), it.Secret, cs, tokens)
		if err != nil {
			return err
		}
		if err := r.Put(s.fact(factFingerprints), pend.Fingerprints()); err != nil {
			return err
		}
		fmt.Fprintf(o.Progress, "item %s: new values in secret/%s\n", it.Name, PendingName(it.SecretName()))
		return nil
	}
	create.UndoFunc = func(ctx context.Context, r *procedure.Record) error {
		st, err := s.state(ctx, r)
		if err != nil || st.pending == nil {
			return err
		}
		name := PendingName(it.SecretName())
		err = o.Clients.Kube.CoreV1().Secrets(s.ns).Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &st.pending.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("item %s: deleting secret/%s: %w", it.Name, name, err)
		}
		fmt.Fprintf(o.Progress, "item %s: pending values deleted; secret/%s was never changed\n", it.Name, it.SecretName())
		return nil
	}

	hook := func(short string, h *planspec.Hook) *step {
		st := mk(short, hookWhat(it, h))
		st.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
			if !started(r) {
				return false, nil
			}
			if h == nil {
				return true, nil
			}
			state, err := s.state(ctx, r)
			if err != nil || state.finished {
				return state.finished, err
			}
			// A hook is done for the values it ran with: new pending
			// values (create ran again) run it again.
			return state.pending != nil && r.String(s.fact(factRanFor+short)) == digest(pendingFingerprints(state.pending)), nil
		}
		st.DoFunc = func(ctx context.Context, r *procedure.Record) error {
			if h == nil {
				return nil
			}
			pend, err := s.read(ctx, r)
			if err != nil {
				return err
			}
			res, err := RunHook(ctx, o.Clients.Kube, o.Plan, it, short, s.ns, r.String(factRotationID), pend)
			if perr := putHookResult(r, it.Name, short, res); perr != nil && err == nil {
				err = perr
			}
			if err != nil {
				return err
			}
			if err := r.Put(s.fact(factRanFor+short), digest(pend.Fingerprints())); err != nil {
				return err
			}
			fmt.Fprintf(o.Progress, "item %s: %s hook succeeded%s\n", it.Name, short, jobNote(res.Job))
			return nil
		}
		if short == StepSet && h != nil {
			st.UndoFunc = func(context.Context, *procedure.Record) error {
				fmt.Fprintf(o.Progress, "item %s: its set hook ran: the backing system still has the new value; set it back if needed\n", it.Name)
				return nil
			}
		}
		return st
	}

	finish := mk(StepFinished, "values into secret/"+it.SecretName()+", old ones kept in secret/"+it.SecretName()+planspec.PreviousSuffix)
	finish.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
		st, err := s.state(ctx, r)
		return st.finished, err
	}
	finish.DoFunc = func(ctx context.Context, r *procedure.Record) error {
		pend, err := s.read(ctx, r)
		if err != nil {
			return err
		}
		// Journal what the values are before they move: a run killed after
		// the move knows from them that it finished.
		if err := r.Put(s.fact(factFingerprints), pend.Fingerprints()); err != nil {
			return err
		}
		if err := s.pr.checkpoint(ctx, r); err != nil {
			return err
		}
		p := o.Plan
		ix, err := s.pr.index(ctx, s.ns)
		if err != nil {
			return err
		}
		res, err := FinishSecret(ctx, o.Clients, FinishOptions{Index: ix, Namespace: s.ns, Item: it.Name, Secret: it.SecretName(), Pending: pend,
			CreateKeys: it.Secret.CreateKeys, Restart: p.Spec.Restart == planspec.RestartPerItem, Timeout: p.Spec.Timeout.Duration,
			PreviousTTL: p.Spec.PreviousTTL.Duration, ReplacePrevious: p.Spec.ReplacePrevious, By: o.By, Progress: o.Progress, Deliveries: deliveries(it, pend)})
		if res != nil {
			if ferr := appendFact(r, factRestarts, res.Restarted...); ferr != nil && err == nil {
				err = ferr
			}
		}
		if err != nil {
			return err
		}
		// The coalesced restart runs again after a finish that ran again.
		r.Unmark(StepRestart)
		fmt.Fprintf(o.Progress, "item %s: secret/%s holds the new values; the old ones are in secret/%s-previous\n", it.Name, it.SecretName(), it.SecretName())
		if live, gerr := o.Clients.Kube.CoreV1().Secrets(s.ns).Get(ctx, it.SecretName(), metav1.GetOptions{}); gerr == nil {
			if eerr := recordEvent(ctx, o.Clients.Kube, live, p.Metadata.Name, it.Name, r.String(factRotationID), pend.Fingerprints(), o.Now()); eerr != nil {
				fmt.Fprintf(o.Progress, "item %s: warning: no Event recorded on secret/%s: %v\n", it.Name, it.SecretName(), eerr)
			}
		}
		return nil
	}
	finish.UndoFunc = func(ctx context.Context, r *procedure.Record) error {
		p := o.Plan
		if _, err := secret.Undo(ctx, o.Clients, secret.UndoOptions{Namespace: s.ns, Name: it.SecretName(),
			Restart: p.Spec.Restart == planspec.RestartPerItem, Timeout: p.Spec.Timeout.Duration, By: o.By, Progress: o.Progress}); err != nil {
			return fmt.Errorf("item %s: %w", it.Name, err)
		}
		return appendFact(r, factRestored, it.Name)
	}

	return []*step{create, hook(StepSet, it.Hooks.Set), hook(StepTested, it.Hooks.Test), finish}
}

// putHookResult journals the result of an item's hook (nil: no hook ran).
func putHookResult(r *procedure.Record, item, step string, res *hooks.Result) error {
	if res == nil {
		return nil
	}
	all := map[string]*hooks.Result{}
	return r.Modify(itemFact(item, factHooks), &all, func() error {
		all[step] = res
		return nil
	})
}

// hookWhat says what an item's set or test step does.
func hookWhat(it *planspec.Item, h *planspec.Hook) string {
	switch {
	case h == nil:
		return "no hook"
	case h.Exec != nil:
		return "run " + strings.Join(h.Exec.Command, " ") + " (values in a file or on stdin, never on the command line)"
	default:
		return "run a Job mounting secret/" + PendingName(it.SecretName()) + " and secret/" + it.SecretName()
	}
}
