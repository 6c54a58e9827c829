//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
	rotatesecret "github.com/kube-rotate/kube-rotate/pkg/rotators/secret"
)

const (
	// killSecrets Secrets, each read by one Deployment; killMulti more
	// Deployments read killPerMulti of them each (envFrom).
	killSecrets  = 200
	killMulti    = 5
	killPerMulti = 3
	// killSeedEnv replays a run of TestRotateKilledAtRandomMomentsRotatesOnce.
	killSeedEnv = "E2E_KILL_SEED"
)

// Kinds of progress lines (stderr with -o json), by which kills are placed.
const (
	lineStart     = "start"      // rotating on cluster ...: keep-previous follows
	lineWrite     = "write"      // secret/X: password changed (generation 1)...
	lineRestart   = "restart"    // deployment/X restarted
	lineRolledOut = "rolled-out" // deployment "X" successfully rolled out
)

func progressKind(line string) string {
	switch {
	case strings.HasPrefix(line, "rotating on "):
		return lineStart
	case strings.HasPrefix(line, "secret/") && strings.Contains(line, " changed (generation "):
		return lineWrite
	case strings.HasPrefix(line, "deployment/") && strings.HasSuffix(line, " restarted"):
		return lineRestart
	case strings.Contains(line, " successfully rolled out"):
		return lineRolledOut
	}
	return ""
}

