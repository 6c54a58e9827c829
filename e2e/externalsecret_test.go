//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kube-rotate/kube-rotate/e2e/eso"
	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/externalsecrets"
)

var (
	externalSecrets        = externalsecrets.ExternalSecrets
	clusterExternalSecrets = externalsecrets.ClusterExternalSecrets
	pushSecrets            = externalsecrets.PushSecrets
)

// The real External Secrets Operator (v0.20.4, built from the module proxy
// by `bin/e2e-cluster eso`), started once for the test binary on first use
// and stopped when it ends.
var (
	esoOnce sync.Once
	esoOp   *eso.Operator
	esoErr  error
)

// externalSecretsOperator makes sure the real operator runs against the
// test cluster.
func externalSecretsOperator(t *testing.T) *eso.Operator {
	t.Helper()
	esoOnce.Do(func() {
		b, err := eso.FromEnv()
		if err != nil {
			esoErr = err
			return
		}
		dir, err := os.MkdirTemp("", "e2e-external-secrets-")
		if err != nil {
			esoErr = err
			return
		}
		esoOp, esoErr = eso.Start(context.Background(), eso.Options{Build: b, LogDir: dir})
	})
	if esoErr != nil {
		t.Fatalf("starting the External Secrets operator: %v", esoErr)
	}
	return esoOp
}

// stopExternalSecretsOperator stops the operator if a test started it.
func stopExternalSecretsOperator() {
	if esoOp != nil {
		_ = esoOp.Stop()
	}
}

// esFixture is one namespace with the real operator and a fake
// ClusterSecretStore of its own standing for Secret Manager.
type esFixture struct {
	t     *testing.T
	ns    string
	store string
	dyn   dynamic.Interface
	op    *eso.Operator
	data  map[string]string
}

func newESFixture(t *testing.T, data map[string]string) *esFixture {
	t.Helper()
	op := externalSecretsOperator(t)
	f := &esFixture{t: t, ns: newNamespace(t), dyn: dynamic.NewForConfigOrDie(restConfig), op: op, data: map[string]string{}}
	f.store = "store-" + f.ns
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			f.describe()
		}
		_ = eso.Cleanup(ctx, f.dyn, f.ns, 30*time.Second)
		_ = f.dyn.Resource(eso.ClusterSecretStores).Delete(ctx, f.store, metav1.DeleteOptions{})
	})
	f.setStore(data)
	return f
}

// describe logs what a user would look at after a failure: each
// ExternalSecret's annotations and status, and the operator's log (no
// values: neither holds any).
func (f *esFixture) describe() {
	l, err := f.dyn.Resource(externalSecrets).Namespace("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Logf("listing ExternalSecrets: %v", err)
		return
	}
	for _, es := range l.Items {
		status, _ := json.Marshal(es.Object["status"])
		f.t.Logf("externalsecret/%s -n %s: generation %d, annotations %v, status %s", es.GetName(), es.GetNamespace(), es.GetGeneration(), es.GetAnnotations(), status)
	}
	f.t.Logf("controller log:\n%s", f.op.LogTail(40))
}

// setStore sets values in the store ("a new version in Secret Manager").
func (f *esFixture) setStore(data map[string]string) {
	f.t.Helper()
	for k, v := range data {
		f.data[k] = v
	}
	var entries []eso.FakeData
	for k, v := range f.data {
		entries = append(entries, eso.FakeData{Key: k, Value: v})
	}
	if err := eso.FakeStore(context.Background(), f.dyn, f.store, entries); err != nil {
		f.t.Fatalf("%v\ncontroller log:\n%s", err, f.op.LogTail(20))
	}
}

// externalSecret creates an ExternalSecret reading the fixture's store.
func (f *esFixture) externalSecret(name string, spec map[string]any) {
	f.t.Helper()
	if _, ok := spec["refreshInterval"]; !ok {
		spec["refreshInterval"] = "1h"
	}
	spec["secretStoreRef"] = map[string]any{"name": f.store, "kind": "ClusterSecretStore"}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
	if _, err := f.dyn.Resource(externalSecrets).Namespace(f.ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		f.t.Fatalf("creating externalsecret/%s: %v", name, err)
	}
}

