//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/e2e/images"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/hooks"
)

// On the local cluster, kwok runs no containers: its pod-complete stage
// marks every Running pod owned by a Job Succeeded with exit code 0, and
// nothing makes a pod fail. The failure tests therefore give the Job a
// scheduler that does not exist, so no node (and no kwok) takes its pod,
// and play the kubelet themselves: they set the pod's status to Failed
// with a terminated container, and the real job controller fails the Job.

// noScheduler keeps a pod Pending and away from kwok.
const noScheduler = "kube-rotate-e2e-no-scheduler"

func hookValues(ns string) hooks.Values {
	return hooks.Values{
		Pending: map[string][]byte{"password": []byte("e2e-Pending-pw-4711")},
		Current: map[string][]byte{"password": []byte("e2e-Current-pw-0815")},
		Secret:  "db-creds", Namespace: ns, Item: "db", Step: "set", RotationID: "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
	}
}

const hookJobName = "db-set-2e3f4a5b"

func newHookJob(ns string, timeout time.Duration, scheduler string) *hooks.Job {
	return &hooks.Job{Client: client, Namespace: ns, Timeout: timeout, PendingSecret: "db-creds-pending", CurrentSecret: "db-creds",
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			SchedulerName: scheduler,
			// Containers that end: on a real kubelet (kind, the real node)
			// the Job completes only when they exit 0.
			InitContainers: []corev1.Container{{Name: "wait", Image: images.TestApp.Ref(), Args: []string{"exit", "0"}}},
			Containers: []corev1.Container{{Name: "hook", Image: images.TestApp.Ref(), Args: []string{"pending-digest"},
				Env: []corev1.EnvVar{{Name: "DIGEST_KEY", Value: digestKey}}}},
		}}}}
}

func hookSecrets(t *testing.T, ns string) {
	t.Helper()
	v := hookValues(ns)
	createSecret(t, ns, "db-creds", map[string]string{"password": string(v.Current["password"])})
	createSecret(t, ns, "db-creds-pending", map[string]string{"password": string(v.Pending["password"])})
}

// watchHookObjects records every Job and pod kube-rotate creates in ns
// until the test ends.
type hookObjects struct {
	mu   sync.Mutex
	jobs []*batchv1.Job
	pods map[string]*corev1.Pod // last state by name
}