// TestRotateKilledAtRandomMomentsRotatesOnce: `kubectl rotate secret -l`
// over 200 Secrets is killed -9 at random moments of every phase (keep
// previous, write, restart, wait, complete), each time re-run as it was,
// then re-run to completion. What a user checks afterwards: every Secret
// holds a new value, NAME-previous holds the original one, the records say
// one rotation (generation 1, phase complete), and each workload was
// restarted once, rolled out and runs pods started after its Secrets'
// writes. E2E_KILL_SEED replays the kill moments the log names.
func TestRotateKilledAtRandomMomentsRotatesOnce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(killSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", killSeedEnv, v)
		}
		seed = s
	}
	t.Logf("seed %d (replay with %s=%d)", seed, killSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))

	ns := newNamespace(t)
	ctx := t.Context()
	k := &killFixture{t: t, ns: ns, orig: map[string][]byte{}, reads: map[string][]string{}, genBefore: map[string]int64{}, twice: map[string]bool{}}
	for i := range killSecrets {
		name := fmt.Sprintf("s-%03d", i)
		v := []byte(fmt.Sprintf("orig-%016x%016x", rng.Uint64(), rng.Uint64()))
		if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kill": "true"}},
			Data:       map[string][]byte{"password": v}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating secret/%s: %v", name, err)
		}
		k.secrets = append(k.secrets, name)
		k.orig[name] = v
	}
	create := func(d *appsv1.Deployment, secrets []string) {
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment/%s: %v", d.Name, err)
		}
		k.deploys = append(k.deploys, d.Name)
		k.reads[d.Name] = secrets
	}
	for i, s := range k.secrets {
		create(sampleDeployment(fmt.Sprintf("app-%03d", i), s, 1), []string{s}) // env PASSWORD from key password
	}
	for i := range killMulti {
		d := sampleDeployment(fmt.Sprintf("multi-%d", i), "unused", 1)
		d.Spec.Template.Spec.Containers[0].Env = nil
		var secrets []string
		for _, j := range rng.Perm(killSecrets)[:killPerMulti] {
			secrets = append(secrets, k.secrets[j])
			envFrom(k.secrets[j])(&d.Spec.Template.Spec)
		}
		create(d, secrets)
	}
	for _, d := range k.deploys {
		waitRolledOut(t, ns, d)
	}
	list, err := client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		k.genBefore[d.Name] = d.Generation
	}

	// The kills, in the order of the phases they aim at: one or two in the
	// phases that print a line per object, with n drawn over the lines the
	// run has still to print, and a few milliseconds more so that a kill
	// lands between API calls, not only right after a print.
	jitter := func(ms int) time.Duration { return time.Duration(rng.IntN(ms)) * time.Millisecond }
	plan := []killPoint{{aim: "keep-previous", kind: lineStart, delay: jitter(250)}}
	for _, aim := range []struct{ name, kind string }{{"write", lineWrite}, {"restart", lineRestart}, {"wait", lineRolledOut}} {
		for range 1 + rng.IntN(2) {
			plan = append(plan, killPoint{aim: aim.name, kind: aim.kind, frac: 0.8 * rng.Float64(), delay: jitter(20)})
		}
	}
	// After the last rollout: the complete step records phase complete
	// on each Secret.
	plan = append(plan, killPoint{aim: "complete", kind: lineRolledOut, last: true, delay: jitter(300)})

	args := []string{"secret", "-n", ns, "-l", "kill=true", "--key", "password", "--generate", "hex:16", "--timeout", timeoutFlag(5 * time.Minute), "-o", "json"}
	t.Logf("$ kubectl rotate %s, killed -9 %d times, then re-run", strings.Join(args, " "), len(plan))
	var (
		outputs []string
		record  string // -o json of the run that completed
		landed  = map[string]int{}
	)
	for i, kp := range plan {
		st := k.snapshot()
		if st.complete == killSecrets {
			t.Logf("kill %d (aimed at %s) not made: the rotation is complete", i+1, kp.aim)
			continue
		}
		kind, n := kp.nth(st, len(k.deploys))
		if kind != kp.kind {
			t.Logf("kill %d, aimed at %s: that phase is over (%s); aimed at the %s lines instead", i+1, kp.aim, st, kind)
		}
		start := time.Now()
		r := runRotateKilledAt(t, args, kind, n, kp.delay)
		outputs = append(outputs, r.stdout+strings.Join(r.lines, "\n"))
		after := k.snapshot()
		switch {
		case r.killed:
			phase := after.phase(len(k.deploys))
			landed[phase]++
			t.Logf("kill %d, aimed at %s: after %s (%s into the run, %d lines); landed in %s: %s", i+1, kp.aim, r.where, time.Since(start).Round(time.Millisecond), len(r.lines), phase, after)
		case r.code == 0:
			t.Logf("run %d (kill aimed at %s, %s line %d) completed before its kill: %d lines; %s", i+1, kp.aim, kind, n, len(r.lines), after)
			record = r.stdout
		default:
			t.Fatalf("run %d exited %d without being killed (%s); its last lines:\n%s", i+1, r.code, after, lastLines(r.lines, 30))
		}
		for _, d := range after.twiceNames {
			if !k.twice[d] {
				k.twice[d] = true
				t.Errorf("%s restarted a second time by run %d (kill aimed at %s)", d, i+1, kp.aim)
			}
		}
	}
	if landed["keep-previous"]+landed["write"] == 0 || landed["restart"]+landed["wait"] == 0 {
		t.Errorf("the kills landed in %v: none during keep-previous/write or none during restart/wait (do the progress lines still read as progressKind expects?)", landed)
	}
	if st := k.snapshot(); st.complete != killSecrets {
		start := time.Now()
		r := runRotateKilledAt(t, args, "", 0, 0)
		outputs = append(outputs, r.stdout+strings.Join(r.lines, "\n"))
		if r.killed || r.code != 0 {
			t.Fatalf("the re-run after the kills exited %d (%s); its last lines:\n%s", r.code, k.snapshot(), lastLines(r.lines, 40))
		}
		record = r.stdout
		t.Logf("the re-run completed in %s, %d lines, %d of them resuming; its last lines:\n%s", time.Since(start).Round(time.Millisecond), len(r.lines), countContaining(r.lines, ": resuming generation "), lastLines(r.lines, 6))
	} else {
		t.Log("no re-run: the rotation was complete after the kills")
	}

	k.checkSecrets()
	k.checkWorkloads()
	if record != "" {
		k.checkRecord(record)
	} else {
		t.Log("no -o json record: the last kill landed after the rotation completed, before its report")
	}
	vals := map[string][]byte{}
	for _, s := range k.secrets {
		vals["the original value of secret/"+s] = k.orig[s]
		vals["the new value of secret/"+s] = k.current[s]
	}
	assertNoValues(t, "the runs' output", strings.Join(outputs, "\n"), vals)
}

