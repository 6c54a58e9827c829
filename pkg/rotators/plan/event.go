package plan

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// EventReason of the Event a finished item leaves on its Secret.
const EventReason = "PlanItemRotated"

// recordEvent leaves a Normal Event on the Secret saying which plan item
// rotated which keys (names and fingerprints, never values). Failing to
// write it does not fail the run: the journal holds the same facts.
func recordEvent(ctx context.Context, kc kubernetes.Interface, s *corev1.Secret, planName, item, rotationID string, fps map[string]string, now time.Time) error {
	keys := make([]string, 0, len(fps))
	for k, fp := range fps {
		keys = append(keys, k+"="+fp)
	}
	sort.Strings(keys)
	t := metav1.NewTime(now)
	ev := &corev1.Event{
		// One name per item and rotation: a resumed run does not record
		// the same finish twice.
		ObjectMeta: metav1.ObjectMeta{Name: s.Name + "." + item + "." + rotationID, Namespace: s.Namespace,
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedBy, PlanLabel: planName}},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: s.Namespace, Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion},
		Reason:         EventReason,
		Message: fmt.Sprintf("plan %s item %s (rotation %s): new values for %s; previous values in secret/%s-previous",
			planName, item, rotationID, strings.Join(keys, ", "), s.Name),
		Type:           corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: v1alpha1.ManagedBy},
		FirstTimestamp: t, LastTimestamp: t, Count: 1,
	}
	_, err := kc.CoreV1().Events(s.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
