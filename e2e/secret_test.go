//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// TestRotateDiracXSecrets runs seed 000's secret steps as single commands on
// DiracX-shaped Secrets and checks what an operator would check afterwards.
func TestRotateDiracXSecrets(t *testing.T) {
	ns := newNamespace(t)
	const (
		authURL = "mysql+aiomysql://username:password@hostname.invalid:1234/DiracXAuthDB"
		jobURL  = "mysql+aiomysql://username:password@hostname.invalid:1234/JobDB"
		osConf  = `{"hosts": "username:password@hostname.invalid:443/os", "use_ssl": true, "verify_certs": true}`
		s3Conf  = `{"endpoint_url": "https://s3.invalid", "aws_access_key_id": "abcedfg", "aws_secret_access_key": "hijklmnop"}`
	)
	createSecret(t, ns, "diracx-sql-connection-urls", map[string]string{"DIRACX_DB_URL_AUTHDB": authURL, "DIRACX_DB_URL_JOBDB": jobURL})
	createSecret(t, ns, "diracx-os-connection-urls", map[string]string{"DIRACX_OS_DB_JOBPARAMETERSDB": osConf})
	createSecret(t, ns, "diracx-secrets", map[string]string{"DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS": s3Conf, "DIRACX_SERVICE_AUTH_STATE_KEY": "initial-state-key"})
	deployWith(t, ns, "diracx", func(s *corev1.PodSpec) {
		envFrom("diracx-sql-connection-urls")(s)
		envFrom("diracx-os-connection-urls")(s)
		envFrom("diracx-secrets")(s)
	})
	deployWith(t, ns, "web", envKeyFrom("diracx-secrets", "DIRACX_SERVICE_AUTH_STATE_KEY"))
	deployWith(t, ns, "docs", nil)
	docsBefore := getDeployment(t, ns, "docs").Generation

	// SQL URLs: one new password in both, nothing else changes.
	mustRun(t, "secret", "diracx-sql-connection-urls", "-n", ns, "--url-password", "DIRACX_DB_URL_AUTHDB,DIRACX_DB_URL_JOBDB")
	s := getSecret(t, ns, "diracx-sql-connection-urls")
	pw, err := values.URLPassword(string(s.Data["DIRACX_DB_URL_AUTHDB"]))
	if err != nil || len(pw) != 32 || pw == "password" {
		t.Fatalf("AUTHDB URL has no new 32-character password (%v)", err)
	}
	if string(s.Data["DIRACX_DB_URL_AUTHDB"]) != strings.Replace(authURL, ":password@", ":"+pw+"@", 1) ||
		string(s.Data["DIRACX_DB_URL_JOBDB"]) != strings.Replace(jobURL, ":password@", ":"+pw+"@", 1) {
		t.Errorf("URLs changed beyond the password, or the two passwords differ")
	}
	prev := getSecret(t, ns, "diracx-sql-connection-urls-previous")
	if string(prev.Data["DIRACX_DB_URL_AUTHDB"]) != authURL || string(prev.Data["DIRACX_DB_URL_JOBDB"]) != jobURL {
		t.Error("companion does not hold the previous URLs")
	}
	if prev.Labels[v1alpha1.CompanionOf] != "diracx-sql-connection-urls" || prev.Annotations[v1alpha1.ExpiresAt] == "" {
		t.Errorf("companion labels/annotations: %v %v", prev.Labels, prev.Annotations)
	}
	if s.Annotations[v1alpha1.Generation] != "1" || s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete ||
		s.Annotations[v1alpha1.Keys] != "DIRACX_DB_URL_AUTHDB,DIRACX_DB_URL_JOBDB" || s.Annotations[v1alpha1.Previous] != "diracx-sql-connection-urls-previous" {
		t.Errorf("records on the Secret: %v", s.Annotations)
	}
	if restartedAt(t, ns, "diracx") == "" {
		t.Error("deployment/diracx (reads the URLs) was not restarted")
	}
	if restartedAt(t, ns, "web") != "" {
		t.Error("deployment/web (reads another Secret) was restarted")
	}

	// OpenSearch hosts password and the S3 secret key: one JSON field each.
	mustRun(t, "secret", "diracx-os-connection-urls", "-n", ns, "--json-field", "DIRACX_OS_DB_JOBPARAMETERSDB:hosts:url-password")
	os1 := string(getSecret(t, ns, "diracx-os-connection-urls").Data["DIRACX_OS_DB_JOBPARAMETERSDB"])
	if !regexp.MustCompile(`^\{"hosts": "username:[A-Za-z0-9]{32}@hostname.invalid:443/os", "use_ssl": true, "verify_certs": true\}$`).MatchString(os1) {
		t.Errorf("OpenSearch config changed beyond the hosts password (shape %q)", regexp.MustCompile(`:[A-Za-z0-9]{32}@`).ReplaceAllString(os1, ":<new>@"))
	}
	mustRun(t, "secret", "diracx-secrets", "-n", ns, "--json-field", "DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS:aws_secret_access_key:password:40")
	s3 := string(getSecret(t, ns, "diracx-secrets").Data["DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS"])
	if !regexp.MustCompile(`^\{"endpoint_url": "https://s3.invalid", "aws_access_key_id": "abcedfg", "aws_secret_access_key": "[A-Za-z0-9]{40}"\}$`).MatchString(s3) {
		t.Error("S3 kwargs changed beyond aws_secret_access_key, or its order changed")
	}

	// The S3 key works: drop its previous value. A rotation of the same
	// Secret before that is refused, as it would drop it unasked.
	if r := run(t, nil, "secret", "diracx-secrets", "-n", ns, "--key", "DIRACX_SERVICE_AUTH_STATE_KEY", "--generate", "random:32"); r.code == 0 ||
		!strings.Contains(r.stderr, "secret/diracx-secrets-previous still holds the values of DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS") {
		t.Errorf("a second rotation before finish: exit %d %s, want a refusal", r.code, r.stderr)
	}
	if string(getSecret(t, ns, "diracx-secrets").Data["DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS"]) != s3 {
		t.Error("the refused rotation changed secret/diracx-secrets")
	}
	mustRun(t, "finish", "secret/diracx-secrets", "-n", ns)

	// Auth state key: 32 random bytes, base64; both readers restarted once.
	webBefore := getDeployment(t, ns, "web").Generation
	mustRun(t, "secret", "diracx-secrets", "-n", ns, "--key", "DIRACX_SERVICE_AUTH_STATE_KEY", "--generate", "random:32")
	key, err := base64.StdEncoding.DecodeString(string(getSecret(t, ns, "diracx-secrets").Data["DIRACX_SERVICE_AUTH_STATE_KEY"]))
	if err != nil || len(key) != 32 {
		t.Errorf("auth state key is not 32 random bytes in base64")
	}
	if g := getDeployment(t, ns, "web").Generation; g != webBefore+1 {
		t.Errorf("deployment/web generation %d -> %d, want exactly one restart", webBefore, g)
	}
	if g := getDeployment(t, ns, "docs").Generation; g != docsBefore {
		t.Errorf("deployment/docs (reads no Secret) changed generation %d -> %d", docsBefore, g)
	}
	h := mustRun(t, "history", "secret/diracx-secrets", "-n", ns, "-o", "json")
	var hist struct{ Items []v1alpha1.Entry }
	if err := json.Unmarshal([]byte(h.stdout), &hist); err != nil || len(hist.Items) != 2 || hist.Items[1].Generation != 2 {
		t.Errorf("history = %+v (%v), want two rotations", hist.Items, err)
	}
}

