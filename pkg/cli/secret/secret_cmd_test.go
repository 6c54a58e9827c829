package secret_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cli/internal/cmdtest"
	"github.com/kube-rotate/kube-rotate/pkg/cli/secret"
)

// Test values: compared, never printed; the checks only say whether
// they appear in the output.
const (
	oldToken = "old-token-value-0001"
	oldURL   = "postgresql://app:old-password-0001@db/app"
	piped    = "piped-new-value-0002"
)

// Fingerprints of the values above, as plans and records show them.
var (
	oldTokenFP = fingerprint([]byte(oldToken))
	oldURLFP   = fingerprint([]byte(oldURL))
	pipedFP    = fingerprint([]byte(piped))
)

func fingerprint(v []byte) string {
	sum := sha256.Sum256(v)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// web reads secret/app's token.
var web = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
	Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Env: []corev1.EnvVar{{Name: "TOKEN",
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "token"}}}}}}}}}}

// fixture: secret/app (token, url; label team=a) read by deployment/web,
// secret/other (label team=a) and a companion labelled team=a that -l
// must skip.
func fixture(t *testing.T) *fakeAPI {
	t.Helper()
	return newFakeAPI(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "u-app", ResourceVersion: "1", Labels: map[string]string{"team": "a"}},
			Data: map[string][]byte{"token": []byte(oldToken), "url": []byte(oldURL)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", UID: "u-other", ResourceVersion: "1", Labels: map[string]string{"team": "b"}},
			Data: map[string][]byte{"token": []byte(oldToken)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "old-previous", Namespace: "ns", UID: "u-comp", ResourceVersion: "1",
			Labels: map[string]string{"team": "a", v1alpha1.CompanionOf: "old"}}, Data: map[string][]byte{"token": []byte(oldToken)}},
		web)
}

// run runs `kubectl rotate secret ARGS` with stdin, and fails the test if
// any test value, or the value now in secret/app, is in the output.
func run(t *testing.T, a *fakeAPI, stdin string, args ...string) cmdtest.Result {
	t.Helper()
	r := cmdtest.Execute(t, func(s genericiooptions.IOStreams) *cobra.Command { return secret.NewCmdSecret(a.TF, s) }, stdin, args...)
	values := []string{oldToken, oldURL, piped, "old-password-0001"}
	for _, v := range a.SecretData(t, "app") {
		values = append(values, string(v))
	}
	for _, v := range values {
		if strings.Contains(r.Out+r.ErrOut+r.Msg, v) {
			t.Errorf("secret %s printed a secret value", strings.Join(args, " "))
		}
	}
	return r
}

// unchanged fails the test if secret/app or its companion changed.
func unchanged(t *testing.T, a *fakeAPI) {
	t.Helper()
	d := a.SecretData(t, "app")
	if !bytes.Equal(d["token"], []byte(oldToken)) || !bytes.Equal(d["url"], []byte(oldURL)) {
		t.Error("secret/app changed")
	}
	if a.SecretData(t, "app-previous") != nil {
		t.Error("secret/app-previous was created")
	}
}

// keptUntil replaces the "kept until" times (RFC 3339, now + ttl) in s
// with <now+TTL>, failing the test if one is not within [start, end] + ttl.
func keptUntil(t *testing.T, s string, start, end time.Time, ttl time.Duration) string {
	t.Helper()
	return regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllStringFunc(s, func(ts string) string {
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil || at.Before(start.Add(ttl).Truncate(time.Second)) || at.After(end.Add(ttl)) {
			t.Errorf("time %s is not now + %s", ts, ttl)
		}
		return "<now+TTL>"
	})
}

