package plan

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/model/planspec"
	"github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

// Undo rolls a plan run back: finished items get their previous values
// back from NAME-previous (rotation.Undo, which a re-run resumes and never
// repeats), unfinished ones lose their pending companion; the consumers of
// every restored Secret restart once; then the journal is deleted.
// Backing systems changed by set hooks are not changed back: the progress
// output names the items whose set hook ran.
func Undo(ctx context.Context, o Options) error {
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
		return err
	}
	if j == nil {
		return fmt.Errorf("plan %s has no run to undo in namespace %s (no configmap/%s)", p.Metadata.Name, ns, JournalName(p.Metadata.Name))
	}
	items, err := p.Order()
	if err != nil {
		return err
	}
	var restored []*planspec.Item
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		ij := j.Items[it.Name]
		if ij == nil || ij.Done == StepPending && ij.Failed == "" {
			continue
		}
		itNS := it.Namespace(o.Namespace)
		if it.JWKS != nil {
			if err := undoKeySet(ctx, o, it, ij); err != nil {
				return err
			}
			continue
		}
		if _, ran := ij.Steps[StepSet]; ran && it.Hooks.Set != nil {
			fmt.Fprintf(o.Progress, "item %s: its set hook ran: the backing system still has the new value; set it back if needed\n", it.Name)
		}
		if ij.Done == StepFinished {
			if _, err := secret.Undo(ctx, o.Clients, secret.UndoOptions{Namespace: itNS, Name: it.SecretName(),
				Restart: p.Spec.Restart == planspec.RestartPerItem, Timeout: p.Spec.Timeout.Duration, By: o.By, Progress: o.Progress}); err != nil {
				return fmt.Errorf("item %s: %w", it.Name, err)
			}
			restored = append(restored, it)
			continue
		}
		err := o.Clients.Kube.CoreV1().Secrets(itNS).Delete(ctx, PendingName(it.SecretName()), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("item %s: deleting secret/%s: %w", it.Name, PendingName(it.SecretName()), err)
		}
		fmt.Fprintf(o.Progress, "item %s: pending values deleted; secret/%s was never changed\n", it.Name, it.SecretName())
	}
	if p.Spec.Restart == planspec.RestartCoalesced && len(restored) > 0 {
		if _, err := restartCoalesced(ctx, o, restored); err != nil {
			return err
		}
	}
	return store.Delete(ctx)
}

// undoKeySet withdraws the key a key-set item published, while it has not
// become the signing key. A promoted key is not demoted automatically:
// tokens it signed would stop verifying.
func undoKeySet(ctx context.Context, o Options, it *planspec.Item, ij *ItemJournal) error {
	if ij.KID == "" {
		return nil
	}
	if ij.Done == StepFinished {
		return fmt.Errorf("item %s: key %s is already the signing key: undo does not demote it (tokens it signed would stop verifying); promote the previous key with kubectl rotate jwk promote if you must", it.Name, ij.KID)
	}
	return keySetTarget(o, it).WithdrawKey(ctx, ij.KID)
}
