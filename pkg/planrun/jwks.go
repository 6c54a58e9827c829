package planrun

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/consumers"
	"github.com/kube-rotate/kube-rotate/pkg/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/plan"
)

// applyKeySet takes a key-set item through its steps. create publishes a
// new key as next (verify only) in the set in use and restarts the set's
// consumers, so every verifier knows the key before anyone signs with it;
// set and test run the hooks; finish promotes the key (and drops retired
// keys past deleteOlderThan). The new kid is journaled after create, so a
// re-run promotes that key and never publishes a second one.
func applyKeySet(ctx context.Context, o Options, store *Store, j *Journal, it *plan.Item) error {
	ns := it.Namespace(o.Namespace)
	spec := it.JWKS
	st := &jwks.SecretStore{Client: o.Clients.Kube, Namespace: ns, Name: spec.Secret, Key: spec.Key}
	load := func() (*jwks.Ring, error) {
		set, rec, err := st.Load(ctx, false)
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", it.Name, err)
		}
		var layout jwks.Layout
		if spec.Layout != "" {
			if layout, err = jwks.ParseLayout(spec.Layout); err != nil {
				return nil, fmt.Errorf("item %s: %w", it.Name, err)
			}
		}
		return jwks.NewRing(set, layout, rec), nil
	}
	for step := j.Next(it.Name); step != ""; step = j.Next(it.Name) {
		ij := j.item(it.Name)
		switch step {
		case StepCreated:
			r, err := load()
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
			if ij.KID == "" || r.Set.Find(ij.KID) < 0 {
				k, err := r.Add(jwks.AddOptions{Alg: jwks.Alg(spec.Alg)})
				if err != nil {
					return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
				}
				if err := r.Save(ctx, st, "jwk-add", o.By); err != nil {
					return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
				}
				// Journal the kid at once: a re-run must promote this
				// key, not publish another.
				ij.KID = k.KID
				if err := store.Save(ctx, j); err != nil {
					return err
				}
				fmt.Fprintf(o.Progress, "item %s: key %s published as next in secret/%s\n", it.Name, k.KID, spec.Secret)
			}
			// create ends once every verifier runs with the new key.
			restarted, err := restartUsers(ctx, o, ns, spec.Secret, it.Keys())
			j.Restarts = append(j.Restarts, restarted...)
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
		case StepSet, StepTested:
			// Key-set hooks get no values: the keys stay in the Secret.
			res, err := RunHook(ctx, o.Clients.Kube, o.Plan, it, step, ns, j.RotationID, &Pending{})
			j.HookResult(it.Name, step, res)
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
			if res != nil {
				fmt.Fprintf(o.Progress, "item %s: %s hook succeeded%s\n", it.Name, step, jobNote(res.Job))
			}
		case StepFinished:
			r, err := load()
			if err != nil {
				return fail(ctx, store, j, it.Name, step, err)
			}
			if _, err := r.Promote(ij.KID); err != nil {
				return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
			}
			if d := spec.DeleteOlderThan.Duration; d > 0 {
				r.Prune(d)
			}
			if err := r.Save(ctx, st, "jwk-promote", o.By); err != nil {
				return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
			}
			fmt.Fprintf(o.Progress, "item %s: key %s is now the signing key in secret/%s\n", it.Name, ij.KID, spec.Secret)
			if live, gerr := o.Clients.Kube.CoreV1().Secrets(ns).Get(ctx, spec.Secret, metav1.GetOptions{}); gerr == nil {
				if eerr := recordEvent(ctx, o.Clients.Kube, live, o.Plan.Metadata.Name, it.Name, j.RotationID, map[string]string{"signing kid": ij.KID}, o.Now()); eerr != nil {
					fmt.Fprintf(o.Progress, "item %s: warning: no Event recorded on secret/%s: %v\n", it.Name, spec.Secret, eerr)
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

// restartUsers restarts the workloads reading keys of a Secret and waits.
func restartUsers(ctx context.Context, o Options, ns, secret string, keys []string) ([]string, error) {
	ix, err := consumers.NewIndex(ctx, o.Clients.Kube, ns)
	if err != nil {
		return nil, err
	}
	ws := ix.UsersOf(secret, keys)
	if len(ws) == 0 {
		return nil, nil
	}
	return consumers.RestartAndWait(ctx, o.Clients.Kube, o.Clients.Dynamic, ws, o.Progress, o.Plan.Spec.Timeout.Duration)
}

func jobNote(job string) string {
	if job == "" {
		return ""
	}
	return " (job " + job + ", deleted)"
}