// waitSynced waits until the operator has written keys into secret/name.
func (f *esFixture) waitSynced(name string, keys ...string) *corev1.Secret {
	f.t.Helper()
	var s *corev1.Secret
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		cur, err := client.CoreV1().Secrets(f.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			ok := true
			for _, k := range keys {
				if _, has := cur.Data[k]; !has {
					ok = false
				}
			}
			if ok {
				return cur
			}
			s = cur
		}
		time.Sleep(100 * time.Millisecond)
	}
	have := "no Secret"
	if s != nil {
		have = fmt.Sprintf("keys %v", sortedKeys(s.Data))
	}
	f.t.Fatalf("the operator did not write %v into secret/%s within 1m (%s)\ncontroller log:\n%s", keys, name, have, f.op.LogTail(20))
	return nil
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func data(key, remote string) map[string]any {
	return map[string]any{"secretKey": key, "remoteRef": map[string]any{"key": remote}}
}

// TestForceSyncRealOperator follows seed 001 (Deepdesk) against the real
// operator: a plain write is refused; after a new value in the store,
// --force-sync keeps the old one in the back-compat copy, waits for the
// operator, restarts only the reader of the changed key; a second
// rotation before finish is refused and leaves the copy alone.
func TestForceSyncRealOperator(t *testing.T) {
	f := newESFixture(t, map[string]string{"admin-account": "the-old-account-secret", "other": "unchanged-value"})
	f.externalSecret("admin-secrets", map[string]any{"data": []any{data("SECRET_KEY", "admin-account"), data("OTHER", "other")}})
	f.waitSynced("admin-secrets", "SECRET_KEY", "OTHER")
	ns := f.ns
	deployWith(t, ns, "admin", envKeyFrom("admin-secrets", "SECRET_KEY"))
	deployWith(t, ns, "reads-other", envKeyFrom("admin-secrets", "OTHER"))

	r := run(t, nil, "secret", "admin-secrets", "-n", ns, "--key", "SECRET_KEY", "--generate", "random:32")
	if r.code == 0 || !strings.Contains(r.stderr, "written by externalsecret/admin-secrets (external-secrets.io, creationPolicy Owner)") || !strings.Contains(r.stderr, "--force-sync") {
		t.Fatalf("writing an ExternalSecret's Secret: exit %d %s", r.code, r.stderr)
	}

	f.setStore(map[string]string{"admin-account": "the-new-account-secret"})
	otherBefore := getDeployment(t, ns, "reads-other").Generation
	r = mustRun(t, "secret", "admin-secrets", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	s := getSecret(t, ns, "admin-secrets")
	if string(s.Data["SECRET_KEY"]) != "the-new-account-secret" {
		t.Error("the Secret does not hold the store's new value")
	}
	prev := getSecret(t, ns, "admin-secrets-previous")
	if string(prev.Data["SECRET_KEY"]) != "the-old-account-secret" {
		t.Error("the back-compat copy does not hold the old account secret")
	}
	if s.Annotations[v1alpha1.Phase] != v1alpha1.PhaseComplete || s.Annotations[v1alpha1.Keys] != "SECRET_KEY" {
		t.Errorf("records: %v", s.Annotations)
	}
	if restartedAt(t, ns, "admin") == "" {
		t.Error("deployment/admin was not restarted after the sync")
	}
	if getDeployment(t, ns, "reads-other").Generation != otherBefore {
		t.Error("deployment/reads-other was restarted although OTHER did not change")
	}
	if !strings.Contains(r.stdout, "SECRET_KEY changed by externalsecret/admin-secrets") {
		t.Errorf("output does not say what the sync changed:\n%s", r.stdout)
	}
	vals := map[string][]byte{"old": []byte("the-old-account-secret"), "new": []byte("the-new-account-secret"), "other": []byte("unchanged-value"), "third": []byte("the-third-account-secret")}
	outputs := []string{r.allOutput()}

	// A second rotation before the first is finished would lose the
	// back-compat copy: refused, nothing written.
	f.setStore(map[string]string{"admin-account": "the-third-account-secret"})
	r = run(t, nil, "secret", "admin-secrets", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	outputs = append(outputs, r.allOutput())
	if r.code == 0 || !strings.Contains(r.stderr, "secret/admin-secrets-previous still holds the values of SECRET_KEY from before rotation 1 of secret/admin-secrets") ||
		!strings.Contains(r.stderr, "kubectl rotate finish secret/admin-secrets -n "+ns) {
		t.Fatalf("second rotation before finish: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("the refusal is not one line:\n%s", r.stderr)
	}
	if got := getSecret(t, ns, "admin-secrets-previous"); string(got.Data["SECRET_KEY"]) != "the-old-account-secret" || got.ResourceVersion != prev.ResourceVersion {
		t.Error("the refused rotation changed the back-compat copy")
	}
	if string(getSecret(t, ns, "admin-secrets").Data["SECRET_KEY"]) != "the-new-account-secret" {
		t.Error("the refused rotation let the operator sync")
	}
	// Finished (every field re-saved), the next rotation goes through.
	outputs = append(outputs, mustRun(t, "finish", "secret/admin-secrets", "-n", ns, "--force").allOutput())
	outputs = append(outputs, mustRun(t, "secret", "admin-secrets", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second), "-o", "yaml").allOutput())
	if string(getSecret(t, ns, "admin-secrets").Data["SECRET_KEY"]) != "the-third-account-secret" ||
		string(getSecret(t, ns, "admin-secrets-previous").Data["SECRET_KEY"]) != "the-new-account-secret" {
		t.Error("after finish, the next force-sync did not rotate")
	}
	outputs = append(outputs, mustRun(t, "history", "secret/admin-secrets", "-n", ns, "-o", "json").allOutput())
	for i, o := range outputs {
		assertNoValues(t, fmt.Sprintf("output of command %d", i+1), o, vals)
	}
	assertNamespaceHoldsNoValue(t, ns, vals)
}

// assertNamespaceHoldsNoValue scans what more people read than Secrets'
// data: Secrets' metadata, Events, ConfigMaps, Deployments, and the
// ExternalSecrets and PushSecrets of ns (where their CRDs are installed).
func assertNamespaceHoldsNoValue(t *testing.T, ns string, vals map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	secrets, _ := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	for _, s := range secrets.Items {
		meta, _ := json.Marshal(s.ObjectMeta)
		assertNoValues(t, "metadata of secret/"+s.Name, string(meta), vals)
	}
	for what, list := range map[string]func() (any, error){
		"events":      func() (any, error) { return client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}) },
		"configmaps":  func() (any, error) { return client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}) },
		"deployments": func() (any, error) { return client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}) },
	} {
		l, err := list()
		if err != nil {
			t.Fatalf("listing %s: %v", what, err)
		}
		b, _ := json.Marshal(l)
		assertNoValues(t, what, string(b), vals)
	}
	dyn := dynamic.NewForConfigOrDie(restConfig)
	for _, gvr := range []schema.GroupVersionResource{externalSecrets, pushSecrets} {
		l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		b, _ := json.Marshal(l)
		assertNoValues(t, gvr.Resource, string(b), vals)
	}
}

