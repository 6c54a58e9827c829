//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/postgres"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// runE2EHook plays a plan hook against the test's PostgreSQL: it reads the
// values file kube-rotate hands it (never a command line), and talks to
// the server with psql, passing SQL and passwords on stdin or in the
// environment.
func runE2EHook(hook string) int {
	b, err := os.ReadFile(os.Getenv("KUBE_ROTATE_VALUES_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hook: no values file:", err)
		return 10
	}
	var v struct {
		Pending map[string]string `json:"pending"`
		Current map[string]string `json:"current"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		fmt.Fprintln(os.Stderr, "hook: values:", err)
		return 11
	}
	if strings.HasPrefix(hook, "reencrypt") {
		return reencryptHook(hook, v.Current[os.Getenv("E2E_KEY")], v.Pending[os.Getenv("E2E_KEY")])
	}
	pw, err := values.URLPassword(v.Pending[os.Getenv("E2E_URL_KEY")])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hook: pending URL:", err)
		return 12
	}
	psql := os.Getenv("E2E_PSQL")
	var cmd *exec.Cmd
	switch hook {
	case "db-set": // ALTER ROLE as the superuser over the trusted socket
		cmd = exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1")
		cmd.Stdin = strings.NewReader("ALTER ROLE " + postgres.QuoteIdent(os.Getenv("E2E_ROLE")) + " PASSWORD " + postgres.QuoteLiteral(pw) + ";\n")
	case "db-test": // log in over TCP with the new password
		cmd = exec.Command(psql, "-X", "-q", "-h", "127.0.0.1", "-p", os.Getenv("E2E_PG_PORT"), "-U", os.Getenv("E2E_ROLE"), "-d", os.Getenv("E2E_DB"), "-c", "SELECT 1")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+pw, "PGHOST=127.0.0.1")
	default:
		fmt.Fprintln(os.Stderr, "hook: unknown", hook)
		return 13
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "hook %s: psql: %v: %s\n", hook, err, out.String())
		return 1
	}
	return 0
}

// TestPlanDatabasePassword is seed 000's database rotation through a plan:
// one new password in a postgresql and a mysql URL for one user; the set
// hook runs ALTER ROLE with it, the test hook logs in with it, finish puts
// it in place and restarts the Deployment. Afterwards the old password no
// longer logs in and the new one does.
func TestPlanDatabasePassword(t *testing.T) {
	pg := postgres.Start(t)
	pg.CreateDatabase(t, "app")
	const oldPW = "old-db-password-0123"
	pg.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD "+postgres.QuoteLiteral(oldPW))
	if ok, err := pg.CanLogin("app", oldPW, "app"); err != nil || !ok {
		t.Fatalf("the old password does not log in before the rotation: %v", err)
	}

	ns := newNamespace(t)
	pgURL := fmt.Sprintf("postgresql://app:%s@127.0.0.1:%d/app", oldPW, pg.Port)
	createSecret(t, ns, "db-urls", map[string]string{"DB_URL_PG": pgURL, "DB_URL_MY": "mysql://app:" + oldPW + "@mysql:3306/app"})
	deployWith(t, ns, "api", envFrom("db-urls"))
	waitRolledOut(t, ns, "api")
	before := restartedAt(t, ns, "api")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"E2E_PSQL=" + pg.PsqlPath(), "E2E_ROLE=app", "E2E_DB=app", fmt.Sprintf("E2E_PG_PORT=%d", pg.Port), "E2E_URL_KEY=DB_URL_PG"}
	env = append(env, pg.PsqlEnv()...)
	var envYAML strings.Builder
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&envYAML, "\n          - {name: %s, value: %q}", k, v)
	}
	hook := func(name string) string {
		return fmt.Sprintf("{exec: {command: [%q], env: [{name: E2E_HOOK, value: %s}%s]}}", self, name, strings.ReplaceAll(envYAML.String(), "\n          - ", ", "))
	}
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: db-password}
spec:
  namespace: ` + ns + `
  items:
  - name: app-password
    secret:
      name: db-urls
      urlPassword: {keys: [DB_URL_PG, DB_URL_MY], generate: "password:24"}
    hooks:
      set: ` + hook("db-set") + `
      test: ` + hook("db-test") + `
`
	planFile := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "apply", "-f", planFile)

	s := getSecret(t, ns, "db-urls")
	newPW, err := values.URLPassword(string(s.Data["DB_URL_PG"]))
	if err != nil || newPW == oldPW || len(newPW) != 24 {
		t.Fatalf("new password: %d chars, err %v", len(newPW), err)
	}
	if my, _ := values.URLPassword(string(s.Data["DB_URL_MY"])); my != newPW {
		t.Error("the mysql URL did not get the same new password")
	}
	if ok, err := pg.CanLogin("app", newPW, "app"); err != nil || !ok {
		t.Errorf("the new password does not log in: %v", err)
	}
	if ok, err := pg.CanLogin("app", oldPW, "app"); err != nil || ok {
		t.Errorf("the old password still logs in (err %v)", err)
	}
	if got := string(getSecret(t, ns, "db-urls-previous").Data["DB_URL_PG"]); got != pgURL {
		t.Error("the old URL is not kept in db-urls-previous")
	}
	if restartedAt(t, ns, "api") == before {
		t.Error("the Deployment reading the URLs was not restarted")
	}
	waitRolledOut(t, ns, "api")
	assertNoValues(t, "apply output", out.allOutput(), map[string][]byte{"old": []byte(oldPW), "new": []byte(newPW)})
}