func TestSecretFlagErrors(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gen := []string{"--key", "token", "--generate", "hex:16"}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no secret", gen, "", "error: name the Secrets to rotate, or select them with -l SELECTOR"},
		{"names and selector", append([]string{"app", "-l", "team=a"}, gen...), "", "error: give Secret names or -l SELECTOR, not both"},
		{"bad output", append([]string{"app", "-o", "wide"}, gen...), "", `error: --output "wide" is not supported: use json or yaml`},
		{"bad restart", append([]string{"app", "--restart", "later"}, gen...), "", `error: --restart "later" is not supported: use rollout or none`},
		{"zero timeout", append([]string{"app", "--timeout", "0s"}, gen...), "", "error: --timeout must be positive, got 0s"},
		{"negative timeout", append([]string{"app", "--timeout=-1m"}, gen...), "", "error: --timeout must be positive, got -1m0s"},
		{"bad dry-run", append([]string{"app", "--dry-run=maybe"}, gen...), "", `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".`},
		{"bad previous-ttl", append([]string{"app", "--previous-ttl", "soon"}, gen...), "",
			`error: invalid argument "soon" for "--previous-ttl" flag: duration "soon": use forms like 90d, 12h, 30m or 1d12h`},
		{"unknown flag", append([]string{"app", "--value=x"}, gen...), "", "error: unknown flag: --value"},
		{"restart target without kind", append([]string{"app", "--restart-target", "web"}, gen...), "", `error: --restart-target "web": use KIND/NAME, e.g. deployment/web`},
		{"restart target with --restart=none", append([]string{"app", "--restart-target", "deployment/web", "--restart=none"}, gen...), "",
			`error: --restart-target restarts workloads, --restart=none restarts none: drop one of them`},
		{"restart target not restartable", append([]string{"app", "--restart-target", "cronjob/nightly"}, gen...), "",
			`error: --restart-target "cronjob/nightly": only deployment, statefulset and daemonset can be restarted`},
		{"push to two secrets", []string{"app", "other", "--force-sync", "--push", "a=hex:16"}, "", "error: --push makes the new value of one Secret: name exactly one Secret with it"},
		{"push without force-sync", []string{"app", "--push", "a=hex:16"}, "", "error: --push KEY=GENERATOR goes with --force-sync: it has the External Secrets operator write the new value to the store"},
		{"push without a generator", []string{"app", "--force-sync", "--push", "a"}, "", `error: --push "a": use KEY=GENERATOR, e.g. --push password=hex:32`},
		{"force-sync of a ClusterExternalSecret and a Secret", []string{"ces/shared", "app", "--force-sync"}, "", "error: clusterexternalsecret/shared syncs every Secret it makes: give no Secret names or -l with it"},
		{"force-sync of another kind", []string{"deployment/web", "--force-sync"}, "", `error: "deployment/web": --force-sync takes Secret names or clusterexternalsecret/NAME`},
		{"force-sync with values", append([]string{"app", "--force-sync"}, gen...), "",
			"error: --force-sync takes no value flags: the new value comes from the secret store behind the ExternalSecret"},
		{"nothing to change", []string{"app"}, "", "error: nothing to change: give --key with --generate, --from-file, --from-stdin, --url-password, --json-field or --hashed"},
		{"key without generate", []string{"app", "--key", "token"}, "", "error: --key needs --generate SPEC (" + valuesSpecHelp + "), or use --from-file/--from-stdin for values you supply"},
		{"generate without key", []string{"app", "--generate", "hex:16"}, "", "error: --generate needs at least one --key"},
		{"bad generator", []string{"app", "--key", "token", "--generate", "hex"}, "", `error: --generate: generator "hex" needs a size: use hex:N, for example hex:32`},
		{"from-file syntax", []string{"app", "--from-file", "token"}, "", `error: --from-file "token": use KEY=PATH`},
		{"from-file missing", []string{"app", "--from-file", "token=/nonexistent/v"}, "", "error: --from-file token: reading /nonexistent/v: no such file or directory"},
		{"from-file directory", []string{"app", "--from-file", "token=" + dir}, "", "error: --from-file token: " + dir + " is a directory, not a file"},
		{"empty stdin", []string{"app", "--from-stdin", "token"}, "", "error: --from-stdin token: standard input was empty: pipe the new value in"},
		{"password file without url", []string{"app", "--key", "token", "--generate", "hex:16", "--password-from-file", exists}, "",
			"error: --password-from-file is for --url-password or a url-password --json-field"},
		{"empty password file", []string{"app", "--url-password", "url", "--password-from-file", exists}, "", "error: --password-from-file " + exists + " is empty"},
		{"json-field syntax", []string{"app", "--json-field", "cfg"}, "", `error: --json-field "cfg": use KEY:FIELD[:SPEC], e.g. S3_KWARGS:aws_secret_access_key:password:40`},
		{"from-file-field syntax", []string{"app", "--from-file-field", "cfg=/x"}, "", `error: --from-file-field "cfg=/x": use KEY:FIELD=PATH`},
		{"hashed without deliver", []string{"app", "--hashed", "hash"}, "", "error: --hashed KEY and --deliver file:PATH|secret:NAME:KEY go together: the token must go somewhere, once"},
		{"bad deliver", []string{"app", "--hashed", "hash", "--deliver", "stdout"}, "", `error: --deliver "stdout": use file:PATH or secret:NAME:KEY`},
		{"deliver to no path", []string{"app", "--hashed", "hash", "--deliver", "file:"}, "", "error: --deliver file:PATH needs a path"},
		{"deliver to an existing file", []string{"app", "--hashed", "hash", "--deliver", "file:" + exists}, "",
			"error: --deliver: " + exists + " already exists: the token goes to a new file only; remove it or choose another path"},
		{"deliver to no key", []string{"app", "--hashed", "hash", "--deliver", "secret:out"}, "", "error: --deliver secret:NAME:KEY needs a Secret name and a key"},
		{"deliver to the same secret", []string{"app", "--hashed", "hash", "--deliver", "secret:app:tok", "--create-key"}, "",
			"error: --deliver: the token must go to another Secret than secret/app, which holds its hash"},
		{"hashed, two secrets", []string{"app", "other", "--hashed", "hash", "--deliver", "secret:out:tok", "--create-key"}, "",
			"error: --hashed delivers one token: rotate one Secret at a time"},
		{"key twice", []string{"app", "--key", "token", "--generate", "hex:16", "--from-stdin", "token"}, piped, "error: key token is given twice: change each key with one flag"},
		{"missing key", []string{"app", "--key", "nope", "--generate", "hex:16"}, "",
			`error: secret/app has no key "nope" (keys: token, url): check the name, or pass --create-key to add it`},
		{"missing secret", append([]string{"nope"}, gen...), "", "error: secret/nope not found in namespace ns: check the name and -n/--namespace"},
		{"selector matches nothing", append([]string{"-l", "team=c"}, gen...), "", "error: no Secrets match -l team=c in namespace ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			r := run(t, a, tt.stdin, tt.args...)
			cmdtest.CheckFatal(t, r, tt.want)
			if r.Out != "" {
				t.Errorf("stdout %q, want nothing", r.Out)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("a rejected rotation wrote %q", w)
			}
			unchanged(t, a)
		})
	}
}

