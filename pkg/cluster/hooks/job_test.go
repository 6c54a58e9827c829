package hooks

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestJobName(t *testing.T) {
	for _, tc := range []struct{ item, step, id, want string }{
		{"db", "set", "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "db-set-2e3f4a5b"},
		{"Prod/DB_Password", "test", "r1", "prod-db-password-test-r1"},
		{"db", "set", "", "db-set"},
		{"", "", "", "kube-rotate-hook"},
	} {
		if got := JobName(tc.item, tc.step, tc.id); got != tc.want {
			t.Errorf("JobName(%q, %q, %q) = %q, want %q", tc.item, tc.step, tc.id, got, tc.want)
		}
	}
	long := strings.Repeat("very-long-item-name-", 5)
	a, b := JobName(long+"a", "set", "r1"), JobName(long+"b", "set", "r1")
	for _, n := range []string{a, b} {
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			t.Errorf("%q: %v", n, errs)
		}
	}
	if a == b || a != JobName(long+"a", "set", "r1") {
		t.Errorf("long names must stay distinct and deterministic: %q %q", a, b)
	}
}

// fakeCluster is a fake clientset that gives objects UIDs and creation
// times, as the API server does.
func fakeCluster(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	var n atomic.Int64
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(k8stesting.CreateAction).GetObject().(metav1.Object); ok {
			o.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
			o.SetCreationTimestamp(metav1.Now())
		}
		return false, nil, nil
	})
	return c
}

func hookJob(c *fake.Clientset) *Job {
	return &Job{Client: c, Timeout: 10 * time.Second, PendingSecret: "db-creds-pending", CurrentSecret: "db-creds",
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "wait", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "hook", Image: "postgres:16", Env: []corev1.EnvVar{{Name: EnvStep, Value: "overridden"}, {Name: "PGHOST", Value: "db"}}}},
		}}}}
}

// waitJob waits until the hook's Job exists and returns it.
func waitJob(t *testing.T, c *fake.Clientset, ns, name string) *batchv1.Job {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		j, err := c.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s/%s was not created: %v", ns, name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func finish(t *testing.T, c *fake.Clientset, j *batchv1.Job, cond batchv1.JobConditionType, reason string) {
	t.Helper()
	j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, Reason: reason}}
	if _, err := c.BatchV1().Jobs(j.Namespace).UpdateStatus(context.Background(), j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

type runResult struct {
	res Result
	err error
}

func runAsync(h *Job, v Values) chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		res, err := h.Run(context.Background(), v)
		ch <- runResult{res, err}
	}()
	return ch
}

func TestJobComplete(t *testing.T) {
	c := fakeCluster()
	v := testValues()
	ch := runAsync(hookJob(c), v)
	j := waitJob(t, c, "prod", "db-set-2e3f4a5b")

	for k, want := range map[string]string{LabelManagedBy: "kube-rotate", LabelItem: "db", LabelStep: "set", LabelRotationID: v.RotationID} {
		if j.Labels[k] != want || j.Spec.Template.Labels[k] != want {
			t.Errorf("label %s = %q (pod template %q), want %q", k, j.Labels[k], j.Spec.Template.Labels[k], want)
		}
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 || j.Spec.TTLSecondsAfterFinished != nil || j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("backoffLimit %v, ttl %v, restartPolicy %q", j.Spec.BackoffLimit, j.Spec.TTLSecondsAfterFinished, j.Spec.Template.Spec.RestartPolicy)
	}
	vols := map[string]string{}
	for _, vol := range j.Spec.Template.Spec.Volumes {
		vols[vol.Name] = vol.Secret.SecretName
	}
	if vols[pendingVolume] != "db-creds-pending" || vols[currentVolume] != "db-creds" {
		t.Errorf("volumes %v", vols)
	}
	pod := j.Spec.Template.Spec
	for _, ctr := range append(pod.InitContainers, pod.Containers...) {
		mounts := map[string]string{}
		for _, m := range ctr.VolumeMounts {
			if !m.ReadOnly {
				t.Errorf("container %s: mount %s is writable", ctr.Name, m.MountPath)
			}
			mounts[m.MountPath] = m.Name
		}
		if mounts[PendingDir] != pendingVolume || mounts[CurrentDir] != currentVolume {
			t.Errorf("container %s mounts %v", ctr.Name, mounts)
		}
		env := map[string]string{}
		for _, e := range ctr.Env {
			if _, dup := env[e.Name]; dup {
				t.Errorf("container %s: env %s twice", ctr.Name, e.Name)
			}
			env[e.Name] = e.Value
		}
		for k, want := range map[string]string{EnvPendingDir: PendingDir, EnvCurrentDir: CurrentDir, EnvStep: "set", EnvItem: "db", EnvRotationID: v.RotationID} {
			if env[k] != want {
				t.Errorf("container %s: env %s=%q, want %q", ctr.Name, k, env[k], want)
			}
		}
		for k, val := range env {
			for _, s := range v.secrets() {
				if strings.Contains(val, string(s)) {
					t.Errorf("container %s: env %s holds a value", ctr.Name, k)
				}
			}
		}
	}

	finish(t, c, j, batchv1.JobComplete, "CompletionsReached")
	r := <-ch
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.ExitCode != 0 || r.res.Kind != KindJob || r.res.Job != "prod/db-set-2e3f4a5b" {
		t.Errorf("result %+v", r.res)
	}
	if _, err := c.BatchV1().Jobs("prod").Get(context.Background(), j.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the job was not deleted: %v", err)
	}
	var policy *metav1.DeletionPropagation
	for _, a := range c.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "jobs" {
			policy = d.GetDeleteOptions().PropagationPolicy
		}
	}
	if policy == nil || *policy != metav1.DeletePropagationBackground {
		t.Errorf("job deleted with propagation %v, want Background", policy)
	}
}

