//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/report"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
)

const day = 24 * time.Hour

// createAgedSecret creates an Opaque Secret whose rotated-at annotation says
// its value was set age ago (zero age: no annotation).
func createAgedSecret(t *testing.T, ns, name string, age time.Duration, labels, data map[string]string) *corev1.Secret {
	t.Helper()
	m := metav1.ObjectMeta{Name: name, Labels: labels}
	if age > 0 {
		m.Annotations = map[string]string{v1alpha1.RotatedAt: time.Now().Add(-age).UTC().Format(time.RFC3339)}
	}
	s, err := client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{ObjectMeta: m, StringData: data}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating secret/%s: %v", name, err)
	}
	return s
}

// createExpiredTLSSecret creates a kubernetes.io/tls Secret holding a
// self-signed certificate valid from 400 days ago until 10 days ago.
func createExpiredTLSSecret(t *testing.T, ns, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "web.example.invalid"},
		DNSNames:     []string{"web.example.invalid"},
		NotBefore:    now.Add(-400 * day),
		NotAfter:     now.Add(-10 * day),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating secret/%s: %v", name, err)
	}
	return cert
}

// secretValues returns every value held by the Secrets of ns, for
// assertNoValues: each data value, each line of PEM blocks, and the
// private members of JSON Web Keys.
func secretValues(t *testing.T, ns string) map[string][]byte {
	t.Helper()
	list, err := client.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string][]byte{}
	for _, s := range list.Items {
		for k, v := range s.Data {
			where := s.Name + "[" + k + "]"
			vals[where] = v
			if strings.Contains(string(v), "-----BEGIN") {
				for i, l := range strings.Split(string(v), "\n") {
					if l != "" && !strings.HasPrefix(l, "-----") {
						vals[where+" PEM line "+strconv.Itoa(i)] = []byte(l)
					}
				}
			}
			if set, err := jwks.Parse(v); err == nil {
				for _, key := range set.Keys {
					var m map[string]any
					_ = json.Unmarshal(key.Raw, &m)
					for _, member := range []string{"d", "k", "p", "q", "dp", "dq", "qi"} {
						if s, ok := m[member].(string); ok {
							vals[where+" "+member+" of "+key.KID] = []byte(s)
						}
					}
				}
			}
		}
	}
	return vals
}

// tableRow is one row of a printed table, by column header.
type tableRow map[string]string

// parseTable splits kubectl-style table output into rows, cutting each line
// at the columns of the header (runes, as the tab writer aligns them).
func parseTable(t *testing.T, out string) (header []string, rows []tableRow) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("no table in output %q", out)
	}
	head := []rune(lines[0])
	var starts []int
	for i, r := range head {
		if r != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	header = strings.Fields(lines[0])
	if len(header) != len(starts) {
		t.Fatalf("header %q: column headers must not contain spaces", lines[0])
	}
	for _, l := range lines[1:] {
		rs := []rune(l)
		row := tableRow{}
		for i, name := range header {
			from, to := starts[i], len(rs)
			if i+1 < len(starts) {
				to = starts[i+1]
			}
			if from > len(rs) {
				from = len(rs)
			}
			if to > len(rs) {
				to = len(rs)
			}
			row[name] = strings.TrimSpace(string(rs[from:to]))
		}
		rows = append(rows, row)
	}
	return header, rows
}

// rowFor returns the row of a credential (its CREDENTIAL cell starts with
// prefix), failing unless exactly one matches.
func rowFor(t *testing.T, rows []tableRow, prefix string) tableRow {
	t.Helper()
	var found []tableRow
	for _, r := range rows {
		if strings.HasPrefix(r["CREDENTIAL"], prefix) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows for %q in %v", len(found), prefix, rows)
	}
	return found[0]
}