const valuesSpecHelp = "random:N (N random bytes, standard base64), hex:N (N random bytes, hex), base64url:N (N random bytes, unpadded base64url), password:N (N alphanumeric characters) or uuid"

// The plan: keys, fingerprints (none for a generated value), when the
// previous values expire, consumers, undo; nothing is written.
func TestSecretDryRunClient(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"generated", []string{"app", "--key", "token", "--generate", "hex:16"}, "", `Plan (dry run: nothing was changed)
On cluster localhost:8080 (server http://localhost:8080)

secret/app (namespace ns, generation 1)
  KEY     NEW VALUE FROM   OLD                   NEW
  token   hex:16           ` + oldTokenFP + `   (generated)
  previous values -> secret/app-previous (kept until <now+TTL>)

Consumers:
  WORKLOAD         READS             ACTION
  deployment/web   env token (web)   restart, then wait for the rollout

Undo after the rotation:
  kubectl rotate undo secret/app -n ns
`},
		{"selected, url password, no undo", []string{"-l", "team=a", "--url-password", "url", "--no-keep-previous"}, "", `Plan (dry run: nothing was changed)
On cluster localhost:8080 (server http://localhost:8080)

secret/app (namespace ns, generation 1)
  KEY   NEW VALUE FROM               OLD                   NEW
  url   url-password (password:32)   ` + oldURLFP + `   (generated)

Consumers: none found (no workload reads a changed key)

Undo after the rotation:
  (none for secret/app: --no-keep-previous)
`},
		{"json", []string{"app", "--from-stdin", "token", "-o", "json"}, piped, `{
    "kind": "SecretRotation",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "dryRun": "client",
    "target": {
        "cluster": "localhost:8080",
        "server": "http://localhost:8080"
    },
    "secrets": [
        {
            "namespace": "ns",
            "name": "app",
            "generation": 1,
            "keys": [
                {
                    "key": "token",
                    "source": "stdin",
                    "old": "` + oldTokenFP + `",
                    "new": "` + pipedFP + `"
                }
            ],
            "previous": "app-previous",
            "expiresAt": "<now+TTL>"
        }
    ],
    "consumers": [
        {
            "kind": "Deployment",
            "namespace": "ns",
            "name": "web",
            "references": [
                {
                    "container": "web",
                    "how": "env",
                    "keys": [
                        "token"
                    ]
                }
            ],
            "restart": true
        }
    ],
    "phase": "planned"
}
`},
		{"yaml", []string{"app", "--from-stdin", "token", "-o", "yaml"}, piped, `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers:
- kind: Deployment
  name: web
  namespace: ns
  references:
  - container: web
    how: env
    keys:
    - token
  restart: true
dryRun: client
kind: SecretRotation
phase: planned
secrets:
- expiresAt: "<now+TTL>"
  generation: 1
  keys:
  - key: token
    new: ` + pipedFP + `
    old: ` + oldTokenFP + `
    source: stdin
  name: app
  namespace: ns
  previous: app-previous
target:
  cluster: localhost:8080
  server: http://localhost:8080
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			r := run(t, a, tt.stdin, append(tt.args, "--dry-run=client")...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if got := keptUntil(t, r.Out, start, time.Now(), 7*24*time.Hour); got != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tt.want)
			}
			if r.ErrOut != "" {
				t.Errorf("stderr %q, want nothing", r.ErrOut)
			}
			if w := a.Writes(); len(w) > 0 {
				t.Errorf("--dry-run=client wrote %q", w)
			}
			unchanged(t, a)
		})
	}
}

// summary is what a rotation of one key (%[1]s) of secret/app prints
// with --restart=none; %[2]s is the line of each consumer not restarted.
// The run says first which cluster it writes to (the test factory's).
const summary = `rotating on cluster localhost:8080 (server http://localhost:8080)
secret/app: %[1]s changed (generation 1); previous values in secret/app-previous

rotation complete: 1 secret(s), 0 workload(s) restarted
  secret/app generation 1: %[1]s
%[2]s  undo: kubectl rotate undo secret/app -n ns
`

// A rotation without restarts: the value changes, the old one is kept in
// app-previous, the history says who rotated and how.
func TestSecretRotates(t *testing.T) {
	a := fixture(t)
	r := run(t, a, "", "app", "--key", "token", "--generate", "hex:16", "--restart=none")
	want := fmt.Sprintf(summary, "token", "  deployment/web not restarted: restarts are off in this run\n")
	if r.Code != 0 || r.Out != want || r.ErrOut != "" {
		t.Fatalf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
	}
	if got, want := strings.Join(a.Writes(), "; "), "create secrets ns/app-previous; update secrets ns/app; patch secrets ns/app"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	d := a.SecretData(t, "app")
	if len(d["token"]) != 32 || bytes.Equal(d["token"], []byte(oldToken)) || !bytes.Equal(d["url"], []byte(oldURL)) {
		t.Error("secret/app: token is not a new hex:16 value, or url changed")
	}
	if prev := a.SecretData(t, "app-previous"); len(prev) != 1 || !bytes.Equal(prev["token"], []byte(oldToken)) {
		t.Error("secret/app-previous does not hold exactly the old token")
	}
	ann := a.annotations(t, "app")
	h, err := v1alpha1.ReadHistory(ann)
	if err != nil || len(h) != 1 || h[0].By != cmdtest.WhoAmI || h[0].Keys["token"] != fingerprint(d["token"]) {
		t.Errorf("history %+v (%v), want one entry by %s with the new token's fingerprint", h, err, cmdtest.WhoAmI)
	}
	if got, want := ann[v1alpha1.Method], "--key token --generate hex:16"; got != want {
		t.Errorf("method %q, want %q", got, want)
	}
}

// With -o, stdout is the record alone (fingerprints, no values) and
// progress goes to stderr.
func TestSecretOutputFormats(t *testing.T) {
	const progress = "rotating on cluster localhost:8080 (server http://localhost:8080)\nsecret/app: token changed (generation 1); previous values in secret/app-previous\n"
	tests := []struct{ format, want string }{
		{"json", `{
    "kind": "SecretRotation",
    "apiVersion": "rotate.kube-rotate.io/v1alpha1",
    "target": {
        "cluster": "localhost:8080",
        "server": "http://localhost:8080"
    },
    "secrets": [
        {
            "namespace": "ns",
            "name": "app",
            "generation": 1,
            "keys": [
                {
                    "key": "token",
                    "source": "stdin",
                    "old": "` + oldTokenFP + `",
                    "new": "` + pipedFP + `"
                }
            ],
            "previous": "app-previous",
            "expiresAt": "<now+TTL>"
        }
    ],
    "consumers": [
        {
            "kind": "Deployment",
            "namespace": "ns",
            "name": "web",
            "references": [
                {
                    "container": "web",
                    "how": "env",
                    "keys": [
                        "token"
                    ]
                }
            ],
            "restart": false,
            "note": "restarts are off in this run"
        }
    ],
    "phase": "complete",
    "undo": [
        "kubectl rotate undo secret/app -n ns"
    ]
}
`},
		{"yaml", `apiVersion: rotate.kube-rotate.io/v1alpha1
consumers:
- kind: Deployment
  name: web
  namespace: ns
  note: restarts are off in this run
  references:
  - container: web
    how: env
    keys:
    - token
  restart: false
kind: SecretRotation
phase: complete
secrets:
- expiresAt: "<now+TTL>"
  generation: 1
  keys:
  - key: token
    new: ` + pipedFP + `
    old: ` + oldTokenFP + `
    source: stdin
  name: app
  namespace: ns
  previous: app-previous
target:
  cluster: localhost:8080
  server: http://localhost:8080
undo:
- kubectl rotate undo secret/app -n ns
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			a := fixture(t)
			start := time.Now()
			r := run(t, a, piped, "app", "--from-stdin", "token", "--restart=none", "-o", tt.format)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Msg)
			}
			if got := keptUntil(t, r.Out, start, time.Now(), 7*24*time.Hour); got != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tt.want)
			}
			if r.ErrOut != progress {
				t.Errorf("stderr %q, want %q", r.ErrOut, progress)
			}
			if !bytes.Equal(a.SecretData(t, "app")["token"], []byte(piped)) {
				t.Error("secret/app does not hold the piped value")
			}
		})
	}
}

