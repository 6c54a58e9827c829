//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestEveryKindOfConsumer: StatefulSets and DaemonSets are restarted and
// waited for; CronJobs and bare Pods are reported, not restarted; an extra
// --restart-target is restarted too.
func TestEveryKindOfConsumer(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createSecret(t, ns, "shared", map[string]string{"token": "old-token-value"})
	labels := map[string]string{"app": "sts"}
	spec := func() corev1.PodTemplateSpec {
		tpl := sampleDeployment("x", "shared", 1).Spec.Template
		tpl.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Key = "token"
		return tpl
	}
	sts := spec()
	sts.Labels = labels
	if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "sts"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: sts}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dsLabels := map[string]string{"app": "ds"}
	ds := spec()
	ds.Labels = dsLabels
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ds"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: dsLabels}, Template: ds}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cj := spec()
	cj.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: cj}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := spec()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug"}, Spec: pod.Spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deployWith(t, ns, "unrelated", nil)

	r := mustRun(t, "secret", "shared", "-n", ns, "--key", "token", "--generate", "random:32", "--restart-target", "deployment/unrelated")
	out := r.stdout
	for _, want := range []string{
		"statefulset/sts restarted", "daemonset/ds restarted", "deployment/unrelated restarted",
		`partitioned roll out complete`, `daemon set "ds" successfully rolled out`,
		"cronjob/nightly not restarted: its next Job reads the new value", "pod/debug not restarted: bare Pod",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	s, _ := client.AppsV1().StatefulSets(ns).Get(ctx, "sts", metav1.GetOptions{})
	d, _ := client.AppsV1().DaemonSets(ns).Get(ctx, "ds", metav1.GetOptions{})
	c, _ := client.BatchV1().CronJobs(ns).Get(ctx, "nightly", metav1.GetOptions{})
	if s.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Error("StatefulSet or DaemonSet template not restarted")
	}
	if c.Spec.JobTemplate.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "" {
		t.Error("the CronJob was changed")
	}
}

// TestRBACDeniedAndUnreachable: one line naming the verb, the object and
// the fix; nothing changed.
func TestRBACDeniedAndUnreachable(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	createSecret(t, ns, "app", map[string]string{"password": "unchanged-value"})
	rv := getSecret(t, ns, "app").ResourceVersion
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets", "pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get", "list", "watch"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "secret", "app", "-n", ns, "--key", "password", "--generate", "random:32", "--as", "system:serviceaccount:"+ns+":reader")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "not allowed to create secret/app-previous in namespace "+ns+" (RBAC)") {
		t.Errorf("RBAC denial: exit %d\n%s", r.code, r.stderr)
	}
	r = run(t, nil, "secret", "app", "-n", ns, "--key", "password", "--generate", "random:32", "--server", "https://127.0.0.1:1")
	lines = strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "cannot reach the API server to get secret/app") {
		t.Errorf("unreachable API server: exit %d\n%s", r.code, r.stderr)
	}
	if getSecret(t, ns, "app").ResourceVersion != rv {
		t.Error("the Secret changed")
	}
}

// TestHashedTokenToAnotherSecret delivers the token to a key of another
// Secret (for a client running in the same cluster).
func TestHashedTokenToAnotherSecret(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "server", map[string]string{"HASHED": "0"})
	mustRun(t, "secret", "server", "-n", ns, "--hashed", "HASHED", "--deliver", "secret:client:API_KEY", "--deliver-format", "{{.Hex}}", "--restart=none")
	tok := getSecret(t, ns, "client").Data["API_KEY"]
	if len(tok) != 64 {
		t.Fatalf("delivered token has %d characters, want 64 hex", len(tok))
	}
	r := run(t, nil, "secret", "server", "-n", ns, "--hashed", "HASHED", "--deliver", "secret:server:X")
	if r.code == 0 || !strings.Contains(r.stderr, "must go to another Secret") {
		t.Errorf("delivering to the hash's own Secret: exit %d %s", r.code, r.stderr)
	}
}
