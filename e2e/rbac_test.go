//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func readRBAC(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile("../deploy/rbac/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestShippedRoles: the rotator Role is enough for a rotation with a
// consumer restart, an undo and a plan; the auditor ClusterRole is enough
// for `status` and cannot rotate.
func TestShippedRoles(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"token": "old-token-value-1"})
	deployWith(t, ns, "web", envFrom("app"))
	waitRolledOut(t, ns, "web")

	var role rbacv1.Role
	readRBAC(t, "rotator-role.yaml", &role)
	role.Namespace = ns
	if _, err := client.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var audit rbacv1.ClusterRole
	readRBAC(t, "auditor-clusterrole.yaml", &audit)
	audit.Name = "kube-rotate-auditor-" + ns
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, &audit, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.RbacV1().ClusterRoles().Delete(context.Background(), audit.Name, metav1.DeleteOptions{})
	})
	for _, sa := range []string{"rotator", "auditor"} {
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	subject := func(sa string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rotator"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}, Subjects: subject("rotator")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The auditor is bound in this namespace only, through a RoleBinding to the ClusterRole.
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "auditor"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: audit.Name}, Subjects: subject("auditor")}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	as := func(sa string) []string { return []string{"--as", "system:serviceaccount:" + ns + ":" + sa, "-n", ns} }

	before := restartedAt(t, ns, "web")
	waitFor(t, "the rotator's permissions", 30*time.Second, func() bool {
		return run(t, nil, append(as("rotator"), "secret", "app", "--key", "token", "--generate", "hex:32", "--dry-run=server")...).code == 0
	})
	mustRun(t, append(as("rotator"), "secret", "app", "--key", "token", "--generate", "hex:32")...)
	if restartedAt(t, ns, "web") == before {
		t.Error("the rotator's rotation did not restart the consumer")
	}
	mustRun(t, append(as("rotator"), "undo", "secret/app")...)
	if got := string(getSecret(t, ns, "app").Data["token"]); got != "old-token-value-1" {
		t.Error("the rotator's undo did not restore the value")
	}

	st := mustRun(t, append(as("auditor"), "status")...)
	if !strings.Contains(st.stdout, ns+"/app") {
		t.Errorf("the auditor's status does not list the Secret:\n%s", st.stdout)
	}
	denied := run(t, nil, append(as("auditor"), "secret", "app", "--key", "token", "--generate", "hex:32")...)
	if denied.code == 0 || !strings.Contains(strings.ToLower(denied.stderr), "forbidden") {
		t.Errorf("the auditor could rotate: exit %d\n%s", denied.code, denied.allOutput())
	}
	if got := string(getSecret(t, ns, "app").Data["token"]); got != "old-token-value-1" {
		t.Error("the auditor's refused rotation changed the Secret")
	}
}
