package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/cluster/kube"
)

// Labels on every hook Job and its pods.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "kube-rotate"
	LabelItem       = v1alpha1.LabelItem
	LabelStep       = v1alpha1.LabelStep
	LabelRotationID = v1alpha1.LabelRotationID
)

// Where a Job hook finds the values: one file per key of each Secret.
const (
	PendingDir = "/etc/kube-rotate/pending"
	CurrentDir = "/etc/kube-rotate/current"

	pendingVolume = "kube-rotate-pending"
	currentVolume = "kube-rotate-current"
)

// jobCleanupTimeout bounds deleting a Job after ctx ended.
const jobCleanupTimeout = 30 * time.Second

// logsTimeout bounds reading the logs of a failed hook pod.
var logsTimeout = 10 * time.Second

// ErrCleanup marks an error deleting a hook's Job after the hook itself
// succeeded (Result.ExitCode is 0): the backing system has the change.
var ErrCleanup = errors.New("the hook's job could not be deleted")

// Job runs a hook as a Kubernetes Job named JobName(item, step, rotation
// id) in Namespace (default: the Secret's namespace). The pending and
// current Secrets are mounted read-only at PendingDir and CurrentDir in
// every container and init container, with $KUBE_ROTATE_PENDING_DIR,
// $KUBE_ROTATE_CURRENT_DIR, $KUBE_ROTATE_STEP, $KUBE_ROTATE_ITEM,
// $KUBE_ROTATE_SECRET, $KUBE_ROTATE_NAMESPACE and $KUBE_ROTATE_ROTATION_ID
// set. A Job left by an earlier attempt (same name, managed by
// kube-rotate) is deleted first. The Job is deleted when Run returns.
type Job struct {
	Client    kubernetes.Interface
	Namespace string
	// Spec is the Job to run. Run works on a copy: backoffLimit defaults
	// to 0, restartPolicy to Never, ttlSecondsAfterFinished is cleared.
	Spec batchv1.JobSpec
	// Timeout bounds the whole run; 0 means DefaultTimeout.
	Timeout time.Duration
	// PendingSecret and CurrentSecret name the Secrets to mount; an empty
	// name mounts nothing.
	PendingSecret, CurrentSecret string
}

// Run creates the Job, waits for it to complete or fail, reads the exit
// code (and for a failed pod the tail of its logs, redacted) and deletes
// the Job. Errors are one line naming the item, step, Job and the fix.
func (h *Job) Run(ctx context.Context, v Values) (Result, error) {
	res := Result{Step: v.Step, Kind: KindJob, ExitCode: -1}
	what := v.what()
	ns := h.Namespace
	if ns == "" {
		ns = v.Namespace
	}
	if h.Client == nil || ns == "" {
		return res, fmt.Errorf("%s: a job hook needs a Kubernetes client and a namespace", what)
	}
	name := JobName(v.Item, v.Step, v.RotationID)
	res.Job = ns + "/" + name
	what = fmt.Sprintf("%s: job %s", what, res.Job)
	job, err := h.build(v, ns, name)
	if err != nil {
		return res, fmt.Errorf("%s: %v", what, err)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	jobs := h.Client.BatchV1().Jobs(ns)

	if err := h.removeLeftover(tctx, ns, name); err != nil {
		return res, h.apiError(what, "delete the earlier", err, timeout, ctx)
	}
	res.Started = time.Now()
	created, err := jobs.Create(tctx, job, metav1.CreateOptions{})
	if err != nil {
		res.Finished = time.Now()
		return res, h.apiError(what, "create", err, timeout, ctx)
	}
	cleanup := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobCleanupTimeout)
		defer cancel()
		err := jobs.Delete(dctx, name, metav1.DeleteOptions{
			PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
			Preconditions:     &metav1.Preconditions{UID: &created.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	}

	finished, err := h.wait(tctx, created)
	res.Finished = time.Now()
	if err != nil {
		summary := h.podSummary(context.WithoutCancel(ctx), created)
		cerr := cleanup()
		deleted := "deleted it"
		if cerr != nil {
			deleted = fmt.Sprintf("deleting it failed too (%v): delete it by hand", oneLine(cerr))
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return res, fmt.Errorf("%s did not finish within %s (%s); %s: check that its pod can be scheduled and its image pulled, or raise the hook's timeout", what, shortDuration(timeout), summary, deleted)
		case ctx.Err() != nil:
			return res, fmt.Errorf("%s was stopped (%v) before it finished (%s); %s", what, ctx.Err(), summary, deleted)
		}
		return res, fmt.Errorf("%s: %v (%s); %s: run the step again", what, err, summary, deleted)
	}

	red := newRedactor(v.secrets())
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), jobCleanupTimeout)
	defer lcancel()
	pods, _ := h.pods(lctx, finished)
	var hookErr error
	if finished.condition == batchv1.JobComplete {
		res.ExitCode = 0
	} else {
		hookErr = h.failure(lctx, what, finished, pods, red, &res)
	}
	if cerr := cleanup(); cerr != nil {
		if hookErr != nil {
			return res, fmt.Errorf("%v; deleting the job failed too (%v): delete it by hand", hookErr, oneLine(cerr))
		}
		return res, fmt.Errorf("%s succeeded but %w: %v: grant delete on jobs in namespace %s and delete it by hand", what, ErrCleanup, oneLine(cerr), ns)
	}
	return res, hookErr
}