// killPoint is where a run is killed: delay after its n-th line of kind.
type killPoint struct {
	aim  string // the phase aimed at, for the log
	kind string
	// frac places n over the lines of kind the run has still to print
	// (n = 1 for lineStart); last is the last of them.
	frac  float64
	last  bool
	delay time.Duration
}

// nth is the kind of line and the line of that kind after which the run
// is killed, given the state it starts from. A kill aimed at a phase the
// rotation is past (the writes are done, say) moves on to the next one.
func (kp killPoint) nth(st killState, deploys int) (string, int) {
	kind := kp.kind
	left := 1
	if kind == lineWrite {
		if left = killSecrets - st.written - st.complete; left <= 0 {
			kind = lineRestart
		}
	}
	if kind == lineRestart {
		if left = deploys - st.restarted; left <= 0 {
			kind = lineRolledOut
		}
	}
	if kind == lineRolledOut {
		left = deploys // every run waits for every workload
	}
	if kp.last {
		return kind, max(left, 1)
	}
	return kind, 1 + int(kp.frac*float64(max(left-1, 0)))
}

type killFixture struct {
	t         *testing.T
	ns        string
	secrets   []string
	orig      map[string][]byte // the values before the rotation
	current   map[string][]byte // the values after it (checkSecrets)
	rotatedAt map[string]time.Time
	deploys   []string
	reads     map[string][]string // deployment -> the Secrets it reads
	genBefore map[string]int64
	twice     map[string]bool // deployment/NAME reported restarted twice
}

// killState counts where the rotation stands, from the objects.
type killState struct {
	companions, written, complete, journals int
	// restarted counts Deployments whose generation went up; twice those
	// that went up by more than one.
	restarted, twice int
	twiceNames       []string
}

func (s killState) String() string {
	return fmt.Sprintf("%d/%d companions, Secrets %d written %d complete, %d journals, %d Deployments restarted (%d more than once)",
		s.companions, killSecrets, s.written, s.complete, s.journals, s.restarted, s.twice)
}

// phase names the step the objects say a run stopped in.
func (s killState) phase(deploys int) string {
	switch {
	case s.complete == killSecrets:
		return "after the rotation completed"
	case s.complete > 0:
		return "complete"
	case s.written == 0 && s.companions < killSecrets:
		return "keep-previous"
	case s.written < killSecrets:
		return "write"
	case s.restarted < deploys:
		return "restart"
	}
	return "wait"
}

