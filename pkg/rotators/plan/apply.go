package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Options of Apply.
type Options struct {
	Plan    *planspec.Plan
	Clients secret.Clients
	// Namespace is the kubeconfig's, for items and plans that name none.
	Namespace string
	By        string
	Progress  io.Writer
	Now       func() time.Time
}

// Apply runs every item of the plan through create, set, test and finish,
// journaling each step, then restarts the consumers of every changed
// Secret once (coalesced). A re-run resumes at the first unfinished step of
// each item; a finished run is reported, not repeated.
func Apply(ctx context.Context, o Options) (*Journal, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	p := o.Plan
	ns := p.Spec.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	store := &Store{Client: o.Clients.Kube, Namespace: ns, Plan: p.Metadata.Name}
	j, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case j == nil:
		if err := Preflight(ctx, o.Clients.Kube, p, o.Namespace); err != nil {
			return nil, err
		}
		now := o.Now().UTC().Truncate(time.Second)
		j = &Journal{Plan: p.Metadata.Name, Fingerprint: p.Fingerprint(), RotationID: NewRotationID(now), Started: now}
		if err := store.Save(ctx, j); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Progress, "plan %s: rotation %s started\n", p.Metadata.Name, j.RotationID)
	case j.Fingerprint != p.Fingerprint():
		return j, fmt.Errorf("plan %s changed since rotation %s started: apply the plan it started with, or undo it (kubectl rotate undo -f PLAN) first", p.Metadata.Name, j.RotationID)
	case j.done(p):
		fmt.Fprintf(o.Progress, "plan %s: rotation %s already finished (%s); nothing to do: `kubectl rotate undo -f` rolls it back\n", p.Metadata.Name, j.RotationID, j.Updated.Format(time.RFC3339))
		return j, nil
	default:
		fmt.Fprintf(o.Progress, "plan %s: resuming rotation %s\n", p.Metadata.Name, j.RotationID)
	}
	items, err := p.Order()
	if err != nil {
		return j, err
	}
	for _, it := range items {
		apply := applyItem
		if it.JWKS != nil {
			apply = applyKeySet
		}
		if err := apply(ctx, o, store, j, it); err != nil {
			return j, err
		}
	}
	if p.Spec.Restart == planspec.RestartCoalesced && !j.Restarted {
		restarted, err := restartCoalesced(ctx, o, items)
		j.Restarts = append(j.Restarts, restarted...)
		if err != nil {
			return j, err
		}
		j.Restarted = true
		if err := store.Save(ctx, j); err != nil {
			return j, err
		}
	}
	return j, nil
}