// finishedJob is a Job with its terminal condition.
type finishedJob struct {
	*batchv1.Job
	condition batchv1.JobConditionType
	reason    string
}

// terminal returns Complete or Failed once the Job has that condition. It
// ignores SuccessCriteriaMet and FailureTarget (Kubernetes 1.31+), which
// come while pods may still be terminating.
func terminal(j *batchv1.Job) (batchv1.JobConditionType, string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		if c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed {
			return c.Type, c.Reason
		}
	}
	return "", ""
}

// wait watches the Job until it is Complete or Failed.
func (h *Job) wait(ctx context.Context, created *batchv1.Job) (*finishedJob, error) {
	jobs := h.Client.BatchV1().Jobs(created.Namespace)
	lw := kube.SingleObjectListWatch(created.Name,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return jobs.List(ctx, o) },
		jobs.Watch, h.Client)
	var done *finishedJob
	_, err := watchtools.UntilWithSync(ctx, lw, &batchv1.Job{}, nil, func(e watch.Event) (bool, error) {
		j, ok := e.Object.(*batchv1.Job)
		if !ok || j.UID != created.UID {
			return false, nil
		}
		switch e.Type {
		case watch.Added, watch.Modified:
			if c, reason := terminal(j); c != "" {
				done = &finishedJob{Job: j, condition: c, reason: reason}
				return true, nil
			}
		case watch.Deleted:
			return false, errors.New("it was deleted while running")
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return done, nil
}

// pods lists the pods the Job created, oldest first.
func (h *Job) pods(ctx context.Context, j *finishedJob) ([]corev1.Pod, error) {
	return listJobPods(ctx, h.Client, j.Job)
}

func listJobPods(ctx context.Context, c kubernetes.Interface, j *batchv1.Job) ([]corev1.Pod, error) {
	sel := labels.Set{batchv1.JobNameLabel: j.Name}.AsSelector()
	if j.Spec.Selector != nil {
		if s, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !s.Empty() {
			sel = s
		}
	}
	list, err := c.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == j.UID {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		return out[a].CreationTimestamp.Before(&out[b].CreationTimestamp)
	})
	return out, nil
}

// failure fills res from the failed pod (exit code, redacted logs) and
// returns the one-line error.
func (h *Job) failure(ctx context.Context, what string, j *finishedJob, pods []corev1.Pod, red *redactor, res *Result) error {
	reason := j.reason
	if reason == "" {
		reason = "Failed"
	}
	var pod *corev1.Pod
	for i := len(pods) - 1; i >= 0; i-- {
		if pods[i].Status.Phase == corev1.PodFailed {
			pod = &pods[i]
			break
		}
	}
	if pod == nil {
		return fmt.Errorf("%s failed (%s) without a failed pod: check the job's activeDeadlineSeconds and that its pod can be scheduled, then run the step again", what, reason)
	}
	container, term := failedContainer(pod)
	if term == nil {
		return fmt.Errorf("%s failed (%s): pod %s failed (%s) without a terminated container: check the node and the pod's events, then run the step again", what, reason, pod.Name, pod.Status.Reason)
	}
	res.ExitCode = int(term.ExitCode)
	last, logErr := h.logs(ctx, pod, container, red, res)
	if last == "" {
		last = lastLine(red.replace(strings.TrimSpace(term.Reason + " " + term.Message)))
		if logErr != nil {
			last += fmt.Sprintf(" (logs unavailable: %s)", oneLine(logErr))
		}
	}
	return fmt.Errorf("%s failed (%s): container %s exited %d: %s: fix the hook (image, command, or what it talks to) and run the step again", what, reason, container, term.ExitCode, last)
}

// failedContainer is the first container (init containers first) that
// terminated with a non-zero exit code, else the first that terminated.
func failedContainer(p *corev1.Pod) (string, *corev1.ContainerStateTerminated) {
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	var name string
	var first *corev1.ContainerStateTerminated
	for i := range statuses {
		t := statuses[i].State.Terminated
		if t == nil {
			t = statuses[i].LastTerminationState.Terminated
		}
		if t == nil {
			continue
		}
		if t.ExitCode != 0 {
			return statuses[i].Name, t
		}
		if first == nil {
			name, first = statuses[i].Name, t
		}
	}
	return name, first
}

// logs reads the tail of a container's logs into res.Output, redacted,
// and returns its last line ("" when there are none).
func (h *Job) logs(ctx context.Context, pod *corev1.Pod, container string, red *redactor, res *Result) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, logsTimeout)
	defer cancel()
	stream, err := h.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: container, TailLines: ptr.To[int64](1000),
	}).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer stream.Close()
	tail := red.newTail(OutputLimit)
	if _, err := io.Copy(tail, stream); err != nil && tail.total == 0 {
		return "", err
	}
	b, truncated := tail.bytes()
	res.Output = red.tail(b, truncated, OutputLimit)
	if strings.TrimSpace(res.Output) == "" {
		return "", nil
	}
	return lastLine(res.Output), nil
}