// TestRotateSeveralSecretsRestartsEachWorkloadOnce: all writes first, then
// one restart per workload, however many of its Secrets changed.
func TestRotateSeveralSecretsRestartsEachWorkloadOnce(t *testing.T) {
	ns := newNamespace(t)
	for _, n := range []string{"a", "b", "c"} {
		s := createSecret(t, ns, "tok-"+n, map[string]string{"token": "old-" + n})
		s.Labels = map[string]string{"part-of": "demo"}
		if _, err := client.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deployWith(t, ns, "all", func(s *corev1.PodSpec) {
		envKeyFrom("tok-a", "token")(s)
		envFrom("tok-b")(s)
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tok-c"}}})
	})
	deployWith(t, ns, "only-a", envKeyFrom("tok-a", "token"))
	before := getDeployment(t, ns, "all").Generation
	r := mustRun(t, "secret", "-n", ns, "-l", "part-of=demo", "--key", "token", "--generate", "hex:32", "-o", "json")
	var res struct {
		Secrets   []struct{ Name string }
		Restarted []string
		Phase     string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("-o json output does not parse: %v", err)
	}
	if len(res.Secrets) != 3 || res.Phase != "complete" {
		t.Errorf("record = %+v", res)
	}
	if strings.Join(res.Restarted, ",") != "deployment/all,deployment/only-a" {
		t.Errorf("restarted = %v, want each workload once", res.Restarted)
	}
	if g := getDeployment(t, ns, "all").Generation; g != before+1 {
		t.Errorf("deployment/all generation %d -> %d, want one restart for three Secrets", before, g)
	}
	for _, n := range []string{"a", "b", "c"} {
		v := getSecret(t, ns, "tok-"+n).Data["token"]
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(v) {
			t.Errorf("tok-%s: token is not 32 random bytes in hex", n)
		}
	}
	if !strings.Contains(r.stderr, `deployment "all" successfully rolled out`) {
		t.Errorf("progress did not go to stderr with -o json:\n%s", r.stderr)
	}
}

// TestDryRunsChangeNothing: client dry run prints the plan, server dry run
// has the API server check the writes; neither changes an object.
func TestDryRunsChangeNothing(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"password": "old-password-value"})
	deployWith(t, ns, "app", envKeyFrom("app", "password"))
	rv := getSecret(t, ns, "app").ResourceVersion
	drv := getDeployment(t, ns, "app").ResourceVersion

	plan := mustRun(t, "secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--dry-run=client")
	for _, want := range []string{"Plan (dry run: nothing was changed)\nOn cluster " + clusterName(t) + " (context ", ", server " + restConfig.Host + ")", "password", "password:24", values.Fingerprint([]byte("old-password-value")),
		"(generated)", "secret/app-previous", "deployment/app", "env password (app)", "kubectl rotate undo secret/app -n " + ns} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	mustRun(t, "secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--dry-run=server")
	if getSecret(t, ns, "app").ResourceVersion != rv || getDeployment(t, ns, "app").ResourceVersion != drv {
		t.Error("a dry run changed the Secret or the Deployment")
	}
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "app-previous", metav1.GetOptions{}); err == nil {
		t.Error("a dry run created the companion")
	}
}

