//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/e2e/images"
	"github.com/kube-rotate/kube-rotate/e2e/images/digest"
	"github.com/kube-rotate/kube-rotate/e2e/postgres"
)

// The real-pod scenarios: pods on a node whose kubelet really runs them
// (the local control plane's real node, or any kind node), so a consumer
// reads the rotated value and "healthy" is what the program itself says.
//
// The node is the one labelled kube-rotate.io/real-node=true. Where there
// is none, the scenarios skip with the harness's one-line reason, unless
// E2E_REAL_NODE=required (set by .ci/run), which makes them fail instead.
// On kind, E2E_HOST_IP and E2E_POD_CIDR say where pods reach the runner
// and from which addresses they come.

// digestKey keys the digests the test programs log of the values they
// load. It is no secret: it only keeps the logs from being a guessing
// oracle for the values.
const digestKey = "kube-rotate-e2e-digest-key-0001"

// realNodeInfo is where real pods run and how they reach the host.
type realNodeInfo struct {
	name    string
	hostIP  string // pods reach the host's test servers here
	podCIDR string // pods' source addresses, for the servers' allow lists
}

func realNode(t *testing.T) realNodeInfo {
	t.Helper()
	rn, why := findRealNode(t)
	if why == "" {
		return rn
	}
	if os.Getenv("E2E_REAL_NODE") == "required" {
		t.Fatalf("%s, and E2E_REAL_NODE=required", why)
	}
	t.Skipf("%s: this scenario needs pods that really run", why)
	return realNodeInfo{}
}

// findRealNode returns the real node, or why there is none.
func findRealNode(t *testing.T) (realNodeInfo, string) {
	t.Helper()
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: cluster.RealNodeLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			continue
		}
		info := realNodeInfo{name: n.Name, hostIP: os.Getenv("E2E_HOST_IP"), podCIDR: os.Getenv("E2E_POD_CIDR")}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && info.hostIP == "" {
				info.hostIP = a.Address
			}
		}
		if info.podCIDR == "" {
			info.podCIDR = info.hostIP + "/24"
		}
		if _, _, err := net.ParseCIDR(info.podCIDR); err != nil {
			t.Fatalf("pod network %q of node %s: %v (set E2E_POD_CIDR)", info.podCIDR, n.Name, err)
		}
		return info, ""
	}
	why := "no Ready node is labelled " + cluster.RealNodeLabel + "=true"
	if r := os.Getenv("E2E_REAL_NODE_UNAVAILABLE"); r != "" {
		why = r
	}
	return realNodeInfo{}, why
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// onRealNode puts a pod on the real node.
func onRealNode(s *corev1.PodSpec) {
	if s.NodeSelector == nil {
		s.NodeSelector = map[string]string{}
	}
	s.NodeSelector[cluster.RealNodeLabel] = "true"
	s.Tolerations = append(s.Tolerations, cluster.RealNodeToleration)
}

// realPostgres is a PostgreSQL server that pods on the real node can log
// in to, with database app, role app (password pw) and role rotator, which
// may change app's password (CREATEROLE).
func realPostgres(t *testing.T, rn realNodeInfo, pw, rotatorPW string) *postgres.Server {
	t.Helper()
	var listen []string
	if rn.hostIP != "127.0.0.1" {
		listen = []string{rn.hostIP}
	}
	if os.Getenv("E2E_HOST_IP") != "" {
		listen = []string{"*"} // kind: the runner's address on kind's network
	}
	pg := postgres.StartWith(t, postgres.Options{ListenOn: listen, AllowFrom: []string{rn.podCIDR}})
	pg.CreateDatabase(t, "app")
	pg.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD "+postgres.QuoteLiteral(pw))
	pg.Exec(t, "postgres", "CREATE ROLE rotator LOGIN CREATEROLE PASSWORD "+postgres.QuoteLiteral(rotatorPW))
	return pg
}

