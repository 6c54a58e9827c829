//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"
)

// TestHarnessSecretPatchRestartRollout proves the cluster does what the
// product needs: a Deployment consuming a Secret rolls out on the (fake)
// nodes, the Secret can be patched, and a rollout restart produces a new
// ReplicaSet whose pods all become Ready while the old one scales to zero.
func TestHarnessSecretPatchRestartRollout(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	_, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-credentials"},
		StringData: map[string]string{"password": "initial-value"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Secret: %v", err)
	}
	deploy := sampleDeployment("web", "app-credentials", 2)
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Deployment: %v", err)
	}
	waitRolledOut(t, ns, "web")
	firstRS := currentReplicaSet(t, ns, "web")

	// Patch the Secret the way the runbooks do, and read the change back.
	patch := []byte(`{"stringData":{"password":"second-value"}}`)
	if _, err := client.CoreV1().Secrets(ns).Patch(ctx, "app-credentials", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching Secret: %v", err)
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, "app-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data["password"]) != "second-value" {
		t.Fatalf("Secret data after patch does not hold the new value (len %d)", len(s.Data["password"]))
	}

	restart(t, ns, "web")
	waitRolledOut(t, ns, "web")

	newRS := currentReplicaSet(t, ns, "web")
	if newRS.Name == firstRS.Name {
		t.Fatalf("rollout restart did not create a new ReplicaSet (still %s)", newRS.Name)
	}
	old, err := client.AppsV1().ReplicaSets(ns).Get(ctx, firstRS.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(old.Spec.Replicas, -1) != 0 {
		t.Errorf("old ReplicaSet %s still wants %d replicas", old.Name, ptr.Deref(old.Spec.Replicas, -1))
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "pod-template-hash=" + newRS.Labels["pod-template-hash"]})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			t.Errorf("pod %s is not scheduled", p.Name)
		}
		if p.Annotations["kubectl.kubernetes.io/restartedAt"] == "" && p.DeletionTimestamp == nil {
			t.Errorf("pod %s of the new ReplicaSet lacks the restartedAt template annotation", p.Name)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				ready++
			}
		}
	}
	if ready != 2 {
		t.Errorf("%d Ready pods in the new ReplicaSet, want 2", ready)
	}
}

// sampleDeployment returns a Deployment whose container reads key
// "password" of secret through an environment variable.
func sampleDeployment(name, secret string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "registry.k8s.io/pause:3.10",
						Env: []corev1.EnvVar{{
							Name: "PASSWORD",
							ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "password",
							}},
						}},
					}},
				},
			},
		},
	}
}

// restart does what `kubectl rollout restart` does, with kubectl's own helper.
func restart(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	before, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	after, err := polymorphichelpers.ObjectRestarterFn(d.DeepCopy())
	if err != nil {
		t.Fatalf("kubectl restarter: %v", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(before, after, appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("restarting deployment/%s: %v", name, err)
	}
}

// waitRolledOut waits as `kubectl rollout status` does, with its status
// viewer, up to 2 minutes (times E2E_TIMEOUT_SCALE).
func waitRolledOut(t *testing.T, ns, name string) {
	t.Helper()
	viewer := &polymorphichelpers.DeploymentStatusViewer{}
	var msg string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, scaled(2*time.Minute), true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
		if err != nil {
			return false, err
		}
		var done bool
		msg, done, err = viewer.Status(&unstructured.Unstructured{Object: m}, 0)
		return done, err
	})
	if err != nil {
		t.Fatalf("deployment/%s did not roll out: %v (last status: %s)", name, err, msg)
	}
}

func currentReplicaSet(t *testing.T, ns, name string) *appsv1.ReplicaSet {
	t.Helper()
	ctx := context.Background()
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rsList, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rsList.Items {
		rs := &rsList.Items[i]
		if rs.Annotations["deployment.kubernetes.io/revision"] == d.Annotations["deployment.kubernetes.io/revision"] {
			return rs
		}
	}
	t.Fatal(fmt.Sprintf("no ReplicaSet of deployment/%s at revision %s", name, d.Annotations["deployment.kubernetes.io/revision"]))
	return nil
}
