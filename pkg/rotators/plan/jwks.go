package plan

import (
	"context"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
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

// applyKeySet takes a key-set item through its steps. create publishes a
// new key as next (verify only) in the set in use and restarts the set's
// consumers, so every verifier knows the key before anyone signs with it;
// set and test run the hooks; finish promotes the key (and drops retired
// keys past deleteOlderThan). The new kid is journaled after create, so a
// re-run promotes that key and never publishes a second one.
func applyKeySet(ctx context.Context, o Options, store *Store, j *Journal, it *planspec.Item) error {
	ns := it.Namespace(o.Namespace)
	spec := it.JWKS
	t := keySetTarget(o, it)
	for step := j.Next(it.Name); step != ""; step = j.Next(it.Name) {
		ij := j.item(it.Name)
		switch step {
		case StepCreated:
			kid, _, err := t.PublishKey(ctx, ij.KID)
			if err != nil {
				return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
			}
			if kid != ij.KID {
				// Journal the kid at once: a re-run must promote this
				// key, not publish another.
				ij.KID = kid
				if err := store.Save(ctx, j); err != nil {
					return err
				}
			}
			// create ends once every verifier runs with the new key.
			restarted, err := t.RestartConsumers(ctx)
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
			if _, err := t.PromoteKey(ctx, ij.KID); err != nil {
				return fail(ctx, store, j, it.Name, step, fmt.Errorf("item %s: %w", it.Name, err))
			}
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

func jobNote(job string) string {
	if job == "" {
		return ""
	}
	return " (job " + job + ", deleted)"
}