// dbEnv is the test programs' connection settings.
func dbEnv(rn realNodeInfo, pg *postgres.Server) []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "DB_HOST", Value: rn.hostIP}, {Name: "DB_PORT", Value: fmt.Sprint(pg.Port)},
		{Name: "DB_NAME", Value: "app"}, {Name: "DIGEST_KEY", Value: digestKey},
	}
}

// dbApp is a Deployment of the database consumer on the real node: two
// replicas that read the password of Secret secret (an env var, or a
// mounted file with fromFile), log in as app and are Ready only while that
// login works. Rollouts keep the old pods until new ones are Ready.
func dbApp(name, secret string, fromFile bool, rn realNodeInfo, pg *postgres.Server) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	c := corev1.Container{
		Name: "app", Image: images.TestApp.Ref(), ImagePullPolicy: corev1.PullNever, Args: []string{"db"},
		Env: append(dbEnv(rn, pg), corev1.EnvVar{Name: "DB_USER", Value: "app"}),
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1, TimeoutSeconds: 5, FailureThreshold: 1,
		},
	}
	spec := corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](2), Containers: []corev1.Container{c}}
	if fromFile {
		spec.Volumes = []corev1.Volume{secretVolume("db", secret)}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "db", MountPath: "/etc/db", ReadOnly: true}}
		spec.Containers[0].Env = append(spec.Containers[0].Env, corev1.EnvVar{Name: "DB_PASSWORD_FILE", Value: "/etc/db/password"})
	} else {
		spec.Containers[0].Env = append(spec.Containers[0].Env, corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "password"}}})
	}
	onRealNode(&spec)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

func createDeployment(t *testing.T, ns string, d *appsv1.Deployment) {
	t.Helper()
	if _, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment/%s: %v", d.Name, err)
	}
}

var digestLine = regexp.MustCompile(`loaded password from .* digest=([0-9a-f]{16})`)

// runningDigests returns, for each pod of deployment name's current
// ReplicaSet, the digest of the password it loaded (from its log) and
// whether it is Ready.
func runningDigests(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	rs := currentReplicaSet(t, ns, name)
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name + "," + appsv1.DefaultDeploymentUniqueLabelKey + "=" + hash})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		logs, err := client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "app"}).DoRaw(context.Background())
		if err != nil {
			t.Fatalf("logs of pod %s: %v", p.Name, err)
		}
		m := digestLine.FindSubmatch(logs)
		if m == nil {
			t.Fatalf("pod %s logged no digest:\n%s", p.Name, logs)
		}
		state := "not-ready"
		if podReady(&p) {
			state = "ready"
		}
		out[p.Name] = string(m[1]) + "/" + state
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// assertPodsRun fails unless every pod of the Deployment's current
// ReplicaSet (want of them) loaded value and is Ready.
func assertPodsRun(t *testing.T, ns, name, valueName string, value []byte, want int) {
	t.Helper()
	d := digest.Of([]byte(digestKey), value) + "/ready"
	got := runningDigests(t, ns, name)
	if len(got) != want {
		t.Errorf("deployment/%s: %d current pods, want %d", name, len(got), want)
	}
	for pod, g := range got {
		if g != d {
			t.Errorf("deployment/%s: pod %s runs with digest/state %s, want the %s value, Ready (%s)", name, pod, g, valueName, d)
		}
	}
}

type podMark struct {
	uid      string
	restarts int32
}

func podMarks(t *testing.T, ns, selector string) map[string]podMark {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]podMark{}
	for _, p := range pods.Items {
		var r int32
		for _, s := range p.Status.ContainerStatuses {
			r += s.RestartCount
		}
		out[p.Name] = podMark{uid: string(p.UID), restarts: r}
	}
	return out
}