// TestUndoAndFinish: undo restores and restarts; finish deletes the
// companion; undo then explains why it cannot.
func TestUndoAndFinish(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"password": "the-original-password"})
	deployWith(t, ns, "app", envKeyFrom("app", "password"))
	mustRun(t, "secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--key", "extra", "--create-key")
	if _, ok := getSecret(t, ns, "app").Data["extra"]; !ok {
		t.Fatal("--create-key did not add the key")
	}
	first := restartedAt(t, ns, "app")
	mustRun(t, "undo", "secret/app", "-n", ns)
	s := getSecret(t, ns, "app")
	if string(s.Data["password"]) != "the-original-password" {
		t.Error("undo did not restore the previous value")
	}
	if _, ok := s.Data["extra"]; ok {
		t.Error("undo kept a key the rotation created")
	}
	if restartedAt(t, ns, "app") == first {
		t.Error("undo did not restart the consumer")
	}
	again := mustRun(t, "undo", "secret/app", "-n", ns)
	if !strings.Contains(again.stdout, "nothing to undo") {
		t.Errorf("second undo: %s", again.stdout)
	}
	mustRun(t, "finish", "secret/app", "-n", ns)
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "app-previous", metav1.GetOptions{}); err == nil {
		t.Error("finish left the companion")
	}
	if _, ok := getSecret(t, ns, "app").Annotations[v1alpha1.Previous]; ok {
		t.Error("finish left the previous annotation")
	}
	r := run(t, nil, "undo", "secret/app", "-n", ns)
	if r.code == 0 || !strings.Contains(r.stderr, "no previous values for secret/app") {
		t.Errorf("undo after finish: exit %d, %s", r.code, r.stderr)
	}
}