// podSummary describes where the Job's pods are, for timeout errors.
func (h *Job) podSummary(ctx context.Context, j *batchv1.Job) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pods, err := listJobPods(ctx, h.Client, j)
	if err != nil {
		return "its pods could not be listed"
	}
	if len(pods) == 0 {
		return "no pod was created"
	}
	p := pods[len(pods)-1]
	s := fmt.Sprintf("pod %s is %s", p.Name, p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Reason != "" {
			s += fmt.Sprintf(", %s: %s", c.Reason, oneLine(errors.New(c.Message)))
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += fmt.Sprintf(", container %s waiting (%s)", cs.Name, w.Reason)
		}
	}
	return s
}

// removeLeftover deletes a Job of the same name left by an earlier
// attempt and waits until it is gone. A Job of that name that kube-rotate
// does not manage is an error. (A Job deleted before the job controller
// saw the pod it was creating, then created anew under the same name, can
// get no pods for 5 minutes: kubernetes/kubernetes#131917. A leftover of
// an earlier attempt is older than that race.)
func (h *Job) removeLeftover(ctx context.Context, ns, name string) error {
	jobs := h.Client.BatchV1().Jobs(ns)
	old, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if old.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("%w: a job of that name exists and is not managed by kube-rotate (no %s=%s label): rename or delete it", errNotOurs, LabelManagedBy, ManagedBy)
	}
	err = jobs.Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &old.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return j.UID != old.UID, nil
	})
}

var errNotOurs = errors.New("not ours")

// apiError turns an API error into one line with the fix.
func (h *Job) apiError(what, verb string, err error, timeout time.Duration, parent context.Context) error {
	switch {
	case errors.Is(err, errNotOurs):
		return fmt.Errorf("%s: %s", what, strings.TrimPrefix(err.Error(), errNotOurs.Error()+": "))
	case parent.Err() != nil:
		return fmt.Errorf("%s was stopped (%v) before it ran", what, parent.Err())
	case errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err):
		return fmt.Errorf("%s: the earlier job of that name was not gone within %s: check for finalizers on it and its pods", what, shortDuration(timeout))
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: not allowed to %s it (RBAC): grant create, get, list, watch and delete on jobs, list on pods and get on pods/log in its namespace", what, verb)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%s: the API server rejected the job: %s: fix the hook's job spec", what, oneLine(err))
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: another job of that name appeared while creating it: is another rotation running the same step?", what)
	}
	return fmt.Errorf("%s: could not %s it: %s: check the cluster and run the step again", what, verb, oneLine(err))
}