// TestRealPodsSetHookNewPassword rotates a database password through a
// plan whose set hook is a Job on the real node: a program that reads the
// pending value from /etc/kube-rotate/pending and runs ALTER ROLE with it;
// the test hook, another Job, logs in with it. Afterwards every restarted
// pod (one Deployment reads the password from its environment, one from a
// mounted file) logs in with the new value, the old one no longer logs in,
// and the pods of a Deployment that does not read the Secret are the same
// pods as before.
func TestRealPodsSetHookNewPassword(t *testing.T) {
	rn := realNode(t)
	const oldPW, rotatorPW = "real-old-password-0001", "real-rotator-password-0001"
	pg := realPostgres(t, rn, oldPW, rotatorPW)
	ns := newNamespace(t)
	createSecret(t, ns, "db", map[string]string{"password": oldPW})
	createSecret(t, ns, "pg-admin", map[string]string{"password": rotatorPW})
	createDeployment(t, ns, dbApp("api", "db", false, rn, pg))
	createDeployment(t, ns, dbApp("worker", "db", true, rn, pg))
	other := sampleDeployment("other", "unused", 1)
	other.Spec.Template.Spec.Containers[0] = corev1.Container{Name: "app", Image: images.TestApp.Ref(), ImagePullPolicy: corev1.PullNever, Args: []string{"sleep"}}
	onRealNode(&other.Spec.Template.Spec)
	createDeployment(t, ns, other)
	for _, d := range []string{"api", "worker", "other"} {
		waitRolledOut(t, ns, d)
	}
	assertPodsRun(t, ns, "api", "old", []byte(oldPW), 2)
	assertPodsRun(t, ns, "worker", "old", []byte(oldPW), 2)
	otherBefore := podMarks(t, ns, "app=other")

	job := func(args string) string {
		return `{job: {timeout: ` + timeoutFlag(2*time.Minute) + `, template: {template: {spec: {
          nodeSelector: {` + cluster.RealNodeLabel + `: "true"},
          tolerations: [{key: ` + cluster.RealNodeTaint + `, operator: Exists, effect: NoSchedule}],
          containers: [{name: hook, image: ` + images.TestApp.Ref() + `, imagePullPolicy: Never, args: [` + args + `],
            env: [{name: DB_HOST, value: "` + rn.hostIP + `"}, {name: DB_PORT, value: "` + fmt.Sprint(pg.Port) + `"}, {name: DB_NAME, value: app},
                  {name: ROLE, value: app}, {name: ADMIN_USER, value: rotator}, {name: DIGEST_KEY, value: ` + digestKey + `},
                  {name: ADMIN_PASSWORD, valueFrom: {secretKeyRef: {name: pg-admin, key: password}}}]}]}}}}}`
	}
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: real-db-password}
spec:
  namespace: ` + ns + `
  items:
  - name: app-password
    secret:
      name: db
      generate: [{key: password, spec: "hex:16"}]
    hooks:
      set: ` + job("set-password") + `
      test: ` + job("check-login") + `