// TestFailedRollout: a consumer that never becomes Ready. Without
// --undo-on-failure the run fails naming it and the undo command; with it,
// the previous values come back.
func TestFailedRollout(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"password": "the-original-password"})
	deployWith(t, ns, "healthy", envKeyFrom("app", "password"))
	deployWith(t, ns, "broken", envKeyFrom("app", "password"))
	// From now on its new pods cannot be scheduled: the rollout never completes.
	patchDeployment(t, ns, "broken", `{"spec":{"progressDeadlineSeconds":600,"template":{"spec":{"nodeSelector":{"no-such-node":"true"}}}}}`)

	// The timeout is also how long deployment/healthy has to roll out: 5s
	// on kwok nodes, longer on a real kubelet (E2E_TIMEOUT_SCALE).
	timeout := timeoutFlag(5 * time.Second)
	r := run(t, nil, "secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--timeout", timeout)
	if r.code == 0 {
		t.Fatal("rotation with a consumer that never becomes Ready succeeded")
	}
	for _, want := range []string{"deployment/broken", "not rolled out within " + timeout, "kubectl rotate undo secret/app -n " + ns} {
		if !strings.Contains(r.allOutput(), want) {
			t.Errorf("failure output lacks %q", want)
		}
	}
	if strings.Contains(r.stderr, "deployment/healthy (") {
		t.Error("the healthy consumer is reported unhealthy")
	}
	s := getSecret(t, ns, "app")
	if string(s.Data["password"]) == "the-original-password" || s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseFailed {
		t.Errorf("after a failed rollout without --undo-on-failure the new value must stay, phase failed (phase %q)", s.Annotations[v1alpha1.Phase])
	}
	mustRun(t, "undo", "secret/app", "-n", ns, "--restart=none")
	if string(getSecret(t, ns, "app").Data["password"]) != "the-original-password" {
		t.Fatal("undo did not restore the value")
	}

	r = run(t, nil, "secret", "app", "-n", ns, "--key", "password", "--generate", "password:24", "--timeout", timeout, "--undo-on-failure")
	if r.code == 0 || !strings.Contains(r.allOutput(), "previous values were restored") {
		t.Errorf("--undo-on-failure: exit %d", r.code)
	}
	if string(getSecret(t, ns, "app").Data["password"]) != "the-original-password" {
		t.Error("--undo-on-failure did not restore the previous value")
	}
}

