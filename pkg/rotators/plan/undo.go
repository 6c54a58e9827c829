package plan

import (
	"context"
	"fmt"
)

// Undo rolls a plan run back with the engine's undo: its done steps in
// reverse order. A finished item gets its previous values back from
// NAME-previous (secret.Undo, which a re-run resumes and never repeats),
// an unfinished one loses its pending companion, a key set's published key
// is withdrawn while it never signed; the consumers of every restored
// Secret restart once (the undo of the start, last); then the journal is
// deleted. Backing systems changed by set hooks are not changed back: the
// progress output names the items whose set hook ran.
func Undo(ctx context.Context, o Options) error {
	pr, err := newRun(ctx, o)
	if err != nil {
		return err
	}
	rec, err := pr.journal.Load(ctx)
	if err != nil {
		return err
	}
	if rec == nil {
		p := o.Plan
		ns := p.Spec.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		return fmt.Errorf("plan %s has no run to undo in namespace %s (no configmap/%s)", p.Metadata.Name, ns, JournalName(p.Metadata.Name))
	}
	return pr.procedure().Undo(ctx)
}