func TestJobFailed(t *testing.T) {
	c := fakeCluster()
	ch := runAsync(hookJob(c), testValues())
	j := waitJob(t, c, "prod", "db-set-2e3f4a5b")
	ctrl := true
	_, err := c.CoreV1().Pods("prod").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-abcde", Labels: map[string]string{batchv1.JobNameLabel: j.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: &ctrl}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "hook",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, c, j, batchv1.JobFailed, "BackoffLimitExceeded")
	r := <-ch
	// The fake API server answers every log request with "fake logs".
	want := "hook set of item db: job prod/db-set-2e3f4a5b failed (BackoffLimitExceeded): container hook exited 3: fake logs: fix the hook"
	if r.err == nil || !strings.HasPrefix(r.err.Error(), want) || strings.Contains(r.err.Error(), "\n") {
		t.Fatalf("error\n got %v\nwant %s...", r.err, want)
	}
	if r.res.ExitCode != 3 || r.res.Output != "fake logs" {
		t.Errorf("result %+v", r.res)
	}
	if _, err := c.BatchV1().Jobs("prod").Get(context.Background(), j.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed job was not deleted: %v", err)
	}
}

func TestJobTimeout(t *testing.T) {
	c := fakeCluster()
	h := hookJob(c)
	h.Timeout = 300 * time.Millisecond
	_, err := h.Run(context.Background(), testValues())
	want := "hook set of item db: job prod/db-set-2e3f4a5b did not finish within 300ms (no pod was created); deleted it: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error\n got %v\nwant %s...", err, want)
	}
	if _, err := c.BatchV1().Jobs("prod").Get(context.Background(), "db-set-2e3f4a5b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the job was not deleted after the timeout: %v", err)
	}
}

func TestJobLeftover(t *testing.T) {
	ours := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "db-set-2e3f4a5b", Namespace: "prod", UID: "old",
		Labels: map[string]string{LabelManagedBy: ManagedBy}}}
	c := fakeCluster(ours)
	ch := runAsync(hookJob(c), testValues())
	var j *batchv1.Job
	for deadline := time.Now().Add(5 * time.Second); ; {
		j = waitJob(t, c, "prod", "db-set-2e3f4a5b")
		if j.UID != "old" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leftover job was not replaced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	finish(t, c, j, batchv1.JobComplete, "")
	if r := <-ch; r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}

	foreign := ours.DeepCopy()
	foreign.Labels = nil
	c = fakeCluster(foreign)
	_, err := hookJob(c).Run(context.Background(), testValues())
	if err == nil || !strings.Contains(err.Error(), "exists and is not managed by kube-rotate") {
		t.Fatalf("error %v", err)
	}
	if _, err := c.BatchV1().Jobs("prod").Get(context.Background(), foreign.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("a job kube-rotate does not manage was deleted: %v", err)
	}
}

func TestJobSpecConflicts(t *testing.T) {
	c := fakeCluster()
	for name, mutate := range map[string]func(*Job){
		"no containers": func(h *Job) { h.Spec.Template.Spec.Containers = nil },
		"volume name":   func(h *Job) { h.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: pendingVolume}} },
		"mount path": func(h *Job) {
			h.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: CurrentDir}}
		},
	} {
		h := hookJob(c)
		mutate(h)
		if _, err := h.Run(context.Background(), testValues()); err == nil || !strings.HasPrefix(err.Error(), "hook set of item db: job prod/db-set-2e3f4a5b: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if len(c.Actions()) != 0 {
		t.Errorf("a bad spec reached the API server: %v", c.Actions())
	}
}