// TestBadInputChangesNothing: one clear line, non-zero exit, no change.
func TestBadInputChangesNothing(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "app", map[string]string{"url": "not a url", "json": "not json", "password": "x"})
	imm := createSecret(t, ns, "frozen", map[string]string{"password": "x"})
	imm.Immutable = ptr.To(true)
	if _, err := client.CoreV1().Secrets(ns).Update(context.Background(), imm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rv := getSecret(t, ns, "app").ResourceVersion
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing secret", []string{"secret", "nope", "--key", "k", "--generate", "random:32"}, "secret/nope not found in namespace " + ns},
		{"missing key", []string{"secret", "app", "--key", "nokey", "--generate", "random:32"}, `secret/app has no key "nokey" (keys: json, password, url)`},
		{"immutable", []string{"secret", "frozen", "--key", "password", "--generate", "random:32"}, "secret/frozen is immutable"},
		{"not a URL", []string{"secret", "app", "--url-password", "url"}, "secret/app key url: is not a URL with a password"},
		{"not JSON", []string{"secret", "app", "--json-field", "json:f"}, "secret/app key json: is not valid JSON"},
		{"bad spec", []string{"secret", "app", "--key", "password", "--generate", "random:4"}, "size must be between 16 and 8192 bytes"},
		{"value as argument is no flag", []string{"secret", "app", "--key", "password"}, "--key needs --generate"},
		{"missing file", []string{"secret", "app", "--from-file", "password=/nonexistent/file"}, "--from-file password: reading /nonexistent/file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, nil, append(tt.args, "-n", ns)...)
			if r.code == 0 {
				t.Fatal("succeeded")
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr is not one error line containing %q:\n%s", tt.want, r.stderr)
			}
		})
	}
	if getSecret(t, ns, "app").ResourceVersion != rv {
		t.Error("bad input changed the Secret")
	}
	if _, err := client.CoreV1().Secrets(ns).Get(context.Background(), "app-previous", metav1.GetOptions{}); err == nil {
		t.Error("bad input created a companion")
	}
}

// TestUserSuppliedValuesAndHashedPair: values from a file and stdin, and
// the DiracX legacy exchange key delivered once to a 0600 file.
func TestUserSuppliedValuesAndHashedPair(t *testing.T) {
	ns := newNamespace(t)
	createSecret(t, ns, "diracx-secrets", map[string]string{"A": "a0", "B": "b0", "DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY": "00"})
	dir := t.TempDir()
	file := filepath.Join(dir, "a")
	if err := os.WriteFile(file, []byte("value-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "secret", "diracx-secrets", "-n", ns, "--from-file", "A="+file, "--restart=none")
	// B's rotation would drop A's previous value: refused, then asked for.
	if r := run(t, []byte("value-from-stdin\n"), "secret", "diracx-secrets", "-n", ns, "--from-stdin", "B", "--restart=none"); r.code == 0 || !strings.Contains(r.stderr, "--replace-previous") {
		t.Fatalf("B before A is finished: exit %d %s, want a refusal naming --replace-previous", r.code, r.stderr)
	}
	if r := run(t, []byte("value-from-stdin\n"), "secret", "diracx-secrets", "-n", ns, "--from-stdin", "B", "--restart=none", "--replace-previous"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	s := getSecret(t, ns, "diracx-secrets")
	if string(s.Data["A"]) != "value-from-a-file" || string(s.Data["B"]) != "value-from-stdin" {
		t.Error("supplied values not stored (trailing newline must be dropped)")
	}

	keyFile := filepath.Join(dir, "legacy-api-key")
	r := mustRun(t, "secret", "diracx-secrets", "-n", ns, "--hashed", "DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY",
		"--deliver", "file:"+keyFile, "--deliver-format", "diracx:legacy:{{.Base64URL}}", "--restart=none", "--replace-previous")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v (mode %v), want 0600", err, fi)
	}
	plain, _ := os.ReadFile(keyFile)
	tok, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(string(plain)), "diracx:legacy:"))
	if err != nil || len(tok) != 32 {
		t.Fatalf("delivered token is not diracx:legacy:<urlsafe base64 of 32 bytes>")
	}
	sum := sha256.Sum256(tok)
	if string(getSecret(t, ns, "diracx-secrets").Data["DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY"]) != hex.EncodeToString(sum[:]) {
		t.Error("stored value is not sha256(token) in hex")
	}
	assertNoValues(t, "output", r.allOutput(), map[string][]byte{"token": []byte(strings.TrimSpace(string(plain)))})
	again := run(t, nil, "secret", "diracx-secrets", "-n", ns, "--hashed", "DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY", "--deliver", "file:"+keyFile, "--replace-previous")
	if again.code == 0 || !strings.Contains(again.stderr, "already exists") {
		t.Errorf("delivering to an existing file: exit %d %s", again.code, again.stderr)
	}
}
