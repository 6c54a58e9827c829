//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// TestKilledRunResumesWithoutLosingTheOldValue: kill -9 the tool while it
// waits for a rollout (values written), then re-run the same command: it
// resumes with the values already written and the previous value kept.
func TestKilledRunResumesWithoutLosingTheOldValue(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"password": "the-original-password"})
	deployWith(t, ns, "slow", envKeyFrom("app", "password"))
	patchDeployment(t, ns, "slow", `{"spec":{"template":{"spec":{"nodeSelector":{"not-yet":"true"}}}}}`) // new pods wait

	args := []string{"secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--timeout", timeoutFlag(2 * time.Minute)}
	cmd := exec.Command(rotateBin(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the values to be written", time.Minute, func() bool {
		return getSecret(t, ns, "app").Annotations[v1alpha1.Phase] == v1alpha1.PhaseWritten
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	written := getSecret(t, ns, "app").Data["password"]
	if string(written) == "the-original-password" {
		t.Fatal("phase says written but the value did not change")
	}

	// The operator fixes the workload and runs the same command again.
	patchDeployment(t, ns, "slow", `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`)
	r := mustRun(t, args...)
	if !strings.Contains(r.stdout, "resuming generation 1") {
		t.Errorf("re-run did not say it resumes:\n%s", r.stdout)
	}
	s := getSecret(t, ns, "app")
	if !bytes.Equal(s.Data["password"], written) {
		t.Error("re-run generated another value instead of resuming")
	}
	if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Generation] != "1" {
		t.Errorf("after the re-run: phase %q generation %q, want complete and 1", s.Annotations[v1alpha1.Phase], s.Annotations[v1alpha1.Generation])
	}
	if string(getSecret(t, ns, "app-previous").Data["password"]) != "the-original-password" {
		t.Error("the previous value was lost")
	}
	mustRun(t, "undo", "secret/app", "-n", ns)
	if string(getSecret(t, ns, "app").Data["password"]) != "the-original-password" {
		t.Error("undo after the resumed run did not bring the original value back")
	}
}

// TestNoValueAnywhere scans every output of a full run (rotate, plan,
// history, undo, finish, JSON records, errors) and every object the run
// touched or created (annotations, labels, events, workloads) for the old
// and new values.
func TestNoValueAnywhere(t *testing.T) {
	ns := newNamespace(t)
	const (
		oldPassword = "old-db-password-1234"
		oldKey      = "old-auth-state-key-5678"
	)
	createSecret(t, ns, "app", map[string]string{
		"DB_URL":    "postgresql://app:" + oldPassword + "@db:5432/app",
		"STATE_KEY": oldKey,
		"S3":        `{"id":"AKIA","secret":"old-s3-secret-9999"}`,
	})
	deployWith(t, ns, "api", envFrom("app"))
	var outputs []string
	for _, args := range [][]string{
		{"secret", "app", "--url-password", "DB_URL", "--key", "STATE_KEY", "--generate", "random:32", "--json-field", "S3:secret", "--dry-run=client"},
		{"secret", "app", "--url-password", "DB_URL", "--key", "STATE_KEY", "--generate", "random:32", "--json-field", "S3:secret", "-o", "yaml"},
		{"history", "secret/app", "-o", "json"},
		{"history", "secret/app"},
		{"secret", "app", "--url-password", "STATE_KEY"}, // an error about a value
	} {
		outputs = append(outputs, run(t, nil, append(args, "-n", ns)...).allOutput())
	}
	current := getSecret(t, ns, "app").Data
	vals := map[string][]byte{
		"old password": []byte(oldPassword), "old state key": []byte(oldKey), "old S3 secret": []byte("old-s3-secret-9999"),
		"new DB_URL": current["DB_URL"], "new STATE_KEY": current["STATE_KEY"], "new S3": current["S3"],
	}
	if newPW := strings.TrimPrefix(strings.SplitN(string(current["DB_URL"]), "@", 2)[0], "postgresql://app:"); len(newPW) >= 16 {
		vals["new password"] = []byte(newPW)
	}
	outputs = append(outputs, run(t, nil, "undo", "secret/app", "-n", ns, "-o", "json").allOutput())
	outputs = append(outputs, run(t, nil, "finish", "secret/app", "-n", ns, "--force", "-o", "yaml").allOutput())
	for i, o := range outputs {
		assertNoValues(t, "output of command "+string(rune('1'+i)), o, vals)
	}

	assertNamespaceHoldsNoValue(t, ns, vals)
	deps, _ := client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if len(current["STATE_KEY"]) == 0 || ptr.Deref(deps.Items[0].Spec.Replicas, 0) != 1 {
		t.Fatal("the run did not rotate anything: the scan proves nothing")
	}
}