// oneLine flattens an error message to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// build is the Job to create: a copy of Spec with labels, volumes and
// environment added.
func (h *Job) build(v Values, ns, name string) (*batchv1.Job, error) {
	spec := h.Spec.DeepCopy()
	pod := &spec.Template.Spec
	if len(pod.Containers) == 0 {
		return nil, errors.New("the hook's job spec has no containers: give it a pod template with the hook's container")
	}
	if spec.BackoffLimit == nil {
		spec.BackoffLimit = ptr.To[int32](0)
	}
	spec.TTLSecondsAfterFinished = nil // Run deletes it; a TTL could delete it before its result is read
	if pod.RestartPolicy == "" {
		pod.RestartPolicy = corev1.RestartPolicyNever
	}
	lbl := map[string]string{
		LabelManagedBy:  ManagedBy,
		LabelItem:       labelValue(v.Item),
		LabelStep:       labelValue(v.Step),
		LabelRotationID: labelValue(v.RotationID),
	}
	if spec.Template.Labels == nil {
		spec.Template.Labels = map[string]string{}
	}
	for k, val := range lbl {
		spec.Template.Labels[k] = val
	}

	type mount struct{ volume, secret, dir, env string }
	var mounts []mount
	if h.PendingSecret != "" {
		mounts = append(mounts, mount{pendingVolume, h.PendingSecret, PendingDir, EnvPendingDir})
	}
	if h.CurrentSecret != "" {
		mounts = append(mounts, mount{currentVolume, h.CurrentSecret, CurrentDir, EnvCurrentDir})
	}
	for _, m := range mounts {
		for _, vol := range pod.Volumes {
			if vol.Name == m.volume {
				return nil, fmt.Errorf("the hook's job spec already has a volume named %s: rename it", m.volume)
			}
		}
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: m.volume, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: m.secret, Optional: ptr.To(false)}}})
	}
	env := []corev1.EnvVar{}
	for _, kv := range v.env() {
		env = append(env, corev1.EnvVar{Name: kv[0], Value: kv[1]})
	}
	for _, m := range mounts {
		env = append(env, corev1.EnvVar{Name: m.env, Value: m.dir})
	}
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range list {
			c := &list[i]
			for _, m := range mounts {
				for _, vm := range c.VolumeMounts {
					if vm.MountPath == m.dir || strings.HasPrefix(vm.MountPath, m.dir+"/") {
						return nil, fmt.Errorf("container %s already mounts something at %s: move that mount", c.Name, vm.MountPath)
					}
				}
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.volume, MountPath: m.dir, ReadOnly: true})
			}
			c.Env = setEnv(c.Env, env)
		}
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl},
		Spec:       *spec,
	}, nil
}

// setEnv replaces or appends each of add in env.
func setEnv(env, add []corev1.EnvVar) []corev1.EnvVar {
	names := map[string]bool{}
	for _, e := range add {
		names[e.Name] = true
	}
	out := env[:0:0]
	for _, e := range env {
		if !names[e.Name] {
			out = append(out, e)
		}
	}
	return append(out, add...)
}

// JobName is the name of the Job of a hook: <item>-<step>-<short rotation
// id> as a DNS-1123 label of at most 63 characters. It is deterministic,
// so a run after a crash finds the Job an earlier attempt left. The short
// rotation id is the last 8 letters and digits of the rotation id (the
// random part of a UUID). A name that would be longer is cut and ends
// with a hash of the three parts.
func JobName(item, step, rotationID string) string {
	var parts []string
	for _, p := range []string{dnsPart(item), dnsPart(step), shortID(rotationID)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	name := strings.Join(parts, "-")
	if name == "" {
		name = "kube-rotate-hook"
	}
	const max = 63
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(item + "\x00" + step + "\x00" + rotationID))
	h := hex.EncodeToString(sum[:])[:6]
	return strings.TrimRight(name[:max-len(h)-1], "-") + "-" + h
}

// dnsPart lowercases s and turns every run of other characters than
// letters and digits into one dash.
func dnsPart(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

func shortID(id string) string {
	var b []byte
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b = append(b, byte(r))
		}
	}
	if len(b) > 8 {
		b = b[len(b)-8:]
	}
	return string(b)
}

// labelValue makes s a valid label value: other characters than letters,
// digits, '-', '_' and '.' become '-', at most 63 characters, starting
// and ending with a letter or digit.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	alnum := func(r rune) bool {
		return !((r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}
	return strings.TrimFunc(string(b), alnum)
}