func (k *killFixture) snapshot() killState {
	k.t.Helper()
	ctx := k.t.Context()
	var st killState
	secrets, err := client.CoreV1().Secrets(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if _, ok := s.Labels[v1alpha1.CompanionOf]; ok {
			st.companions++
			continue
		}
		switch s.Annotations[v1alpha1.Phase] {
		case v1alpha1.PhaseWritten, v1alpha1.PhaseFailed:
			st.written++
		case v1alpha1.PhaseComplete:
			st.complete++
		}
		if _, ok := s.Annotations[rotatesecret.JournalAnnotation]; ok {
			st.journals++
		}
	}
	deploys, err := client.AppsV1().Deployments(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	for _, d := range deploys.Items {
		switch up := d.Generation - k.genBefore[d.Name]; {
		case up > 1:
			st.twice++
			st.twiceNames = append(st.twiceNames, "deployment/"+d.Name)
			fallthrough
		case up == 1:
			st.restarted++
		}
	}
	return st
}

// checkSecrets: a new value in each Secret, the original one in its
// companion, one rotation recorded, no journal left.
func (k *killFixture) checkSecrets() {
	t := k.t
	t.Helper()
	list, err := client.CoreV1().Secrets(k.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*corev1.Secret{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	k.current, k.rotatedAt = map[string][]byte{}, map[string]time.Time{}
	distinct := map[[32]byte]bool{}
	for _, name := range k.secrets {
		s := byName[name]
		if s == nil {
			t.Errorf("secret/%s is gone", name)
			continue
		}
		v := s.Data["password"]
		k.current[name] = v
		distinct[sha256.Sum256(v)] = true
		if len(v) == 0 || bytes.Equal(v, k.orig[name]) {
			t.Errorf("secret/%s key password: not rotated (empty or still the original value)", name)
		}
		if a := s.Annotations; a[v1alpha1.Phase] != v1alpha1.PhaseComplete || a[v1alpha1.Generation] != "1" {
			t.Errorf("secret/%s: phase %q generation %q, want complete and 1 (one rotation)", name, a[v1alpha1.Phase], a[v1alpha1.Generation])
		}
		if _, ok := s.Annotations[rotatesecret.JournalAnnotation]; ok {
			t.Errorf("secret/%s: the journal is left after the rotation completed", name)
		}
		at, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.RotatedAt])
		if err != nil {
			t.Errorf("secret/%s: %s: %v", name, v1alpha1.RotatedAt, err)
		}
		k.rotatedAt[name] = at
		prev := byName[rotatesecret.CompanionName(name)]
		switch {
		case prev == nil:
			t.Errorf("secret/%s has no companion secret/%s", name, rotatesecret.CompanionName(name))
		case !bytes.Equal(prev.Data["password"], k.orig[name]):
			t.Errorf("secret/%s key password: does not hold the value secret/%s had before the rotation", prev.Name, name)
		case len(prev.Data) != 1 || prev.Labels[v1alpha1.CompanionOf] != name:
			t.Errorf("secret/%s: %d keys, companion of %q; want key password only, companion of %s", prev.Name, len(prev.Data), prev.Labels[v1alpha1.CompanionOf], name)
		}
	}
	// --generate makes one value per run, for every Secret the run writes.
	t.Logf("the %d Secrets hold %d distinct new values", len(k.secrets), len(distinct))
}

// checkWorkloads: each Deployment restarted once, rolled out, its pods
// started after the writes of the Secrets it reads (so they read the new
// values).
func (k *killFixture) checkWorkloads() {
	t := k.t
	t.Helper()
	ctx := t.Context()
	list, err := client.AppsV1().Deployments(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live[p.Labels["app"]] = append(live[p.Labels["app"]], p)
		}
	}
	byName := map[string]*appsv1.Deployment{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	for _, name := range k.deploys {
		d := byName[name]
		if d == nil {
			t.Errorf("deployment/%s is gone", name)
			continue
		}
		if up := d.Generation - k.genBefore[name]; up != 1 && !k.twice["deployment/"+name] {
			t.Errorf("deployment/%s: generation %d -> %d: restarted %d times, want once", name, k.genBefore[name], d.Generation, up)
		}
		available := false
		for _, c := range d.Status.Conditions {
			available = available || c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue
		}
		want := *d.Spec.Replicas
		if st := d.Status; !available || st.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.Replicas != want || st.AvailableReplicas != want {
			t.Errorf("deployment/%s: rollout not complete: available %v, observedGeneration %d of %d, replicas %d updated %d available %d, want %d",
				name, available, st.ObservedGeneration, d.Generation, st.Replicas, st.UpdatedReplicas, st.AvailableReplicas, want)
		}
		if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Errorf("deployment/%s: its template has no restartedAt", name)
		}
		if got := len(live[name]); got != int(want) {
			t.Errorf("deployment/%s: %d pods, want %d", name, got, want)
		}
		for _, p := range live[name] {
			for _, s := range k.reads[name] {
				if p.CreationTimestamp.Time.Before(k.rotatedAt[s]) {
					t.Errorf("deployment/%s: pod %s started %s, before secret/%s's new value was written (%s): it reads the old value",
						name, p.Name, p.CreationTimestamp.UTC().Format(time.RFC3339), s, k.rotatedAt[s].Format(time.RFC3339))
				}
			}
		}
	}
}

