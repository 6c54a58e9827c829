package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// Restart restarts a Deployment, StatefulSet or DaemonSet exactly as
// `kubectl rollout restart` does: kubectl's restarter sets the pod
// template annotation kubectl.kubernetes.io/restartedAt, and the change
// is sent as a strategic merge patch. It returns the workload's new
// generation.
func Restart(ctx context.Context, client kubernetes.Interface, w Workload) (int64, error) {
	r, err := RestartFor(ctx, client, w, nil, "")
	return r.Generation, err
}

// Restarted is what RestartFor did.
type Restarted struct {
	// Generation is the workload's generation after the restart (or now,
	// when it was restarted already): its rollout is complete once the
	// controller observed it.
	Generation int64
	// Already is true when the pod template says it was restarted for
	// this write already: nothing was sent.
	Already bool
}

// RestartFor is Restart for the write named by mark (see
// v1alpha1.RestartedFor; "" sets no mark): kubectl's restartedAt and the
// mark go in the one patch, so the restart and the knowledge of it are
// one write, and a workload whose template holds mark already is not
// restarted again. obj is the workload as listed (the patch is computed
// from it, as kubectl computes it from the object it read); nil reads it.
func RestartFor(ctx context.Context, client kubernetes.Interface, w Workload, obj runtime.Object, mark string) (Restarted, error) {
	var (
		dataStr any
		patchFn func([]byte) (metav1.Object, error)
	)
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	switch w.Kind {
	case KindDeployment:
		if obj == nil {
			d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return Restarted{}, fmt.Errorf("reading %s: %w", w.Ref(), err)
			}
			obj = d
		}
		dataStr = appsv1.Deployment{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	case KindStatefulSet:
		if obj == nil {
			s, err := client.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return Restarted{}, fmt.Errorf("reading %s: %w", w.Ref(), err)
			}
			obj = s
		}
		dataStr = appsv1.StatefulSet{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().StatefulSets(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	case KindDaemonSet:
		if obj == nil {
			d, err := client.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return Restarted{}, fmt.Errorf("reading %s: %w", w.Ref(), err)
			}
			obj = d
		}
		dataStr = appsv1.DaemonSet{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().DaemonSets(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	default:
		return Restarted{}, fmt.Errorf("%s cannot be restarted: only Deployments, StatefulSets and DaemonSets roll out", w.Ref())
	}
	tmpl, gen, err := podTemplate(obj)
	if err != nil {
		return Restarted{}, fmt.Errorf("restarting %s: %w", w.Ref(), err)
	}
	if mark != "" && tmpl.Annotations[v1alpha1.RestartedFor] == mark {
		return Restarted{Generation: gen, Already: true}, nil
	}
	obj = obj.DeepCopyObject()
	setKind(obj, w.Kind)
	before, err := json.Marshal(obj)
	if err != nil {
		return Restarted{}, err
	}
	// restartedAt has one-second resolution: a restart within the second
	// of the last one would leave it as it is (and, without a mark, roll
	// nothing out). Wait for the next second then, as a person would.
	if at := tmpl.Annotations[restartedAt]; at != "" && at == time.Now().Format(time.RFC3339) {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)) + 10*time.Millisecond)
	}
	next := obj.DeepCopyObject()
	if mark != "" {
		setMark(next, mark)
	}
	after, err := polymorphichelpers.ObjectRestarterFn(next)
	if err != nil {
		return Restarted{}, fmt.Errorf("restarting %s: %w", w.Ref(), err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(before, after, dataStr)
	if err != nil {
		return Restarted{}, fmt.Errorf("restarting %s: %w", w.Ref(), err)
	}
	res, err := patchFn(patch)
	if err != nil {
		return Restarted{}, fmt.Errorf("restarting %s: %w", w.Ref(), err)
	}
	return Restarted{Generation: res.GetGeneration()}, nil
}

// podTemplate returns the pod template and the generation of a workload.
func podTemplate(obj runtime.Object) (*corev1.PodTemplateSpec, int64, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template, o.Generation, nil
	case *appsv1.StatefulSet:
		return &o.Spec.Template, o.Generation, nil
	case *appsv1.DaemonSet:
		return &o.Spec.Template, o.Generation, nil
	}
	return nil, 0, fmt.Errorf("%T has no pod template to restart", obj)
}

// setKind sets the kind kubectl's restarter and the patch need (typed
// objects read or listed come without it).
func setKind(obj runtime.Object, kind string) {
	obj.GetObjectKind().SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind))
}

// setMark sets v1alpha1.RestartedFor on a workload's pod template.
func setMark(obj runtime.Object, mark string) {
	tmpl, _, err := podTemplate(obj)
	if err != nil {
		return // RestartFor checked the kind
	}
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[v1alpha1.RestartedFor] = mark
}

// restartedAt is the pod template annotation `kubectl rollout restart` sets.
const restartedAt = "kubectl.kubernetes.io/restartedAt"

// FieldManager names kube-rotate in managedFields.
const FieldManager = "kubectl-rotate"