func watchHookObjects(t *testing.T, ns string) *hookObjects {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sel := metav1.ListOptions{LabelSelector: hooks.LabelManagedBy + "=" + hooks.ManagedBy}
	jw, err := client.BatchV1().Jobs(ns).Watch(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := client.CoreV1().Pods(ns).Watch(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	o := &hookObjects{pods: map[string]*corev1.Pod{}}
	go func() {
		for e := range jw.ResultChan() {
			if j, ok := e.Object.(*batchv1.Job); ok && e.Type == watch.Added {
				o.mu.Lock()
				o.jobs = append(o.jobs, j)
				o.mu.Unlock()
			}
		}
	}()
	go func() {
		for e := range pw.ResultChan() {
			if p, ok := e.Object.(*corev1.Pod); ok {
				o.mu.Lock()
				o.pods[p.Name] = p
				o.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { jw.Stop(); pw.Stop() })
	return o
}

func (o *hookObjects) created() []*batchv1.Job {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*batchv1.Job(nil), o.jobs...)
}

func (o *hookObjects) pod(name string) *corev1.Pod {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pods[name]
}

func assertJobGone(t *testing.T, ns string) {
	t.Helper()
	if _, err := client.BatchV1().Jobs(ns).Get(context.Background(), hookJobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("job %s is still there after Run: %v", hookJobName, err)
	}
	waitFor(t, "the hook's pods to be deleted", 30*time.Second, func() bool {
		l, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: hooks.LabelManagedBy + "=" + hooks.ManagedBy})
		return err == nil && len(l.Items) == 0
	})
}

func TestHookJobComplete(t *testing.T) {
	ns := newNamespace(t)
	hookSecrets(t, ns)
	seen := watchHookObjects(t, ns)
	v := hookValues(ns)

	start := time.Now()
	res, err := newHookJob(ns, time.Minute, "").Run(context.Background(), v)
	t.Logf("Run took %s: %+v", time.Since(start), res)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 0 || res.Kind != hooks.KindJob || res.Job != ns+"/"+hookJobName || res.Output != "" {
		t.Errorf("result %+v", res)
	}
	assertJobGone(t, ns)

	jobs := seen.created()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs created, want 1", len(jobs))
	}
	j := jobs[0]
	if j.Name != hookJobName {
		t.Errorf("job name %s, want %s", j.Name, hookJobName)
	}
	for k, want := range map[string]string{hooks.LabelManagedBy: "kube-rotate", hooks.LabelItem: "db", hooks.LabelStep: "set", hooks.LabelRotationID: v.RotationID} {
		if j.Labels[k] != want {
			t.Errorf("job label %s=%q, want %q", k, j.Labels[k], want)
		}
	}
	if *j.Spec.BackoffLimit != 0 || j.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("backoffLimit %d, ttlSecondsAfterFinished %v", *j.Spec.BackoffLimit, j.Spec.TTLSecondsAfterFinished)
	}

	// The pod the job controller made from it: what kwok ran.
	var pod *corev1.Pod
	waitFor(t, "the hook's pod in the watch", 10*time.Second, func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		for _, p := range seen.pods {
			pod = p
		}
		return pod != nil
	})
	pod = seen.pod(pod.Name)
	secrets := map[string]string{}
	for _, vol := range pod.Spec.Volumes {
		if vol.Secret != nil {
			secrets[vol.Name] = vol.Secret.SecretName
		}
	}
	if secrets["kube-rotate-pending"] != "db-creds-pending" || secrets["kube-rotate-current"] != "db-creds" {
		t.Errorf("pod secret volumes %v", secrets)
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.ReadOnly
		}
		if !mounts[hooks.PendingDir] || !mounts[hooks.CurrentDir] {
			t.Errorf("container %s: read-only mounts %v", c.Name, mounts)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		for k, want := range map[string]string{hooks.EnvPendingDir: hooks.PendingDir, hooks.EnvCurrentDir: hooks.CurrentDir, hooks.EnvStep: "set", hooks.EnvItem: "db"} {
			if env[k] != want {
				t.Errorf("container %s: %s=%q, want %q", c.Name, k, env[k], want)
			}
		}
		assertNoValues(t, "container "+c.Name+" env and command", strings.Join(append(c.Command, envString(c.Env)), " "), v.Pending)
	}
	if pod.Status.Phase != corev1.PodSucceeded && pod.DeletionTimestamp == nil {
		t.Errorf("pod %s ended %s", pod.Name, pod.Status.Phase)
	}
}

func envString(env []corev1.EnvVar) string {
	var b strings.Builder
	for _, e := range env {
		b.WriteString(e.Name + "=" + e.Value + " ")
	}
	return b.String()
}

// failPod plays the kubelet for the first pod of the hook's job: the
// container exits 3 with a message that holds the pending value. It runs
// beside Run, so it reports errors rather than failing the test.
func failPod(ns string, seen *hookObjects, value string) error {
	var pod *corev1.Pod
	for deadline := time.Now().Add(30 * time.Second); pod == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no pod of the hook's job appeared")
		}
		seen.mu.Lock()
		for _, p := range seen.pods {
			pod = p.DeepCopy()
		}
		seen.mu.Unlock()
	}
	if pod.Spec.NodeName != "" {
		return fmt.Errorf("pod %s was scheduled to %s: kwok would run it", pod.Name, pod.Spec.NodeName)
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodFailed
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "wait", Image: images.TestApp.Ref(),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "hook", Image: images.TestApp.Ref(),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error",
			Message: "psql: ALTER ROLE app PASSWORD '" + value + "' failed", StartedAt: now, FinishedAt: now}}}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("failing pod %s: %v", pod.Name, err)
	}
	return nil
}