// ESO does not sync an ExternalSecret with refreshInterval 0 again,
// force-sync or not (shouldRefreshPeriodic): refused before any write.
func TestForceSyncRefusesRefreshIntervalZero(t *testing.T) {
	f := newESFixture(t, map[string]string{"k": "the-first-value"})
	f.externalSecret("app", map[string]any{"refreshInterval": "0s", "data": []any{data("KEY", "k")}})
	f.waitSynced("app", "KEY")
	before, err := f.dyn.Resource(externalSecrets).Namespace(f.ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "secret", "app", "-n", f.ns, "--force-sync", "--timeout", "20s")
	if r.code == 0 || strings.TrimSpace(r.stderr) != "error: externalsecret/app has refreshInterval 0s: the External Secrets operator does not sync it again, force-sync included; set spec.refreshInterval (e.g. 1h) or spec.refreshPolicy: OnChange first" {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if _, err := client.CoreV1().Secrets(f.ns).Get(context.Background(), "app-previous", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refusal wrote secret/app-previous (%v)", err)
	}
	after, _ := f.dyn.Resource(externalSecrets).Namespace(f.ns).Get(context.Background(), "app", metav1.GetOptions{})
	if after.GetAnnotations()["force-sync"] != "" || after.GetGeneration() != before.GetGeneration() {
		t.Error("the refusal annotated the ExternalSecret")
	}
	// Proof the rule is the operator's: annotated by hand, nothing syncs.
	f.setStore(map[string]string{"k": "the-second-value"})
	patch := []byte(`{"metadata":{"annotations":{"force-sync":"by-hand"}}}`)
	if _, err := f.dyn.Resource(externalSecrets).Namespace(f.ns).Patch(context.Background(), "app", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if string(getSecret(t, f.ns, "app").Data["KEY"]) != "the-first-value" {
		t.Error("the operator synced an ExternalSecret with refreshInterval 0 after force-sync: the refusal is wrong")
	}
}

// creationPolicy Merge: the operator writes only its keys into a Secret
// someone else made. Its keys are refused to plain rotation and synced by
// --force-sync; the Secret's own keys are rotated as usual and survive
// the operator's next sync.
func TestForceSyncMerge(t *testing.T) {
	f := newESFixture(t, map[string]string{"db-pass": "the-old-db-password"})
	ns := f.ns
	createSecret(t, ns, "app", map[string]string{"LOCAL_TOKEN": "the-old-local-token"})
	f.externalSecret("app-es", map[string]any{"target": map[string]any{"name": "app", "creationPolicy": "Merge"}, "data": []any{data("DB_PASSWORD", "db-pass")}})
	f.waitSynced("app", "DB_PASSWORD")
	deployWith(t, ns, "db-user", envKeyFrom("app", "DB_PASSWORD"))
	deployWith(t, ns, "token-user", envKeyFrom("app", "LOCAL_TOKEN"))

	r := run(t, nil, "secret", "app", "-n", ns, "--key", "DB_PASSWORD", "--generate", "hex:16")
	if r.code == 0 || !strings.Contains(r.stderr, "key DB_PASSWORD of secret/app is written by externalsecret/app-es (external-secrets.io, creationPolicy Merge)") {
		t.Fatalf("rotating the operator's key: exit %d\n%s", r.code, r.stderr)
	}
	mustRun(t, "secret", "app", "-n", ns, "--key", "LOCAL_TOKEN", "--generate", "hex:16", "--no-keep-previous")
	token := string(getSecret(t, ns, "app").Data["LOCAL_TOKEN"])
	if token == "the-old-local-token" {
		t.Fatal("LOCAL_TOKEN was not rotated")
	}
	tokenUserBefore := getDeployment(t, ns, "token-user").Generation

	f.setStore(map[string]string{"db-pass": "the-new-db-password"})
	mustRun(t, "secret", "app", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	s := getSecret(t, ns, "app")
	if string(s.Data["DB_PASSWORD"]) != "the-new-db-password" || string(s.Data["LOCAL_TOKEN"]) != token {
		t.Errorf("after the sync: DB_PASSWORD new=%v, LOCAL_TOKEN kept=%v", string(s.Data["DB_PASSWORD"]) == "the-new-db-password", string(s.Data["LOCAL_TOKEN"]) == token)
	}
	prev := getSecret(t, ns, "app-previous")
	if string(prev.Data["DB_PASSWORD"]) != "the-old-db-password" || len(prev.Data) != 1 {
		t.Errorf("app-previous holds keys %v, want the operator's DB_PASSWORD with its old value", sortedKeys(prev.Data))
	}
	if getDeployment(t, ns, "token-user").Generation != tokenUserBefore {
		t.Error("deployment/token-user was restarted although LOCAL_TOKEN did not change")
	}
	if restartedAt(t, ns, "db-user") == "" {
		t.Error("deployment/db-user was not restarted")
	}
}

// creationPolicy Orphan: no owner reference, yet the operator rewrites all
// of the data on each sync. The Secret is found by the operator's field
// manager: every key is refused to plain rotation; --force-sync rotates.
func TestForceSyncOrphan(t *testing.T) {
	f := newESFixture(t, map[string]string{"api": "the-old-api-token"})
	ns := f.ns
	f.externalSecret("api-es", map[string]any{"target": map[string]any{"name": "api", "creationPolicy": "Orphan"}, "data": []any{data("TOKEN", "api")}})
	s := f.waitSynced("api", "TOKEN")
	if len(s.OwnerReferences) != 0 {
		t.Fatalf("the operator set owner references on an Orphan Secret: %v", s.OwnerReferences)
	}
	deployWith(t, ns, "client", envKeyFrom("api", "TOKEN"))
	r := run(t, nil, "secret", "api", "-n", ns, "--key", "TOKEN", "--generate", "hex:16")
	if r.code == 0 || !strings.Contains(r.stderr, "secret/api is written by externalsecret/api-es (external-secrets.io, creationPolicy Orphan)") {
		t.Fatalf("rotating an Orphan Secret's key: exit %d\n%s", r.code, r.stderr)
	}
	f.setStore(map[string]string{"api": "the-new-api-token"})
	mustRun(t, "secret", "api", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	if string(getSecret(t, ns, "api").Data["TOKEN"]) != "the-new-api-token" || string(getSecret(t, ns, "api-previous").Data["TOKEN"]) != "the-old-api-token" {
		t.Error("the Orphan Secret was not rotated with its old value kept")
	}
	if restartedAt(t, ns, "client") == "" {
		t.Error("deployment/client was not restarted")
	}
}

// Keys built by a template from two remote values, and keys brought by
// dataFrom as a whole map: the sync changes what the operator computes,
// and only the readers of changed keys restart.
func TestForceSyncTemplateAndDataFrom(t *testing.T) {
	f := newESFixture(t, map[string]string{
		"db-user": "app", "db-pass": "the-old-password",
		"bundle": `{"API_KEY":"the-old-api-key","REGION":"eu-west-1"}`,
	})
	ns := f.ns
	f.externalSecret("dsn", map[string]any{
		"data": []any{data("user", "db-user"), data("password", "db-pass")},
		"target": map[string]any{"name": "dsn", "template": map[string]any{"engineVersion": "v2",
			"data": map[string]any{"DATABASE_URL": "postgresql://{{ .user }}:{{ .password }}@db:5432/app"}}},
	})
	f.externalSecret("bundle", map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "bundle"}}}})
	f.waitSynced("dsn", "DATABASE_URL")
	f.waitSynced("bundle", "API_KEY", "REGION")
	deployWith(t, ns, "web", envKeyFrom("dsn", "DATABASE_URL"))
	deployWith(t, ns, "api", envKeyFrom("bundle", "API_KEY"))
	deployWith(t, ns, "region", envKeyFrom("bundle", "REGION"))
	regionBefore := getDeployment(t, ns, "region").Generation

	f.setStore(map[string]string{"db-pass": "the-new-password", "bundle": `{"API_KEY":"the-new-api-key","REGION":"eu-west-1"}`})
	// Both, selected by the label the operator puts on every Secret it writes.
	r := mustRun(t, "secret", "-l", "reconcile.external-secrets.io/managed=true", "-n", ns, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	if got := string(getSecret(t, ns, "dsn").Data["DATABASE_URL"]); got != "postgresql://app:the-new-password@db:5432/app" {
		t.Errorf("DATABASE_URL is not built from the new password")
	}
	if string(getSecret(t, ns, "dsn-previous").Data["DATABASE_URL"]) != "postgresql://app:the-old-password@db:5432/app" {
		t.Error("dsn-previous does not hold the old DATABASE_URL")
	}
	b := getSecret(t, ns, "bundle")
	if string(b.Data["API_KEY"]) != "the-new-api-key" || b.Annotations[v1alpha1.Keys] != "API_KEY" {
		t.Errorf("bundle: API_KEY new=%v, recorded keys %q", string(b.Data["API_KEY"]) == "the-new-api-key", b.Annotations[v1alpha1.Keys])
	}
	if restartedAt(t, ns, "web") == "" || restartedAt(t, ns, "api") == "" {
		t.Error("the readers of DATABASE_URL and API_KEY were not both restarted")
	}
	if getDeployment(t, ns, "region").Generation != regionBefore {
		t.Error("deployment/region was restarted although REGION did not change")
	}
	assertNoValues(t, "output", r.allOutput(), map[string][]byte{"old": []byte("the-old-password"), "new": []byte("the-new-password"), "old api": []byte("the-old-api-key"), "new api": []byte("the-new-api-key")})
}

// A ClusterExternalSecret fans out to every namespace it selects:
// force-sync on it syncs them all, keeps each namespace's previous values
// and restarts each consumer once.
func TestForceSyncClusterExternalSecret(t *testing.T) {
	f := newESFixture(t, map[string]string{"registry": "the-old-registry-token"})
	ctx := context.Background()
	var namespaces []string
	for i := 0; i < 2; i++ {
		ns := newNamespace(t)
		if _, err := client.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(`{"metadata":{"labels":{"e2e-ces":"`+f.ns+`"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		namespaces = append(namespaces, ns)
	}
	name := "registry-" + f.ns
	ces := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"externalSecretName": "registry",
			"namespaceSelectors": []any{map[string]any{"matchLabels": map[string]any{"e2e-ces": f.ns}}},
			"externalSecretSpec": map[string]any{
				"refreshInterval": "1h",
				"secretStoreRef":  map[string]any{"name": f.store, "kind": "ClusterSecretStore"},
				"target":          map[string]any{"name": "registry"},
				"data":            []any{data("TOKEN", "registry")},
			},
		},
	}}
	if _, err := f.dyn.Resource(clusterExternalSecrets).Create(ctx, ces, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Before the namespaces go: the operator removes its namespace finalizers.
	t.Cleanup(func() {
		_ = f.dyn.Resource(clusterExternalSecrets).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	gens := map[string]int64{}
	for _, ns := range namespaces {
		waitFor(t, "the ClusterExternalSecret's Secret in "+ns, time.Minute, func() bool {
			s, err := client.CoreV1().Secrets(ns).Get(ctx, "registry", metav1.GetOptions{})
			return err == nil && len(s.Data["TOKEN"]) > 0
		})
		deployWith(t, ns, "puller", envKeyFrom("registry", "TOKEN"))
		gens[ns] = getDeployment(t, ns, "puller").Generation
	}
	waitFor(t, "status.provisionedNamespaces of the ClusterExternalSecret", time.Minute, func() bool {
		cur, err := f.dyn.Resource(clusterExternalSecrets).Get(ctx, name, metav1.GetOptions{})
		got, _, _ := unstructured.NestedStringSlice(cur.Object, "status", "provisionedNamespaces")
		return err == nil && len(got) == 2
	})

	f.setStore(map[string]string{"registry": "the-new-registry-token"})
	r := mustRun(t, "secret", "clusterexternalsecret/"+name, "--force-sync", "--timeout", timeoutFlag(90*time.Second))
	for _, ns := range namespaces {
		if string(getSecret(t, ns, "registry").Data["TOKEN"]) != "the-new-registry-token" {
			t.Errorf("%s: the Secret does not hold the new token", ns)
		}
		if string(getSecret(t, ns, "registry-previous").Data["TOKEN"]) != "the-old-registry-token" {
			t.Errorf("%s: registry-previous does not hold the old token", ns)
		}
		if got := getDeployment(t, ns, "puller").Generation; got != gens[ns]+1 {
			t.Errorf("%s: deployment/puller generation %d -> %d, want restarted exactly once", ns, gens[ns], got)
		}
	}
	if !strings.Contains(r.stdout, "2 secret(s), 2 workload(s) restarted") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	assertNoValues(t, "output", r.allOutput(), map[string][]byte{"old": []byte("the-old-registry-token"), "new": []byte("the-new-registry-token")})
}

// --push: the new value is made here and written to the store by the
// operator itself, through a PushSecret the command owns; the
// ExternalSecret then reads it back. The store's credentials never leave
// the operator, and the value is in no output and in no object but the
// Secrets.
func TestForceSyncPush(t *testing.T) {
	f := newESFixture(t, nil)
	ns := f.ns
	ctx := context.Background()
	// The first version, pushed the way an operator would (the fake
	// provider only takes pushes to keys its spec does not list).
	createSecret(t, ns, "seed", map[string]string{"v": "the-first-account-secret"})
	seed := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
		"metadata": map[string]any{"name": "seed"},
		"spec": map[string]any{"refreshInterval": "0s", "deletionPolicy": "None",
			"secretStoreRefs": []any{map[string]any{"name": f.store, "kind": "ClusterSecretStore"}},
			"selector":        map[string]any{"secret": map[string]any{"name": "seed"}},
			"data":            []any{map[string]any{"match": map[string]any{"secretKey": "v", "remoteRef": map[string]any{"remoteKey": "account-" + ns}}}}},
	}}
	if _, err := f.dyn.Resource(pushSecrets).Namespace(ns).Create(ctx, seed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.externalSecret("admin-secrets", map[string]any{"data": []any{data("SECRET_KEY", "account-"+ns)}})
	f.waitSynced("admin-secrets", "SECRET_KEY")
	if err := f.dyn.Resource(pushSecrets).Namespace(ns).Delete(ctx, "seed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Secrets(ns).Delete(ctx, "seed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deployWith(t, ns, "admin", envKeyFrom("admin-secrets", "SECRET_KEY"))

	// Every version of the PushSecret the command makes, as the API
	// server had it, for the value scan below.
	w, err := f.dyn.Resource(pushSecrets).Namespace(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for e := range w.ResultChan() {
			b, _ := json.Marshal(e.Object)
			seen = append(seen, string(b))
		}
	}()
	r := mustRun(t, "secret", "admin-secrets", "-n", ns, "--force-sync", "--push", "SECRET_KEY=hex:32", "--timeout", timeoutFlag(90*time.Second), "-o", "yaml")
	w.Stop()
	<-watched
	if len(seen) < 2 {
		t.Fatalf("saw %d PushSecret events during the run, want its creation, status and deletion", len(seen))
	}
	s := getSecret(t, ns, "admin-secrets")
	newValue := s.Data["SECRET_KEY"]
	if len(newValue) != 64 || string(newValue) == "the-first-account-secret" {
		t.Fatalf("the Secret does not hold a new hex:32 value (%d bytes)", len(newValue))
	}
	if string(getSecret(t, ns, "admin-secrets-previous").Data["SECRET_KEY"]) != "the-first-account-secret" {
		t.Error("admin-secrets-previous does not hold the first value")
	}
	if restartedAt(t, ns, "admin") == "" {
		t.Error("deployment/admin was not restarted")
	}
	// The PushSecret and its source are gone; the store kept the version.
	if l, _ := f.dyn.Resource(pushSecrets).Namespace(ns).List(ctx, metav1.ListOptions{}); l != nil && len(l.Items) > 0 {
		t.Errorf("PushSecrets left behind: %d", len(l.Items))
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, "admin-secrets-kube-rotate-push", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the push's source Secret was left behind (%v)", err)
	}
	f.externalSecret("reader", map[string]any{"data": []any{data("SECRET_KEY", "account-"+ns)}})
	if got := f.waitSynced("reader", "SECRET_KEY"); string(got.Data["SECRET_KEY"]) != string(newValue) {
		t.Error("the store does not hold the pushed value: another ExternalSecret reads something else")
	}
	vals := map[string][]byte{"first": []byte("the-first-account-secret"), "pushed": newValue}
	assertNoValues(t, "output", r.allOutput(), vals)
	assertNoValues(t, "the PushSecret", strings.Join(seen, "\n"), vals)
	assertNamespaceHoldsNoValue(t, ns, vals)

	// A key the operator builds from a template has no remote value to
	// push to: refused in one line, nothing written.
	f.externalSecret("templated", map[string]any{"data": []any{data("p", "account-"+ns)},
		"target": map[string]any{"template": map[string]any{"data": map[string]any{"URL": "https://u:{{ .p }}@h"}}}})
	f.waitSynced("templated", "URL")
	r = run(t, nil, "secret", "templated", "-n", ns, "--force-sync", "--push", "URL=hex:16")
	if r.code == 0 || !strings.Contains(r.stderr, "key URL is not one remote value of externalsecret/templated (spec.data)") {
		t.Fatalf("push to a templated key: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, "templated-previous", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Error("the refused push wrote templated-previous")
	}
}
