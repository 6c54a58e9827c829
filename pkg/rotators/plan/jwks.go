package plan

import (
	"context"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
	rotatejwk "github.com/kube-rotate/kube-rotate/pkg/rotators/jwk"
)

// keySetTarget is the item's key set, for the operations the jwk
// rotation has (pkg/rotators/jwk): plans and `jwk rotate` publish, restart
// and promote through the same code.
func keySetTarget(o Options, it *planspec.Item) *rotatejwk.Target {
	spec := it.JWKS
	return &rotatejwk.Target{Kube: o.Clients.Kube, Dynamic: o.Clients.Dynamic, Namespace: it.Namespace(o.Namespace),
		Secret: spec.Secret, Key: spec.Key, Layout: jwks.Layout(spec.Layout), Add: jwks.AddOptions{Alg: jwks.Alg(spec.Alg)},
		DeleteOlderThan: spec.DeleteOlderThan.Duration, Restart: true, Timeout: o.Plan.Spec.Timeout.Duration,
		By: o.By, Progress: &itemProgress{item: it.Name, w: o.Progress}, Now: o.Now}
}

// itemProgress prefixes each progress line with the item's name.
type itemProgress struct {
	item string
	w    io.Writer
	bol  bool
}

func (p *itemProgress) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.bol {
			line = "item " + p.item + ": " + line
		}
		p.bol = !strings.HasSuffix(line, "\n")
		if _, err := io.WriteString(p.w, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// keySetItem is a plan item that rotates the signing key of a key set.
// create publishes a new key as next (verify only) in the set in use and
// restarts the set's consumers, so every verifier knows the key before
// anyone signs with it; set and test run the hooks; finish promotes the
// key (and drops retired keys past deleteOlderThan). Whether the key is
// published and whether it signs is read from the set; the kid is
// journaled as soon as it is published, so a re-run promotes that key and
// never publishes a second one; the restart after publish is journaled.
type keySetItem struct {
	pr *run
	it *planspec.Item
}

func (k *keySetItem) fact(name string) string { return itemFact(k.it.Name, name) }

// key reports whether the set holds the kid this rotation published, and
// whether it is the signing key.
func (k *keySetItem) key(ctx context.Context, r *procedure.Record) (kid string, published, signs bool, err error) {
	kid = r.String(k.fact(factKID))
	if !started(r) || kid == "" {
		return kid, false, false, nil
	}
	_, ring, err := keySetTarget(k.pr.o, k.it).Load(ctx)
	if err != nil {
		return kid, false, false, fmt.Errorf("item %s: %w", k.it.Name, err)
	}
	if ring.Set.Find(kid) < 0 {
		return kid, false, false, nil
	}
	i := ring.ActiveIndex()
	return kid, true, i >= 0 && ring.Set.Keys[i].KID == kid, nil
}

func (k *keySetItem) steps() []*step {
	it, o := k.it, k.pr.o
	ns := it.Namespace(o.Namespace)
	t := keySetTarget(o, it)
	mk := func(short, what string) *step {
		return &step{item: it, short: short, Func: procedure.Func{StepName: stepName(it.Name, short), What: what}}
	}

	create := mk(StepCreated, "publish a new key as next in secret/"+it.SecretName()+", restart its verifiers")
	create.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
		_, published, signs, err := k.key(ctx, r)
		// The restart after publish is not on the objects: journaled.
		return signs || published && r.Marked(create.StepName), err
	}
	create.DoFunc = func(ctx context.Context, r *procedure.Record) error {
		old := r.String(k.fact(factKID))
		kid, _, err := t.PublishKey(ctx, old)
		if err != nil {
			return fmt.Errorf("item %s: %w", it.Name, err)
		}
		if kid != old {
			// Journal the kid at once: a re-run must promote this key,
			// not publish another.
			if err := r.Put(k.fact(factKID), kid); err != nil {
				return err
			}
			if err := k.pr.checkpoint(ctx, r); err != nil {
				return err
			}
		}
		// create ends once every verifier runs with the new key.
		restarted, err := t.RestartConsumers(ctx)
		if ferr := appendFact(r, factRestarts, restarted...); ferr != nil && err == nil {
			err = ferr
		}
		return err
	}
	create.UndoFunc = func(ctx context.Context, r *procedure.Record) error {
		kid := r.String(k.fact(factKID))
		if kid == "" {
			return nil
		}
		return t.WithdrawKey(ctx, kid)
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
			kid, published, signs, err := k.key(ctx, r)
			return signs || published && r.String(k.fact(factRanFor+short)) == kid, err
		}
		st.DoFunc = func(ctx context.Context, r *procedure.Record) error {
			if h == nil {
				return nil
			}
			// Key-set hooks get no values: the keys stay in the Secret.
			res, err := RunHook(ctx, o.Clients.Kube, o.Plan, it, short, ns, r.String(factRotationID), &Pending{})
			if perr := putHookResult(r, it.Name, short, res); perr != nil && err == nil {
				err = perr
			}
			if err != nil {
				return err
			}
			if err := r.Put(k.fact(factRanFor+short), r.String(k.fact(factKID))); err != nil {
				return err
			}
			fmt.Fprintf(o.Progress, "item %s: %s hook succeeded%s\n", it.Name, short, jobNote(res.Job))
			return nil
		}
		return st
	}

	finish := mk(StepFinished, "the new key signs; the previous one keeps verifying")
	finish.DoneFunc = func(ctx context.Context, r *procedure.Record) (bool, error) {
		_, _, signs, err := k.key(ctx, r)
		return signs, err
	}
	finish.DoFunc = func(ctx context.Context, r *procedure.Record) error {
		kid := r.String(k.fact(factKID))
		if _, err := t.PromoteKey(ctx, kid); err != nil {
			return fmt.Errorf("item %s: %w", it.Name, err)
		}
		r.Unmark(StepRestart)
		if live, gerr := o.Clients.Kube.CoreV1().Secrets(ns).Get(ctx, it.JWKS.Secret, metav1.GetOptions{}); gerr == nil {
			if eerr := recordEvent(ctx, o.Clients.Kube, live, o.Plan.Metadata.Name, it.Name, r.String(factRotationID), map[string]string{"signing kid": kid}, o.Now()); eerr != nil {
				fmt.Fprintf(o.Progress, "item %s: warning: no Event recorded on secret/%s: %v\n", it.Name, it.JWKS.Secret, eerr)
			}
		}
		return nil
	}
	finish.UndoFunc = func(_ context.Context, r *procedure.Record) error {
		return fmt.Errorf("item %s: key %s is already the signing key: undo does not demote it (tokens it signed would stop verifying); promote the previous key with kubectl rotate jwk promote if you must",
			it.Name, r.String(k.fact(factKID)))
	}

	return []*step{create, hook(StepSet, it.Hooks.Set), hook(StepTested, it.Hooks.Test), finish}
}