// statusReport runs `kubectl rotate status ... -o json` and parses it.
func statusReport(t *testing.T, wantCode int, args ...string) (*report.Report, cli) {
	t.Helper()
	r := run(t, nil, append([]string{"status", "-o", "json"}, args...)...)
	if r.code != wantCode {
		t.Fatalf("status %v: exit %d, want %d\n%s", args, r.code, wantCode, r.stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status -o json does not parse: %v\n%s", err, r.stdout)
	}
	if rep.Kind != report.Kind || rep.APIVersion != "rotate.kube-rotate.io/v1alpha1" {
		t.Errorf("report kind/apiVersion %q/%q", rep.Kind, rep.APIVersion)
	}
	return &rep, r
}

func itemsByID(rep *report.Report) map[string]report.Item {
	m := map[string]report.Item{}
	for _, it := range rep.Items {
		m[it.ID] = it
	}
	return m
}

func ids(rep *report.Report) []string {
	var out []string
	for _, it := range rep.Items {
		out = append(out, it.ID)
	}
	return out
}

// TestStatus checks `kubectl rotate status` on Secrets of every age source,
// a TLS Secret whose certificate expired and a key set made by
// `kubectl rotate jwk add`: the table, -o wide/json/yaml, -l, --fail-on,
// a policy file and a bad one; no value is printed anywhere.
func TestStatus(t *testing.T) {
	cid := clusterName(t) + "/"
	ns := newNamespace(t)
	ctx := context.Background()

	// Age from managedFields: created just now.
	createAgedSecret(t, ns, "fresh-token", 0, nil, map[string]string{"token": "fresh-token-value-1"})
	// Age from creationTimestamp only, as for a Secret written before
	// managedFields existed: reset them.
	createAgedSecret(t, ns, "legacy-token", 0, nil, map[string]string{"token": "legacy-token-value-2"})
	if _, err := client.CoreV1().Secrets(ns).Patch(ctx, "legacy-token", types.MergePatchType,
		[]byte(`{"metadata":{"managedFields":[{}]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := getSecret(t, ns, "legacy-token"); len(s.ManagedFields) != 0 {
		t.Fatalf("legacy-token still has managedFields: %+v", s.ManagedFields)
	}
	// Age from rotated-at: 100 days (overdue at 90d) and 80 days (warn
	// from 76d at 90d/14d).
	apiKey := createAgedSecret(t, ns, "api-key", 100*day, map[string]string{"tier": "backend"}, map[string]string{"key": "api-key-value-3"})
	createAgedSecret(t, ns, "session-key", 80*day, map[string]string{"tier": "frontend"}, map[string]string{"key": "session-key-value-4"})
	// Rotated by kubectl rotate secret: the method is the command again.
	createAgedSecret(t, ns, "db-password", 0, map[string]string{"tier": "db"}, map[string]string{"password": "db-password-value-5"})
	mustRun(t, "secret", "db-password", "-n", ns, "--key", "password", "--generate", "hex:32")
	cert := createExpiredTLSSecret(t, ns, "web-tls")
	// A key set made by kubectl rotate jwk add: a signing key and a next key.
	createAgedSecret(t, ns, "jwks", 0, nil, nil)
	if r := run(t, nil, "jwk", "add", "--secret", "jwks", "-n", ns); r.code == 0 || !strings.Contains(r.stderr, "the key set is empty, so its layout cannot be detected") {
		t.Errorf("jwk add on an empty set without --layout: exit %d, %s", r.code, r.stderr)
	}
	mustRun(t, "jwk", "add", "--secret", "jwks", "-n", ns, "--layout", "generic")
	mustRun(t, "jwk", "add", "--secret", "jwks", "-n", ns)
	keys := listKeys(t, "--secret", "jwks", "-n", ns).Keys
	var signingKID, nextKID string
	for _, k := range keys {
		switch k.State {
		case jwks.StateActive:
			signingKID = k.KID
		case jwks.StateNext:
			nextKID = k.KID
		}
	}
	if len(keys) != 2 || signingKID == "" || nextKID == "" {
		t.Fatalf("jwk add twice: keys %+v, want one active and one next", keys)
	}
	vals := secretValues(t, ns)
	if _, ok := vals["db-password-previous[password]"]; !ok {
		t.Fatalf("kubectl rotate secret left no companion db-password-previous")
	}
	var outputs []string
	keep := func(r cli) cli { outputs = append(outputs, r.allOutput()); return r }

	// The table.
	tbl := keep(mustRun(t, "status", "-n", ns, "--max-age", "90d"))
	header, rows := parseTable(t, tbl.stdout)
	if got := strings.Join(header, " "); got != "CREDENTIAL KIND AGE SOURCE LIMIT STATE ROTATE" {
		t.Errorf("table header %q", got)
	}
	if len(rows) != 8 {
		t.Errorf("%d rows, want 8 (6 Secrets, 2 keys; no companion):\n%s", len(rows), tbl.stdout)
	}
	for _, want := range []struct{ cred, kind, source, state, rotate string }{
		{ns + "/fresh-token", "secret", "managedFields", "ok", "kubectl rotate secret fresh-token -n " + ns + " --key token --generate random:32"},
		{ns + "/legacy-token", "secret", "creationTimestamp (lower bound)", "ok", "kubectl rotate secret legacy-token -n " + ns + " --key KEY --generate random:32"},
		{ns + "/api-key", "secret", "rotated-at", "overdue", "kubectl rotate secret api-key -n " + ns + " --key key --generate random:32"},
		{ns + "/session-key", "secret", "rotated-at", "warn", "kubectl rotate secret session-key -n " + ns + " --key key --generate random:32"},
		{ns + "/db-password", "secret", "rotated-at", "ok", "kubectl rotate secret db-password -n " + ns + " --key password --generate hex:32"},
		{ns + "/web-tls", "tls", "certificate", "expired", "kubectl rotate secret web-tls -n " + ns + " --from-file tls.crt=NEW.crt --from-file tls.key=NEW.key"},
		{ns + "/jwks[jwks.json] kid " + signingKID[:12], "jwk", "kid", "ok", "kubectl rotate jwk rotate --secret jwks -n " + ns},
		{ns + "/jwks[jwks.json] kid " + nextKID[:12], "jwk", "kid", "ok", "kubectl rotate jwk promote --secret jwks -n " + ns + " " + nextKID},
	} {
		r := rowFor(t, rows, want.cred)
		if r["KIND"] != want.kind || r["SOURCE"] != want.source || r["STATE"] != want.state || r["ROTATE"] != want.rotate || r["LIMIT"] != "90d" {
			t.Errorf("row %s = %v\nwant kind %s, source %s, state %s, limit 90d, rotate %q", want.cred, r, want.kind, want.source, want.state, want.rotate)
		}
	}
	if r := rowFor(t, rows, ns+"/api-key"); r["AGE"] != "100d" {
		t.Errorf("api-key AGE %q, want 100d", r["AGE"])
	}
	if r := rowFor(t, rows, ns+"/web-tls"); r["AGE"] != "400d" {
		t.Errorf("web-tls AGE %q, want 400d (the certificate's NotBefore, not when the Secret was written)", r["AGE"])
	}
	if !strings.Contains(tbl.stderr, "8 credentials: 5 ok, 1 warn, 1 overdue, 1 expired, 0 unknown (policy: --max-age 90d --warn-before 14d)") {
		t.Errorf("summary line missing or wrong: %q", tbl.stderr)
	}

	wide := keep(mustRun(t, "status", "-n", ns, "-o", "wide"))
	header, rows = parseTable(t, wide.stdout)
	if got := strings.Join(header, " "); got != "CLUSTER CREDENTIAL KIND AGE SOURCE LIMIT STATE ROTATE RULE SINCE REASON" {
		t.Errorf("wide header %q", got)
	}
	if r := rowFor(t, rows, ns+"/api-key"); r["CLUSTER"] != clusterName(t) || r["RULE"] != "default" || r["SINCE"] != apiKey.Annotations[v1alpha1.RotatedAt] || !strings.HasSuffix(r["REASON"], "old, limit 90d") {
		t.Errorf("wide api-key row %v", r)
	}
	if r := rowFor(t, rows, ns+"/web-tls"); !strings.HasPrefix(r["REASON"], "certificate expired 10d") {
		t.Errorf("wide web-tls row %v", r)
	}

	// -o json: ids, states, sources.
	rep, _ := statusReport(t, 0, "-n", ns)
	got := itemsByID(rep)
	wantIDs := []string{"tls:" + cid + ns + "/web-tls", "secret:" + cid + ns + "/api-key", "secret:" + cid + ns + "/session-key"}
	if s := strings.Join(ids(rep)[:3], " "); s != strings.Join(wantIDs, " ") {
		t.Errorf("worst first: ids start %q, want %q", s, strings.Join(wantIDs, " "))
	}
	if len(rep.Items) != 8 || rep.Summary != (report.Summary{Total: 8, OK: 5, Warn: 1, Overdue: 1, Expired: 1}) {
		t.Errorf("summary %+v, ids %v", rep.Summary, ids(rep))
	}
	for id, want := range map[string]struct {
		kind, state, source string
	}{
		"secret:" + cid + ns + "/fresh-token":                 {"secret", "ok", "managedFields"},
		"secret:" + cid + ns + "/legacy-token":                {"secret", "ok", "creationTimestamp (lower bound)"},
		"secret:" + cid + ns + "/api-key":                     {"secret", "overdue", "rotated-at"},
		"secret:" + cid + ns + "/session-key":                 {"secret", "warn", "rotated-at"},
		"secret:" + cid + ns + "/db-password":                 {"secret", "ok", "rotated-at"},
		"tls:" + cid + ns + "/web-tls":                        {"tls", "expired", "certificate"},
		"jwk:" + cid + ns + "/jwks/jwks.json#signing":         {"jwk", "ok", "kid"},
		"jwk:" + cid + ns + "/jwks/jwks.json#next:" + nextKID: {"jwk", "ok", "kid"},
	} {
		it, ok := got[id]
		if !ok {
			t.Errorf("no item %s in %v", id, ids(rep))
			continue
		}
		if it.Kind != want.kind || string(it.State) != want.state || it.AgeSource != want.source || it.Since == nil {
			t.Errorf("%s: kind %s state %s source %q since %v; want %s %s %q", id, it.Kind, it.State, it.AgeSource, it.Since, want.kind, want.state, want.source)
		}
	}
	if it := got["secret:"+cid+ns+"/api-key"]; it.Since.UTC().Format(time.RFC3339) != apiKey.Annotations[v1alpha1.RotatedAt] ||
		it.AgeSeconds < int64(100*day/time.Second) || it.AgeSeconds > int64((100*day+10*time.Minute)/time.Second) || it.MaxAge != "90d" {
		t.Errorf("api-key: since %v, ageSeconds %d, maxAge %s; want since %s, 100 days", it.Since, it.AgeSeconds, it.MaxAge, apiKey.Annotations[v1alpha1.RotatedAt])
	}
	if it := got["secret:"+cid+ns+"/session-key"]; !strings.HasPrefix(it.Reason, "due in 9d") && !strings.HasPrefix(it.Reason, "due in 10d") {
		t.Errorf("session-key reason %q, want due in ~10d", it.Reason)
	}
	if it := got["tls:"+cid+ns+"/web-tls"]; it.NotAfter == nil || !it.NotAfter.Time.Equal(cert.NotAfter) || it.Since == nil || !it.Since.Time.Equal(cert.NotBefore) {
		t.Errorf("web-tls since %v, notAfter %v; want the certificate's %v, %v", it.Since, it.NotAfter, cert.NotBefore, cert.NotAfter)
	}
	if it := got["secret:"+cid+ns+"/db-password"]; strings.Join(it.Commands, "; ") != "kubectl rotate secret db-password -n "+ns+" --key password --generate hex:32" {
		t.Errorf("db-password commands %q: want the method it was rotated with", it.Commands)
	}
	if it := got["jwk:"+cid+ns+"/jwks/jwks.json#signing"]; it.KID != signingKID || it.KeyState != "active" || it.Key != "jwks.json" {
		t.Errorf("signing item %+v, want kid %s", it, signingKID)
	}

	// -o yaml is the same report.
	y := keep(mustRun(t, "status", "-n", ns, "-o", "yaml"))
	var yrep report.Report
	if err := yaml.Unmarshal([]byte(y.stdout), &yrep); err != nil || yrep.Summary != rep.Summary || len(yrep.Items) != len(rep.Items) {
		t.Errorf("-o yaml: summary %+v, %d items (%v); want %+v", yrep.Summary, len(yrep.Items), err, rep.Summary)
	}

	// -l restricts to matching Secrets; key sets without the label go too.
	sel, _ := statusReport(t, 0, "-n", ns, "-l", "tier in (backend,frontend)")
	if s := strings.Join(ids(sel), " "); s != "secret:"+cid+ns+"/api-key secret:"+cid+ns+"/session-key" {
		t.Errorf("-l 'tier in (backend,frontend)': ids %q", s)
	}

	// --fail-on: exit 3 at or past the level, with one line saying why.
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--fail-on", "overdue"}, 3, "2 credentials overdue or expired (--fail-on overdue)"},
		{[]string{"--fail-on", "warn"}, 3, "3 credentials overdue, expired, due soon or of unknown age (--fail-on warn)"},
		{[]string{"-l", "tier=frontend", "--fail-on", "overdue"}, 0, ""},
		{[]string{"-l", "tier=frontend", "--fail-on", "warn"}, 3, "1 credentials overdue, expired, due soon or of unknown age (--fail-on warn)"},
		{[]string{"-l", "tier=db", "--fail-on", "warn"}, 0, ""},
		{[]string{"-l", "tier=backend", "--fail-on", "overdue"}, 3, "1 credentials overdue or expired (--fail-on overdue)"},
	} {
		r := keep(run(t, nil, append([]string{"status", "-n", ns}, tt.args...)...))
		if r.code != tt.code || (tt.msg != "" && !strings.Contains(r.stderr, tt.msg)) {
			t.Errorf("status %v: exit %d, stderr %q; want exit %d and %q", tt.args, r.code, r.stderr, tt.code, tt.msg)
		}
		if !strings.HasPrefix(r.stdout, "CREDENTIAL") {
			t.Errorf("status %v: no table printed with --fail-on: %q", tt.args, r.stdout)
		}
	}
	// With -o json the report is still printed in full.
	failing, r := statusReport(t, 3, "-n", ns, "--fail-on", "overdue")
	outputs = append(outputs, r.allOutput())
	if failing.Summary != rep.Summary {
		t.Errorf("--fail-on -o json: summary %+v", failing.Summary)
	}

	// A policy file: its rules and limits replace the flags'.
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "rotation-policy.yaml")
	writeFile(t, policyFile, `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPolicy
metadata:
  name: e2e
spec:
  default:
    maxAge: 365d
    warnBefore: 30d
  rules:
  - name: sessions
    match:
      kind: secret
      names: ["session-*"]
    maxAge: 60d
  - name: signing-keys
    match:
      kind: jwk
      namespaces: [`+ns+`]
    maxAge: 30d
    warnBefore: 7d
    overlap: 1d
`)
	pol, r := statusReport(t, 0, "-n", ns, "--policy", policyFile)
	outputs = append(outputs, r.allOutput())
	pg := itemsByID(pol)
	if pol.Policy != policyFile {
		t.Errorf("report policy %q, want %q", pol.Policy, policyFile)
	}
	for id, want := range map[string]struct{ rule, maxAge, state string }{
		"secret:" + cid + ns + "/api-key":                     {"default", "365d", "ok"},
		"secret:" + cid + ns + "/session-key":                 {"sessions", "60d", "overdue"},
		"secret:" + cid + ns + "/fresh-token":                 {"default", "365d", "ok"},
		"tls:" + cid + ns + "/web-tls":                        {"default", "365d", "expired"},
		"jwk:" + cid + ns + "/jwks/jwks.json#signing":         {"signing-keys", "30d", "ok"},
		"jwk:" + cid + ns + "/jwks/jwks.json#next:" + nextKID: {"signing-keys", "30d", "ok"},
	} {
		it := pg[id]
		if it.Rule != want.rule || it.MaxAge != want.maxAge || string(it.State) != want.state {
			t.Errorf("with the policy, %s: rule %q maxAge %s state %s; want %s %s %s", id, it.Rule, it.MaxAge, it.State, want.rule, want.maxAge, want.state)
		}
	}
	if it := pg["jwk:"+cid+ns+"/jwks/jwks.json#signing"]; it.Overlap != "1d" || strings.Join(it.Commands, "") != "kubectl rotate jwk rotate --secret jwks -n "+ns+" --delete-older-than 1d" {
		t.Errorf("signing key under the policy: overlap %q, commands %q", it.Overlap, it.Commands)
	}
	if pol.Summary != (report.Summary{Total: 8, OK: 6, Overdue: 1, Expired: 1}) {
		t.Errorf("with the policy: summary %+v", pol.Summary)
	}
	pw := keep(mustRun(t, "status", "-n", ns, "--policy", policyFile, "-o", "wide"))
	if _, rows := parseTable(t, pw.stdout); rowFor(t, rows, ns+"/session-key")["RULE"] != "sessions" {
		t.Errorf("wide with the policy: session-key rule is not sessions:\n%s", pw.stdout)
	}

	// Bad policy files and flags: one error line, exit 1, nothing printed.
	badUnknown := filepath.Join(dir, "unknown-field.yaml")
	writeFile(t, badUnknown, "apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: 90d\n    maxAgee: 30d\n")
	badSyntax := filepath.Join(dir, "syntax.yaml")
	writeFile(t, badSyntax, "apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: [90d\n")
	badDuration := filepath.Join(dir, "duration.yaml")
	writeFile(t, badDuration, "apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n  default:\n    maxAge: 90 days\n")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--policy", badUnknown}, []string{badUnknown, "line 6", "maxAgee"}},
		{[]string{"--policy", badSyntax}, []string{badSyntax, "line "}},
		{[]string{"--policy", badDuration}, []string{badDuration, "line 5"}},
		{[]string{"--policy", filepath.Join(dir, "missing.yaml")}, []string{"missing.yaml"}},
		{[]string{"--policy", policyFile, "--max-age", "30d"}, []string{"--max-age and --policy"}},
		{[]string{"--fail-on", "always"}, []string{`--fail-on "always"`}},
	} {
		r := keep(run(t, nil, append([]string{"status", "-n", ns}, tt.args...)...))
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		ok := r.code == 1 && len(lines) == 1 && r.stdout == ""
		for _, w := range tt.want {
			ok = ok && strings.Contains(lines[0], w)
		}
		if !ok {
			t.Errorf("status %v: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}

	for i, out := range outputs {
		assertNoValues(t, "status output #"+strconv.Itoa(i), out, vals)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
