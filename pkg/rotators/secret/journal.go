package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/procedure"
)

// JournalAnnotation on a rotated Secret holds the journal (a
// procedure.Record, JSON) of the rotation or undo going on: the restarts
// done, which the objects cannot show. It holds no value, and is removed
// when the procedure completes.
const JournalAnnotation = v1alpha1.JournalAnnotation

// secretJournal is a procedure.Journal kept in an annotation of the Secret
// the procedure works on (the first one named, for a rotation of several).
//
// Why there and not in a ConfigMap (procedure.ConfigMapJournal): the state
// of a Secret rotation is nearly all on the Secret already (the phase and
// generation annotations, the companion's generation); the journal adds
// only the restarts done for that generation, so it lives next to what it
// completes. It needs no other object and no other permission than the
// rotation's own (get and patch secrets), goes away with the Secret, and
// costs no write at all when nothing needs journaling: a rotation without
// consumers to restart writes exactly what it wrote before the engine.
//
// Only what the objects cannot show is written: the marks of the steps in
// keep and the facts. Marks of steps derived from the objects, the failure
// (the phase annotation shows it) and the time of the last save are not,
// and a Save that would change nothing else writes nothing.
//
// Every write is a JSON merge patch of the Secret's metadata carrying the
// resourceVersion just read as its precondition, made only when the
// annotation still holds what this run loaded or last wrote; a journal
// another run changed is procedure.ErrConflict. A write that lost the race
// to an unrelated change of the Secret (an annotation, the operator) is
// read and tried again, the annotation check first.
type secretJournal struct {
	client          kubernetes.Interface
	namespace, name string
	// procedure names the procedure this journal is for; a Record of
	// another one (an undo's, after a rotation's) is stale: Load ignores
	// it and the first Save replaces it.
	procedure string
	// keep names the journaled steps whose marks are written.
	keep map[string]bool

	raw   string // the annotation as loaded or last written
	saved string // what raw holds, without the save time
	// obj, when set, is the Secret as this run last read or wrote it,
	// shared with the rotation's plan of it: Load and the first attempt
	// of each write start from it instead of reading the Secret again,
	// and each write leaves its result there (so the rotation's own write
	// of the values carries the resourceVersion the journal left). A
	// stale one costs a conflict, then a read, as any other change does.
	obj **corev1.Secret
}

// current is the Secret as last read or written: obj's, or a read.
func (j *secretJournal) current(ctx context.Context, fresh bool) (*corev1.Secret, error) {
	if !fresh && j.obj != nil && *j.obj != nil {
		return *j.obj, nil
	}
	s, err := j.client.CoreV1().Secrets(j.namespace).Get(ctx, j.name, metav1.GetOptions{})
	if err != nil {
		return nil, describeAPIError(err, "get", "secret/"+j.name, j.namespace)
	}
	j.keep1(s)
	return s, nil
}

// keep1 leaves s in obj.
func (j *secretJournal) keep1(s *corev1.Secret) {
	if j.obj != nil {
		*j.obj = s
	}
}

func newSecretJournal(client kubernetes.Interface, namespace, name, proc string, keep ...string) *secretJournal {
	j := &secretJournal{client: client, namespace: namespace, name: name, procedure: proc, keep: map[string]bool{}}
	for _, k := range keep {
		j.keep[k] = true
	}
	return j
}

func (j *secretJournal) String() string {
	if j == nil {
		return "(none)"
	}
	return fmt.Sprintf("secret/%s annotation %s", j.name, JournalAnnotation)
}

// Load implements procedure.Journal. An unreadable or stale annotation is
// no Record: the restarts it may record are done again (at least once is
// the safe side), and the first Save replaces it.
func (j *secretJournal) Load(ctx context.Context) (*procedure.Record, error) {
	s, err := j.current(ctx, false)
	if err != nil {
		return nil, err
	}
	j.raw, j.saved = s.Annotations[JournalAnnotation], ""
	if j.raw == "" {
		return nil, nil
	}
	r := &procedure.Record{}
	if err := json.Unmarshal([]byte(j.raw), r); err != nil || r.Procedure != j.procedure {
		return nil, nil
	}
	j.saved = j.key(r)
	return r, nil
}

// project is what of r is written.
func (j *secretJournal) project(r *procedure.Record) *procedure.Record {
	p := &procedure.Record{Procedure: r.Procedure, Started: r.Started, Updated: r.Updated, Facts: r.Facts}
	for step, at := range r.Steps {
		if j.keep[step] {
			if p.Steps == nil {
				p.Steps = map[string]time.Time{}
			}
			p.Steps[step] = at
		}
	}
	return p
}

// key is the projection without the save time, to tell whether a Save
// has anything new to write.
func (j *secretJournal) key(r *procedure.Record) string {
	p := j.project(r)
	p.Updated = time.Time{}
	b, _ := json.Marshal(p)
	return string(b)
}

// Save implements procedure.Journal.
func (j *secretJournal) Save(ctx context.Context, r *procedure.Record) error {
	if r.Procedure == "" {
		r.Procedure = j.procedure
	}
	p := j.project(r)
	if j.raw == "" && len(p.Facts) == 0 {
		// Nothing the objects cannot show: a journaled step's mark means
		// something only with the facts it was made for (a restart step
		// with nothing to restart is marked, and done by derivation).
		return nil
	}
	key := j.key(r)
	if key == j.saved {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := j.patch(ctx, string(b), nil); err != nil {
		return err
	}
	j.saved = key
	return nil
}

// Delete implements procedure.Journal: the annotation is removed if it is
// there (no write when it is not).
func (j *secretJournal) Delete(ctx context.Context) error {
	if err := j.patch(ctx, "", nil); err != nil {
		return err
	}
	j.saved = ""
	return nil
}

// finish removes the journal in the same write as the other annotations
// in extra (the phase that completes the procedure).
func (j *secretJournal) finish(ctx context.Context, extra map[string]string) error {
	if err := j.patch(ctx, "", extra); err != nil {
		return err
	}
	j.saved = ""
	return nil
}

// patch sets the annotation to value ("" removes it) together with the
// annotations in extra, if the annotation still holds j.raw, with the
// Secret's resourceVersion as precondition.
func (j *secretJournal) patch(ctx context.Context, value string, extra map[string]string) error {
	secrets := j.client.CoreV1().Secrets(j.namespace)
	for attempt := 0; ; attempt++ {
		s, err := j.current(ctx, attempt > 0)
		if err != nil {
			return err
		}
		cur := s.Annotations[JournalAnnotation]
		if cur != j.raw && cur != value {
			return fmt.Errorf("%w (%s)", procedure.ErrConflict, j)
		}
		if cur == value && len(extra) == 0 {
			j.raw = value
			return nil
		}
		ann := map[string]any{}
		for k, v := range extra {
			ann[k] = v
		}
		if value == "" {
			ann[JournalAnnotation] = nil
		} else {
			ann[JournalAnnotation] = value
		}
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann, "resourceVersion": s.ResourceVersion}})
		if err != nil {
			return err
		}
		patched, err := secrets.Patch(ctx, j.name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt < 4 {
			continue // the Secret changed, maybe not the journal: read again
		}
		if apierrors.IsConflict(err) {
			return fmt.Errorf("%w (%s)", procedure.ErrConflict, j)
		}
		if err != nil {
			return describeAPIError(err, "patch", "secret/"+j.name, j.namespace)
		}
		j.keep1(patched)
		j.raw = value
		return nil
	}
}