// --dry-run=server sends every write with dryRun=All; nothing changes.
func TestSecretDryRunServer(t *testing.T) {
	a := fixture(t)
	start := time.Now()
	r := run(t, a, piped, "app", "--from-stdin", "token", "--dry-run=server")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Msg)
	}
	want := `rotating on cluster localhost:8080 (server http://localhost:8080)
Server dry run: the API server accepted every write; nothing was changed

secret/app (namespace ns, generation 1)
  KEY     NEW VALUE FROM   OLD                   NEW
  token   stdin            ` + oldTokenFP + `   ` + pipedFP + `
  previous values -> secret/app-previous (kept until <now+TTL>)
`
	if got := keptUntil(t, r.Out, start, time.Now(), 7*24*time.Hour); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got, want := strings.Join(a.Writes(), "; "), "create secrets ns/app-previous (dry run); update secrets ns/app (dry run)"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
	unchanged(t, a)
}

// --hashed: the hash goes into the Secret, the token to the other Secret,
// once; neither is printed.
func TestSecretHashedDelivery(t *testing.T) {
	a := fixture(t)
	r := run(t, a, "", "app", "--hashed", "hash", "--deliver", "secret:out:tok", "--create-key", "--restart=none")
	want := fmt.Sprintf(summary, "hash", "")
	if r.Code != 0 || r.Out != want || r.ErrOut != "" {
		t.Fatalf("exit %d (%s)\nstdout:\n%s\nwant:\n%s\nstderr %q", r.Code, r.Msg, r.Out, want, r.ErrOut)
	}
	token := a.SecretData(t, "out")["tok"] // --deliver-format's default: padded base64url
	raw, err := base64.URLEncoding.DecodeString(string(token))
	sum := sha256.Sum256(raw)
	hash := a.SecretData(t, "app")["hash"]
	if err != nil || len(raw) != 32 || string(hash) != hex.EncodeToString(sum[:]) {
		t.Errorf("secret/app's hash is not the sha256 of the delivered 32-byte token (decoding: %v)", err)
	}
	if strings.Contains(r.Out+r.ErrOut, string(token)) || strings.Contains(r.Out+r.ErrOut, string(hash)) {
		t.Error("the token or its hash is in the output")
	}
	if got, want := strings.Join(a.Writes(), "; "), "create secrets ns/out; create secrets ns/app-previous; update secrets ns/app; patch secrets ns/app"; got != want {
		t.Errorf("writes %q, want %q", got, want)
	}
}

