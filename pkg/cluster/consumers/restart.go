package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

// Restart restarts a Deployment, StatefulSet or DaemonSet exactly as
// `kubectl rollout restart` does: kubectl's restarter sets the pod
// template annotation kubectl.kubernetes.io/restartedAt, and the change
// is sent as a strategic merge patch. It returns the workload's new
// generation.
func Restart(ctx context.Context, client kubernetes.Interface, w Workload) (int64, error) {
	var (
		obj     runtime.Object
		dataStr any
		patchFn func([]byte) (metav1.Object, error)
	)
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	switch w.Kind {
	case KindDeployment:
		d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", w.Ref(), err)
		}
		d.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(KindDeployment))
		obj, dataStr = d, appsv1.Deployment{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	case KindStatefulSet:
		s, err := client.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", w.Ref(), err)
		}
		s.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(KindStatefulSet))
		obj, dataStr = s, appsv1.StatefulSet{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().StatefulSets(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	case KindDaemonSet:
		d, err := client.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", w.Ref(), err)
		}
		d.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(KindDaemonSet))
		obj, dataStr = d, appsv1.DaemonSet{}
		patchFn = func(p []byte) (metav1.Object, error) {
			return client.AppsV1().DaemonSets(w.Namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, p, opts)
		}
	default:
		return 0, fmt.Errorf("%s cannot be restarted: only Deployments, StatefulSets and DaemonSets roll out", w.Ref())
	}
	before, err := json.Marshal(obj)
	if err != nil {
		return 0, err
	}
	var patch []byte
	for attempt := 0; ; attempt++ {
		after, err := polymorphichelpers.ObjectRestarterFn(obj.DeepCopyObject())
		if err != nil {
			return 0, fmt.Errorf("restarting %s: %w", w.Ref(), err)
		}
		patch, err = strategicpatch.CreateTwoWayMergePatch(before, after, dataStr)
		if err != nil {
			return 0, fmt.Errorf("restarting %s: %w", w.Ref(), err)
		}
		// restartedAt has one-second resolution: a second restart within
		// the same second changes nothing and would roll nothing out.
		if string(patch) != "{}" || attempt == 1 {
			break
		}
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)) + 10*time.Millisecond)
	}
	res, err := patchFn(patch)
	if err != nil {
		return 0, fmt.Errorf("restarting %s: %w", w.Ref(), err)
	}
	return res.GetGeneration(), nil
}

// FieldManager names kube-rotate in managedFields.
const FieldManager = "kubectl-rotate"
