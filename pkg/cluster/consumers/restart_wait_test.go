package consumers

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

func TestRestartSetsRestartedAtOnce(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		deployment("web", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "paused", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{Paused: true}},
	)
	if _, err := Restart(ctx, client, Workload{Kind: KindDeployment, Namespace: "ns", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	d, _ := client.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
	at := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		t.Fatalf("restartedAt = %q, want an RFC 3339 time", at)
	}
	if d.Spec.Template.Spec.Containers[0].Name != "app" {
		t.Error("restart changed the pod spec")
	}
	patches := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("%d patches for one restart, want 1", patches)
	}

	tests := []struct {
		w    Workload
		want string
	}{
		{Workload{Kind: KindDeployment, Namespace: "ns", Name: "paused"}, "paused"},
		{Workload{Kind: KindCronJob, Namespace: "ns", Name: "nightly"}, "cannot be restarted"},
		{Workload{Kind: KindDeployment, Namespace: "ns", Name: "missing"}, "reading deployment/missing"},
	}
	for _, tt := range tests {
		if _, err := Restart(ctx, client, tt.w); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Restart(%s) = %v, want error containing %q", tt.w.Ref(), err, tt.want)
		}
	}
}

func unstructuredDeployment(t *testing.T, ns string, updated, available int32) *unstructured.Unstructured {
	t.Helper()
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1,
			UpdatedReplicas: updated, AvailableReplicas: available},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestWaitWatchesUntilRolledOut(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme, unstructuredDeployment(t, "ns", 0, 0))
	var out bytes.Buffer
	w := &Waiter{Client: dyn, Out: &out, Timeout: time.Minute}
	done := make(chan *Unhealthy)
	go func() {
		done <- w.Wait(context.Background(), Workload{Kind: KindDeployment, Namespace: "ns", Name: "web"})
	}()
	// Complete the rollout while Wait is watching.
	time.Sleep(200 * time.Millisecond)
	gvr := resources[KindDeployment]
	if _, err := dyn.Resource(gvr).Namespace("ns").UpdateStatus(context.Background(), unstructuredDeployment(t, "ns", 1, 1), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-done:
		if u != nil {
			t.Fatalf("Wait = %+v, want success", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not see the rollout complete")
	}
	for _, want := range []string{`Waiting for deployment "web" rollout to finish: 0 out of 1 new replicas have been updated...`, `deployment "web" successfully rolled out`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

func TestWaitAllReportsEveryUnhealthyWorkload(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme,
		unstructuredDeployment(t, "stuck", 0, 0), unstructuredDeployment(t, "fine", 1, 1))
	w := &Waiter{Client: dyn, Timeout: 300 * time.Millisecond}
	err := w.WaitAll(context.Background(), []Workload{
		{Kind: KindDeployment, Namespace: "stuck", Name: "web"},
		{Kind: KindDeployment, Namespace: "fine", Name: "web"},
		{Kind: KindDeployment, Namespace: "gone", Name: "web"},
	})
	we, ok := err.(*WaitError)
	if !ok {
		t.Fatalf("WaitAll = %v, want *WaitError", err)
	}
	if len(we.Unhealthy) != 2 {
		t.Fatalf("unhealthy = %+v, want stuck/web and gone/web", we.Unhealthy)
	}
	byNS := map[string]Unhealthy{}
	for _, u := range we.Unhealthy {
		byNS[u.Workload.Namespace] = u
	}
	stuck := byNS["stuck"]
	if stuck.Reason != "not rolled out within 300ms" || !strings.Contains(stuck.Status, "0 out of 1 new replicas have been updated") {
		t.Errorf("stuck = %+v", stuck)
	}
	if _, ok := byNS["gone"]; !ok {
		t.Errorf("missing workload not reported: %+v", we.Unhealthy)
	}
	if !strings.Contains(err.Error(), "deployment/web") {
		t.Errorf("error does not name the workload: %v", err)
	}
}