func TestHookJobFailed(t *testing.T) {
	ns := newNamespace(t)
	hookSecrets(t, ns)
	seen := watchHookObjects(t, ns)
	v := hookValues(ns)
	failed := make(chan error, 1)
	go func() { failed <- failPod(ns, seen, string(v.Pending["password"])) }()

	start := time.Now()
	res, err := newHookJob(ns, time.Minute, noScheduler).Run(context.Background(), v)
	t.Logf("Run took %s: %+v\nerror: %v", time.Since(start), res, err)
	if ferr := <-failed; ferr != nil {
		t.Fatal(ferr)
	}
	if err == nil {
		t.Fatal("a failed job must be an error")
	}
	msg := err.Error()
	want := "hook set of item db: job " + ns + "/" + hookJobName + " failed (BackoffLimitExceeded): container hook exited 3: Error psql: ALTER ROLE app PASSWORD '[REDACTED]' failed"
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "fix the hook") || strings.Contains(msg, "\n") {
		t.Errorf("error\n got %s\nwant %s ... fix the hook ...", msg, want)
	}
	assertNoValues(t, "the error", msg, v.Pending)
	assertNoValues(t, "the output", res.Output, v.Pending)
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	assertJobGone(t, ns)
}

func TestHookJobLeftoverReplaced(t *testing.T) {
	ns := newNamespace(t)
	hookSecrets(t, ns)
	// An earlier attempt's job that never finished (its pod is never
	// scheduled).
	old := newHookJob(ns, 0, noScheduler).Spec
	old.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	leftover, err := client.BatchV1().Jobs(ns).Create(context.Background(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: hookJobName, Labels: map[string]string{hooks.LabelManagedBy: hooks.ManagedBy}},
		Spec:       old,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// As a leftover from a crash would, it has its pod. (Deleting a Job
	// before the job controller saw its first pod, then creating one of
	// the same name, can leave the new one without pods for 5 minutes:
	// kubernetes/kubernetes#131917.)
	waitFor(t, "the leftover job's pod", 30*time.Second, func() bool {
		j, err := client.BatchV1().Jobs(ns).Get(context.Background(), hookJobName, metav1.GetOptions{})
		return err == nil && j.Status.Active == 1
	})
	seen := watchHookObjects(t, ns)

	res, err := newHookJob(ns, time.Minute, "").Run(context.Background(), hookValues(ns))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 0 {
		t.Errorf("result %+v", res)
	}
	var replacements []*batchv1.Job // the watch also lists the leftover as added
	for _, j := range seen.created() {
		if j.UID != leftover.UID {
			replacements = append(replacements, j)
		}
	}
	if len(replacements) != 1 || replacements[0].Name != hookJobName {
		t.Errorf("want one new job replacing %s (uid %s), got %d", hookJobName, leftover.UID, len(replacements))
	}
	assertJobGone(t, ns)

	// A job of that name kube-rotate does not manage is left alone.
	foreign := leftover.DeepCopy()
	foreign.ObjectMeta = metav1.ObjectMeta{Name: hookJobName}
	foreign.Spec.Selector, foreign.Spec.Template.Labels = nil, nil
	if _, err := client.BatchV1().Jobs(ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = newHookJob(ns, time.Minute, "").Run(context.Background(), hookValues(ns))
	if err == nil || !strings.Contains(err.Error(), "is not managed by kube-rotate") {
		t.Fatalf("error %v", err)
	}
	if _, err := client.BatchV1().Jobs(ns).Get(context.Background(), hookJobName, metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign job was touched: %v", err)
	}
	_ = client.BatchV1().Jobs(ns).Delete(context.Background(), hookJobName, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
}

func TestHookJobTimeout(t *testing.T) {
	ns := newNamespace(t)
	hookSecrets(t, ns)
	start := time.Now()
	_, err := newHookJob(ns, 3*time.Second, noScheduler).Run(context.Background(), hookValues(ns))
	t.Logf("Run took %s: %v", time.Since(start), err)
	want := "hook set of item db: job " + ns + "/" + hookJobName + " did not finish within 3s (pod " + hookJobName + "-"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "is Pending") || !strings.Contains(err.Error(), "deleted it") {
		t.Fatalf("error\n got %v\nwant %s... is Pending ... deleted it", err, want)
	}
	assertJobGone(t, ns)
}
