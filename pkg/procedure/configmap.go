package procedure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// RecordKey is the ConfigMap data key holding a Record.
const RecordKey = "record.json"

// ConfigMapJournal keeps a Record in a ConfigMap, every write guarded by
// the resourceVersion last read or written (create when there is none:
// AlreadyExists is a conflict too).
type ConfigMapJournal struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Labels          map[string]string
	// Legacy, when set, reads a ConfigMap that has no RecordKey: a journal
	// an earlier version wrote in its own format (nil, nil: none there).
	// The next Save writes it as a Record.
	Legacy func(cm *corev1.ConfigMap) (*Record, error)

	cm *corev1.ConfigMap
}

func (j *ConfigMapJournal) String() string { return "configmap/" + j.Name }

// JournalName makes a ConfigMap name from a prefix and the names a
// procedure works on: readable, and within the 253 characters a name may
// have (longer ones are cut and end in a hash of the whole).
func JournalName(prefix string, parts ...string) string {
	name := prefix
	for _, p := range parts {
		name += "-" + p
	}
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:253-17] + "-" + hex.EncodeToString(sum[:8])
}

// Load reads the Record, or nil when the ConfigMap does not exist.
func (j *ConfigMapJournal) Load(ctx context.Context) (*Record, error) {
	cm, err := j.Client.CoreV1().ConfigMaps(j.Namespace).Get(ctx, j.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		j.cm = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal configmap/%s in namespace %s: %w", j.Name, j.Namespace, err)
	}
	j.cm = cm
	if _, ok := cm.Data[RecordKey]; !ok && j.Legacy != nil {
		r, err := j.Legacy(cm)
		if err != nil {
			return nil, fmt.Errorf("configmap/%s: the journal is not readable (%v): delete it to start over", j.Name, err)
		}
		if r != nil {
			return r, nil
		}
	}
	r := &Record{}
	if err := json.Unmarshal([]byte(cm.Data[RecordKey]), r); err != nil {
		return nil, fmt.Errorf("configmap/%s: the journal is not readable (%v): delete it to start over", j.Name, err)
	}
	return r, nil
}

// Save writes the Record with the precondition.
func (j *ConfigMapJournal) Save(ctx context.Context, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if j.cm == nil {
		labels := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedBy}
		for k, v := range j.Labels {
			labels[k] = v
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: j.Name, Namespace: j.Namespace, Labels: labels},
			Data: map[string]string{RecordKey: string(b)}}
		created, err := j.Client.CoreV1().ConfigMaps(j.Namespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: v1alpha1.ManagedBy})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%w (configmap/%s appeared)", ErrConflict, j.Name)
		}
		if err != nil {
			return err
		}
		j.cm = created
		return nil
	}
	cm := j.cm.DeepCopy()
	cm.Data = map[string]string{RecordKey: string(b)}
	updated, err := j.Client.CoreV1().ConfigMaps(j.Namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: v1alpha1.ManagedBy})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w (configmap/%s)", ErrConflict, j.Name)
	}
	if err != nil {
		return err
	}
	j.cm = updated
	return nil
}

// Delete removes the ConfigMap; a missing one is no error.
func (j *ConfigMapJournal) Delete(ctx context.Context) error {
	opts := metav1.DeleteOptions{}
	if j.cm != nil {
		// Only the journal this run read or wrote.
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &j.cm.ResourceVersion}
	}
	err := j.Client.CoreV1().ConfigMaps(j.Namespace).Delete(ctx, j.Name, opts)
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w (configmap/%s)", ErrConflict, j.Name)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the journal configmap/%s: %w", j.Name, err)
	}
	j.cm = nil
	return nil
}
