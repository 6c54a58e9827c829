//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cli is one run of kubectl-rotate.
type cli struct {
	stdout, stderr string
	code           int
}

// allOutput is everything the run printed.
func (c cli) allOutput() string { return c.stdout + c.stderr }

// rotateBin finds the kubectl-rotate binary the Makefile built into bin/.
func rotateBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl-rotate")
	if err != nil {
		t.Fatal("kubectl-rotate is not on PATH: run the suite with `make e2e` (it builds bin/ and puts it on PATH)")
	}
	return p
}

// run runs kubectl-rotate with args (and stdin, if not nil).
func run(t *testing.T, stdin []byte, args ...string) cli {
	t.Helper()
	cmd := exec.Command(rotateBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	res := cli{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running kubectl-rotate: %v", err)
	}
	t.Logf("$ kubectl rotate %s\n%s%s(exit %d)", strings.Join(args, " "), res.stdout, res.stderr, res.code)
	return res
}

// mustRun runs kubectl-rotate and fails the test on a non-zero exit.
func mustRun(t *testing.T, args ...string) cli {
	t.Helper()
	r := run(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("kubectl rotate %s: exit %d\n%s", strings.Join(args, " "), r.code, r.allOutput())
	}
	return r
}

func createSecret(t *testing.T, ns, name string, data map[string]string) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating secret/%s: %v", name, err)
	}
	return s
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading secret/%s: %v", name, err)
	}
	return s
}

// deployWith creates a Deployment whose pods read the given env vars from
// Secrets, and waits until it has rolled out.
func deployWith(t *testing.T, ns, name string, mutate func(*corev1.PodSpec)) {
	t.Helper()
	d := sampleDeployment(name, "unused", 1)
	d.Spec.Template.Spec.Containers[0].Env = nil
	if mutate != nil {
		mutate(&d.Spec.Template.Spec)
	}
	if _, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment/%s: %v", name, err)
	}
	waitRolledOut(t, ns, name)
}

func envFrom(secret string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = append(s.Containers[0].EnvFrom, corev1.EnvFromSource{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}})
	}
}

func envKeyFrom(secret, key string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: "V_" + strings.ReplaceAll(key, ".", "_"),
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}})
	}
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// restartedAt is the rollout-restart annotation of a Deployment's template.
func restartedAt(t *testing.T, ns, name string) string {
	return getDeployment(t, ns, name).Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
}

// assertNoValues fails if any value (raw or base64) appears in text.
func assertNoValues(t *testing.T, where, text string, vals map[string][]byte) {
	t.Helper()
	for name, v := range vals {
		if len(v) < 6 {
			continue
		}
		for _, form := range []string{string(v), base64.StdEncoding.EncodeToString(v)} {
			if strings.Contains(text, form) {
				t.Errorf("%s contains the value of %s", where, name)
			}
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type corev1PodSpec = corev1.PodSpec

func secretVolume(name, secret string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
}

// patchDeployment applies a JSON merge patch, as `kubectl patch --type=merge`
// does: no read-modify-write race with the controllers.
func patchDeployment(t *testing.T, ns, name, patch string) {
	t.Helper()
	if _, err := client.AppsV1().Deployments(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching deployment/%s: %v", name, err)
	}
}