// applyItem takes one item from its next step to finished.
func applyItem(ctx context.Context, o Options, store *Store, j *Journal, it *planspec.Item) error {
	p := o.Plan
	ns := it.Namespace(o.Namespace)
	step := j.Next(it.Name)
	if step == "" {
		return nil
	}
	cs, tokens, err := SecretChanges(it.Secret)
	if err != nil {
		return fmt.Errorf("item %s: %w", it.Name, err)
	}
	var pend *Pending
	for ; step != ""; step = j.Next(it.Name) {
		if pend == nil {
			// create makes the values; later steps (also after a crash)
			// read the same ones back from NAME-pending.
			if pend, err = CreatePending(ctx, o.Clients.Kube, ns, it.Name, j.RotationID, it.Secret, cs, tokens); err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
		}
		switch step {
		case StepCreated:
			j.item(it.Name).Fingerprints = pend.Fingerprints()
			fmt.Fprintf(o.Progress, "item %s: new values in secret/%s\n", it.Name, PendingName(it.SecretName()))
		case StepSet, StepTested:
			res, err := RunHook(ctx, o.Clients.Kube, p, it, step, ns, j.RotationID, pend)
			j.HookResult(it.Name, step, res)
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
			if res == nil {
				// No hook: nothing happened that a crash could lose; the
				// next step's journal write records this one too.
				j.Mark(it.Name, step, o.Now())
				continue
			}
			fmt.Fprintf(o.Progress, "item %s: %s hook succeeded%s\n", it.Name, step, jobNote(res.Job))
		case StepFinished:
			res, err := FinishSecret(ctx, o.Clients, FinishOptions{Namespace: ns, Item: it.Name, Secret: it.SecretName(), Pending: pend,
				CreateKeys: it.Secret.CreateKeys, Restart: p.Spec.Restart == planspec.RestartPerItem, Timeout: p.Spec.Timeout.Duration,
				PreviousTTL: p.Spec.PreviousTTL.Duration, By: o.By, Progress: o.Progress, Deliveries: deliveries(it, pend)})
			if res != nil {
				j.Restarts = append(j.Restarts, res.Restarted...)
			}
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
			fmt.Fprintf(o.Progress, "item %s: secret/%s holds the new values; the old ones are in secret/%s-previous\n", it.Name, it.SecretName(), it.SecretName())
			if live, gerr := o.Clients.Kube.CoreV1().Secrets(ns).Get(ctx, it.SecretName(), metav1.GetOptions{}); gerr == nil {
				if eerr := recordEvent(ctx, o.Clients.Kube, live, p.Metadata.Name, it.Name, j.RotationID, pend.Fingerprints(), o.Now()); eerr != nil {
					fmt.Fprintf(o.Progress, "item %s: warning: no Event recorded on secret/%s: %v\n", it.Name, it.SecretName(), eerr)
				}
			}
		}
		j.Mark(it.Name, step, o.Now())
		if err := store.Save(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// fail journals a failed step and returns an error that says how to go on.
func fail(ctx context.Context, store *Store, j *Journal, item, step string, err error) error {
	j.Fail(item, step, err)
	if serr := store.Save(ctx, j); serr != nil {
		return errors.Join(err, serr)
	}
	return fmt.Errorf("%w; step %s failed (the Secret in use changes only at finish): fix the cause and re-run `kubectl rotate apply` to resume at %s, or roll the run back with `kubectl rotate undo -f` the plan (journal: configmap/%s)", err, step, step, JournalName(j.Plan))
}

// restartCoalesced restarts every workload that reads a changed key once,
// after all writes, and waits for them.
func restartCoalesced(ctx context.Context, o Options, items []*planspec.Item) ([]string, error) {
	byNS := map[string]map[string][]string{}
	for _, it := range items {
		ns := it.Namespace(o.Namespace)
		if byNS[ns] == nil {
			byNS[ns] = map[string][]string{}
		}
		byNS[ns][it.SecretName()] = append(byNS[ns][it.SecretName()], it.Keys()...)
	}
	namespaces := make([]string, 0, len(byNS))
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	var all []consumers.Workload
	for _, ns := range namespaces {
		ix, err := consumers.NewIndex(ctx, o.Clients.Kube, ns)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for secret, keys := range byNS[ns] {
			for _, w := range ix.UsersOf(secret, keys) {
				if id := w.Kind + "/" + w.Name; !seen[id] {
					seen[id] = true
					all = append(all, w)
				}
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return consumers.RestartAndWait(ctx, o.Clients.Kube, o.Clients.Dynamic, all, o.Progress, o.Plan.Spec.Timeout.Duration)
}

// deliveries are where the item's hashed tokens go.
func deliveries(it *planspec.Item, pend *Pending) []Delivery {
	h := it.Secret.Hashed
	if h == nil {
		return nil
	}
	name, key, _ := h.DeliverTo()
	return []Delivery{{Secret: name, Key: key, Token: pend.Tokens[h.Key]}}
}

// done reports whether every item finished and the restarts happened.
func (j *Journal) done(p *planspec.Plan) bool {
	for _, it := range p.Spec.Items {
		if j.Next(it.Name) != "" {
			return false
		}
	}
	return j.Restarted || p.Spec.Restart != planspec.RestartCoalesced
}