`
	planFile := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "apply", "-f", planFile)
	newPW := getSecret(t, ns, "db").Data["password"]
	if string(newPW) == oldPW || len(newPW) != 32 {
		t.Fatalf("the Secret does not hold a new 32-digit password (%d bytes)", len(newPW))
	}
	if ok, err := pg.CanLogin("app", string(newPW), "app"); err != nil || !ok {
		t.Errorf("the new password does not log in: the set hook did not apply it (%v)", err)
	}
	if ok, err := pg.CanLogin("app", oldPW, "app"); err != nil || ok {
		t.Errorf("the old password still logs in (err %v)", err)
	}
	for _, d := range []string{"api", "worker"} {
		waitRolledOut(t, ns, d)
		assertPodsRun(t, ns, d, "new", newPW, 2)
	}
	if after := podMarks(t, ns, "app=other"); fmt.Sprint(after) != fmt.Sprint(otherBefore) {
		t.Errorf("the pods of deployment/other, which does not read the Secret, changed: %v, then %v", otherBefore, after)
	}
	assertNoValues(t, "apply output", out.allOutput(), map[string][]byte{"old": []byte(oldPW), "new": newPW, "rotator": []byte(rotatorPW)})
}

// TestRealPodsUndoOnFailure rotates a password the database does not
// know (no hook sets it): the new pods never log in, so they never become
// Ready and the rollout does not complete; --undo-on-failure puts the
// previous value back and restarts again, and the pods are Ready on the
// old value.
func TestRealPodsUndoOnFailure(t *testing.T) {
	rn := realNode(t)
	const oldPW = "real-undo-password-0002"
	pg := realPostgres(t, rn, oldPW, "real-rotator-password-0002")
	ns := newNamespace(t)
	createSecret(t, ns, "db", map[string]string{"password": oldPW})
	createDeployment(t, ns, dbApp("api", "db", false, rn, pg))
	waitRolledOut(t, ns, "api")
	assertPodsRun(t, ns, "api", "old", []byte(oldPW), 2)

	res := run(t, nil, "secret", "db", "-n", ns, "--key", "password", "--generate", "hex:16", "--undo-on-failure", "--timeout", timeoutFlag(20*time.Second))
	if res.code == 0 {
		t.Fatalf("the rotation succeeded although the database rejects the new password:\n%s", res.allOutput())
	}
	if !strings.Contains(res.allOutput(), "restoring the previous values") {
		t.Errorf("no undo in the output:\n%s", res.allOutput())
	}
	if got := string(getSecret(t, ns, "db").Data["password"]); got != oldPW {
		t.Fatalf("the Secret does not hold the previous password after --undo-on-failure")
	}
	waitRolledOut(t, ns, "api")
	assertPodsRun(t, ns, "api", "old", []byte(oldPW), 2)
	assertNoValues(t, "rotate output", res.allOutput(), map[string][]byte{"old": []byte(oldPW)})
}

// TestRealNodeHookJobs runs the hook Job the kind workflow runs, on the
// real node: its containers end, so the Job completes, and the pod ran on
// the node for real (a kubelet reported the container's exit). A Job whose
// container is a pause image never ends on a kubelet: the hook's timeout
// ends it, as it would on kind, with the hook's one-line message.
func TestRealNodeHookJobs(t *testing.T) {
	rn := realNode(t)
	ns := newNamespace(t)
	hookSecrets(t, ns)
	seen := watchHookObjects(t, ns)

	ok := newHookJob(ns, scaled(2*time.Minute), "")
	onRealNode(&ok.Spec.Template.Spec)
	if res, err := ok.Run(context.Background(), hookValues(ns)); err != nil || res.ExitCode != 0 {
		t.Fatalf("the hook Job on the real node: %+v, %v", res, err)
	}
	var ran *corev1.Pod
	seen.mu.Lock()
	for _, p := range seen.pods {
		if p.Spec.NodeName == rn.name && p.Status.Phase == corev1.PodSucceeded {
			ran = p
		}
	}
	seen.mu.Unlock()
	if ran == nil {
		t.Fatalf("no pod of the hook Job succeeded on %s", rn.name)
	}
	for _, s := range ran.Status.ContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.ContainerID == "" {
			t.Errorf("container %s of pod %s: %+v (want a real container that exited 0)", s.Name, ran.Name, s.State)
		}
	}

	pause := newHookJob(ns, 15*time.Second, "")
	pause.Spec.Template.Spec.InitContainers = nil
	pause.Spec.Template.Spec.Containers = []corev1.Container{{Name: "hook", Image: images.Pause.Ref(), ImagePullPolicy: corev1.PullNever}}
	onRealNode(&pause.Spec.Template.Spec)
	_, err := pause.Run(context.Background(), hookValues(ns))
	if err == nil || !strings.Contains(err.Error(), "did not finish within 15s") {
		t.Fatalf("a pause container as a hook: %v, want the hook's timeout", err)
	}
}

// TestRealPodsJWKRotate runs `kubectl rotate jwk rotate` on a DiracX key
// set read by a signer and a verifier on the real node; both load the set
// once, at start. While the command runs, a checker keeps asking a Ready
// signer for a token and every Ready verifier to verify it: no token may
// be refused at any step. A verifier that reads a copy of the old set
// (never rotated) refuses the tokens signed after the promotion, which
// shows the checker sees a broken rotation.
func TestRealPodsJWKRotate(t *testing.T) {
	realNode(t)
	ns := newNamespace(t)
	set := readFixture(t, "diracx.json")
	createSecret(t, ns, "diracx-jwks", map[string]string{"jwks.json": string(set)})
	createSecret(t, ns, "stale-jwks", map[string]string{"jwks.json": string(set)})
	jwksApp := func(name, secret, role string) *appsv1.Deployment {
		d := sampleDeployment(name, "unused", 1)
		spec := &d.Spec.Template.Spec
		spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		spec.Volumes = []corev1.Volume{secretVolume("jwks", secret)}
		spec.Containers[0] = corev1.Container{Name: "app", Image: images.TestApp.Ref(), ImagePullPolicy: corev1.PullNever, Args: []string{role},
			Env:          []corev1.EnvVar{{Name: "JWKS_FILE", Value: "/etc/jwks/jwks.json"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "jwks", MountPath: "/etc/jwks", ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1,
				ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
		}
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1))}}
		onRealNode(spec)
		return d
	}
	createDeployment(t, ns, jwksApp("signer", "diracx-jwks", "jwks-sign"))
	createDeployment(t, ns, jwksApp("verifier", "diracx-jwks", "jwks-verify"))
	createDeployment(t, ns, jwksApp("stale-verifier", "stale-jwks", "jwks-verify"))
	for _, d := range []string{"signer", "verifier", "stale-verifier"} {
		waitRolledOut(t, ns, d)
	}
	ctx := context.Background()
	readyPods := func(app string) []string {
		l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return nil
		}
		var out []string
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				out = append(out, p.Name)
			}
		}
		return out
	}
	proxy := func(pod, path string, params map[string]string) (string, error) {
		b, err := client.CoreV1().Pods(ns).ProxyGet("http", pod, "8080", path, params).DoRaw(ctx)
		return strings.TrimSpace(string(b)), err
	}
	// check signs one token and has it verified; it returns the kid that
	// signed, and the verifiers of app that refused it (401).
	check := func(app string) (kid string, refused []string) {
		signers := readyPods("signer")
		if len(signers) == 0 {
			return "", nil
		}
		tok, err := proxy(signers[0], "/token", nil)
		if err != nil {
			return "", nil // the signer went away meanwhile
		}
		for _, v := range readyPods(app) {
			body, err := proxy(v, "/verify", map[string]string{"token": tok})
			if err != nil && strings.Contains(body, "does not verify") {
				refused = append(refused, v)
			} else if err == nil {
				kid = body
			}
		}
		return kid, refused
	}
	if kid, refused := check("verifier"); kid == "" || len(refused) > 0 {
		t.Fatalf("before the rotation: kid %q, refused by %v", kid, refused)
	}
	oldKid, _ := check("verifier")

	done, stop := make(chan struct{}), make(chan struct{})
	type failure struct{ kid, pod string }
	var failures []failure
	checks := 0
	go func() {
		defer close(done)
		for {
			kid, refused := check("verifier")
			checks++
			for _, p := range refused {
				failures = append(failures, failure{kid, p})
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	out := run(t, nil, "jwk", "rotate", "--secret", "diracx-jwks", "-n", ns, "--timeout", timeoutFlag(2*time.Minute))
	close(stop)
	<-done
	if out.code != 0 {
		t.Fatalf("jwk rotate failed:\n%s", out.allOutput())
	}
	t.Logf("%d checks during the rotation", checks)
	if len(failures) > 0 {
		t.Errorf("tokens were refused during the rotation: %v\n%s", failures, out.allOutput())
	}
	newKid, refused := check("verifier")
	if newKid == "" || newKid == oldKid || len(refused) > 0 {
		t.Errorf("after the rotation: tokens signed by kid %q (before: %q), refused by %v", newKid, oldKid, refused)
	}
	if _, stale := check("stale-verifier"); len(stale) == 0 {
		t.Errorf("the verifier that never got the new key set accepted a token of the new key %s: the check cannot see a broken rotation", newKid)
	}
}