// checkRecord: the -o json of the run that completed names the 200
// Secrets, each rotated once, with the fingerprint of the value it holds,
// and the workloads.
func (k *killFixture) checkRecord(out string) {
	t := k.t
	t.Helper()
	var rec v1alpha1.SecretRotation
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("-o json output does not parse: %v", err)
	}
	if rec.Kind != rotatesecret.KindRotation || rec.Phase != rotatesecret.PhaseComplete {
		t.Errorf("record: kind %q phase %q, want %s and complete", rec.Kind, rec.Phase, rotatesecret.KindRotation)
	}
	seen := map[string]bool{}
	resumed := 0
	for _, s := range rec.Secrets {
		if _, ok := k.orig[s.Name]; !ok || seen[s.Name] || s.Namespace != k.ns {
			t.Errorf("record: secret %s/%s is not one of the 200, or named twice", s.Namespace, s.Name)
			continue
		}
		seen[s.Name] = true
		if s.Resumed {
			resumed++
		}
		if s.Generation != 1 || s.Previous != rotatesecret.CompanionName(s.Name) {
			t.Errorf("record: secret/%s generation %d previous %q, want 1 and %s", s.Name, s.Generation, s.Previous, rotatesecret.CompanionName(s.Name))
		}
		if len(s.Keys) != 1 || s.Keys[0].Key != "password" || s.Keys[0].New != values.Fingerprint(k.current[s.Name]) {
			t.Errorf("record: secret/%s keys %+v, want password with the fingerprint of the value it holds", s.Name, s.Keys)
		}
	}
	if len(seen) != killSecrets {
		t.Errorf("record names %d of the %d Secrets", len(seen), killSecrets)
	}
	var consumers []string
	for _, w := range rec.Consumers {
		consumers = append(consumers, w.Kind+"/"+w.Name)
	}
	var want []string
	for _, d := range k.deploys {
		want = append(want, v1alpha1.KindDeployment+"/"+d)
	}
	sort.Strings(consumers)
	sort.Strings(want)
	if strings.Join(consumers, ",") != strings.Join(want, ",") {
		t.Errorf("record: %d consumers, want the %d Deployments", len(consumers), len(want))
	}
	restarted := map[string]bool{}
	for _, r := range rec.Restarted {
		name, ok := strings.CutPrefix(r, "deployment/")
		if _, known := k.reads[name]; !ok || !known || restarted[r] {
			t.Errorf("record: restarted %q is not one of the Deployments, or named twice", r)
		}
		restarted[r] = true
	}
	t.Logf("record: %d Secrets (%d resumed), %d consumers, %d restarted, phase %s", len(rec.Secrets), resumed, len(rec.Consumers), len(rec.Restarted), rec.Phase)
}

// killedRun is one run of kubectl-rotate that may have been killed.
type killedRun struct {
	lines  []string // stderr, the progress
	stdout string
	killed bool
	code   int
	where  string // the line after which it was killed
}

// runRotateKilledAt runs kubectl-rotate, reading its progress as it
// streams, and kills it -9 delay after its n-th line of kind (n 0: never).
func runRotateKilledAt(t *testing.T, args []string, kind string, n int, delay time.Duration) killedRun {
	t.Helper()
	cmd := exec.Command(rotateBin(t), args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kubectl-rotate: %v", err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var (
		r        killedRun
		kill     <-chan time.Time
		seen     int
		timedOut bool
	)
	deadline := time.After(scaled(8 * time.Minute))
	for open := true; open; {
		select {
		case l, ok := <-lines:
			if !ok {
				open = false
				continue
			}
			r.lines = append(r.lines, l)
			if n > 0 && progressKind(l) == kind {
				if seen++; seen == n {
					r.where = fmt.Sprintf("line %d (%s line %d, +%s) %q", len(r.lines), kind, n, delay, l)
					kill = time.After(delay)
				}
			}
		case <-kill:
			kill = nil
			_ = cmd.Process.Signal(syscall.SIGKILL)
		case <-deadline:
			timedOut = true
			_ = cmd.Process.Kill()
		}
	}
	_ = cmd.Wait()
	if timedOut {
		t.Fatalf("kubectl rotate %s did not end; its last lines:\n%s", strings.Join(args, " "), lastLines(r.lines, 30))
	}
	r.stdout = stdout.String()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.killed = true
	} else {
		r.code = cmd.ProcessState.ExitCode()
	}
	return r
}

func lastLines(lines []string, n int) string {
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func countContaining(lines []string, s string) int {
	c := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			c++
		}
	}
	return c
}