// A dry run of --hashed hands no token out: no file, no Secret.
func TestSecretHashedDryRunDeliversNothing(t *testing.T) {
	for _, dr := range []string{"--dry-run=client", "--dry-run=server"} {
		for _, to := range []string{"secret", "file"} {
			t.Run(dr+" "+to, func(t *testing.T) {
				a := fixture(t)
				path := filepath.Join(t.TempDir(), "token")
				deliver := "secret:out:tok"
				if to == "file" {
					deliver = "file:" + path
				}
				r := run(t, a, "", "app", "--hashed", "hash", "--deliver", deliver, "--create-key", dr)
				if r.Code != 0 {
					t.Fatalf("exit %d: %s", r.Code, r.Msg)
				}
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Errorf("a dry run wrote the token file (%v)", err)
				}
				if a.SecretData(t, "out") != nil {
					t.Error("a dry run created secret/out")
				}
				for _, w := range a.Writes() {
					if !strings.HasSuffix(w, " (dry run)") {
						t.Errorf("a dry run wrote: %s", w)
					}
				}
				unchanged(t, a)
			})
		}
	}
}

// A --restart-target that does not exist is a bad input: it must be
// refused before the value changes.
func TestSecretMissingRestartTargetWritesNothing(t *testing.T) {
	a := fixture(t)
	r := run(t, a, "", "other", "--key", "token", "--generate", "hex:16", "--restart-target", "deployment/api")
	cmdtest.CheckFatal(t, r, "error: deployment/api not found in namespace ns: check the name and -n/--namespace")
	if w := a.Writes(); len(w) > 0 {
		t.Errorf("a missing --restart-target still wrote %q", w)
	}
	if !bytes.Equal(a.SecretData(t, "other")["token"], []byte(oldToken)) {
		t.Error("secret/other changed")
	}
}

// annotations reads the annotations of secret/name.
func (a *fakeAPI) annotations(t *testing.T, name string) map[string]string {
	t.Helper()
	obj, err := a.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "ns", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Secret).Annotations
}

// ---- test harness (the same in every pkg/cli/<verb> test file) ----

// fakeAPI is the shared fake API server (pkg/cli/internal/cmdtest), with
// this file's helpers as methods.
type fakeAPI struct{ *cmdtest.FakeAPI }

func newFakeAPI(t *testing.T, objs ...runtime.Object) *fakeAPI {
	t.Helper()
	return &fakeAPI{cmdtest.NewFakeAPI(t, objs...)}
}