// reencryptHook re-encrypts every row of vault from the current key to
// the pending one (set), idempotently: a row that already decrypts with
// the pending key is left alone, so a re-run after a crash neither loses
// nor double-encrypts a row. test checks every row decrypts with it.
func reencryptHook(hook, oldKey, newKey string) int {
	if oldKey == "" || newKey == "" {
		fmt.Fprintln(os.Stderr, "hook: current or pending key missing")
		return 14
	}
	var sql string
	switch hook {
	case "reencrypt-set":
		if f := os.Getenv("E2E_STARTED"); f != "" {
			os.WriteFile(f, nil, 0o600)
		}
		sql = "SELECT pg_sleep(" + os.Getenv("E2E_SLEEP") + ");\n" +
			"DO $$ DECLARE r record; BEGIN FOR r IN SELECT id, data FROM vault ORDER BY id LOOP\n" +
			"  BEGIN PERFORM pgp_sym_decrypt(r.data, " + postgres.QuoteLiteral(newKey) + "); CONTINUE; EXCEPTION WHEN others THEN NULL; END;\n" +
			"  UPDATE vault SET data = pgp_sym_encrypt(pgp_sym_decrypt(r.data, " + postgres.QuoteLiteral(oldKey) + "), " + postgres.QuoteLiteral(newKey) + ") WHERE id = r.id;\n" +
			"END LOOP; END $$;\n"
	case "reencrypt-test":
		sql = "SELECT count(pgp_sym_decrypt(data, " + postgres.QuoteLiteral(newKey) + ")) FROM vault;\n"
	}
	cmd := exec.Command(os.Getenv("E2E_PSQL"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", os.Getenv("E2E_DB"))
	cmd.Stdin = strings.NewReader(sql)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "hook %s: psql: %v: %s\n", hook, err, out.String())
		return 1
	}
	return 0
}

// TestPlanReencryptionResumesAfterKill is the Puppet-style staged
// re-encryption (seed 002): rows encrypted with pgcrypto under K1, held in
// a Secret; the plan stages K2, its set hook re-encrypts every row, its
// test hook checks them, finish puts K2 in place. kubectl-rotate is killed
// (SIGKILL) during set; the re-run resumes and finishes, and every row
// decrypts with K2 to what it was: none lost, none encrypted twice.
func TestPlanReencryptionResumesAfterKill(t *testing.T) {
	pg := postgres.Start(t)
	pg.CreateDatabase(t, "inventory")
	pg.CreateExtension(t, "inventory", "pgcrypto")
	const k1 = "k1-0123456789abcdef0123456789abcdef"
	pg.Exec(t, "inventory", "CREATE TABLE vault (id int PRIMARY KEY, data bytea NOT NULL)")
	const rows = 200
	pg.Exec(t, "inventory", fmt.Sprintf("INSERT INTO vault SELECT i, pgp_sym_encrypt('value-' || i, %s) FROM generate_series(1, %d) i", postgres.QuoteLiteral(k1), rows))

	ns := newNamespace(t)
	createSecret(t, ns, "inventory-key", map[string]string{"KEY": k1})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "set-started")
	env := []string{"E2E_PSQL=" + pg.PsqlPath(), "E2E_DB=inventory", "E2E_KEY=KEY", "E2E_STARTED=" + started, "E2E_SLEEP=2"}
	env = append(env, pg.PsqlEnv()...)
	var envs []string
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		envs = append(envs, fmt.Sprintf("{name: %s, value: %q}", k, v))
	}
	hook := func(name string) string {
		return fmt.Sprintf("{exec: {command: [%q], env: [{name: E2E_HOOK, value: %s}, %s]}}", self, name, strings.Join(envs, ", "))
	}
	doc := `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: inventory-key}
spec:
  namespace: ` + ns + `
  items:
  - name: inventory-key
    secret: {name: inventory-key, generate: [{key: KEY, spec: "hex:32"}]}
    hooks:
      set: ` + hook("reencrypt-set") + `
      test: ` + hook("reencrypt-test") + `
`
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	// Kill kubectl-rotate while the set hook runs.
	cmd := exec.Command(rotateBin(t), "apply", "-f", planFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the set hook to start", 60*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := string(getSecret(t, ns, "inventory-key").Data["KEY"]); got != k1 {
		t.Fatal("the Secret in use changed before finish")
	}
	k2 := string(getSecret(t, ns, "inventory-key-pending").Data["KEY"])

	// The re-run resumes at set with the same K2 and finishes.
	re := mustRun(t, "apply", "-f", planFile)
	if !strings.Contains(re.allOutput(), "resuming rotation") {
		t.Errorf("the re-run did not resume:\n%s", re.allOutput())
	}
	if got := string(getSecret(t, ns, "inventory-key").Data["KEY"]); got != k2 {
		t.Fatal("the Secret does not hold the staged key K2 after the re-run")
	}
	if got := string(getSecret(t, ns, "inventory-key-previous").Data["KEY"]); got != k1 {
		t.Error("K1 is not kept in inventory-key-previous")
	}
	// Every row decrypts with K2 to its original value.
	got := strings.TrimSpace(pg.Exec(t, "inventory", fmt.Sprintf("SELECT count(*) FROM vault WHERE pgp_sym_decrypt(data, %s) = 'value-' || id", postgres.QuoteLiteral(k2))))
	if got != fmt.Sprint(rows) {
		t.Errorf("%s of %d rows decrypt with K2 to their value", got, rows)
	}
	assertNoValues(t, "apply output", out.String()+re.allOutput(), map[string][]byte{"k1": []byte(k1), "k2": []byte(k2)})
}
