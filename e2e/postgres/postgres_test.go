package postgres

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestPasswordRotation(t *testing.T) {
	s := Start(t)
	t.Logf("PostgreSQL %s on %s:%d in %s (binaries %s, psql %s) started in %v",
		s.Version, s.Host, s.Port, s.Dir, s.BinDir, s.PsqlPath(), s.StartupTime)

	if got := s.Exec(t, "postgres", "SELECT current_user"); got != s.Superuser {
		t.Fatalf("current_user = %q, want %q", got, s.Superuser)
	}
	s.CreateDatabase(t, "app")
	s.Exec(t, "postgres", `CREATE ROLE app LOGIN PASSWORD 'old-pa''ss'`)

	mustLogin(t, s, "app", "old-pa'ss", "app", true)
	mustLogin(t, s, "app", "wrong", "app", false)
	mustLogin(t, s, "app", "", "app", false)
	mustLogin(t, s, "nosuchrole", "x", "app", false)

	s.Exec(t, "postgres", "ALTER ROLE app PASSWORD "+QuoteLiteral("new pass"))
	mustLogin(t, s, "app", "old-pa'ss", "app", false)
	mustLogin(t, s, "app", "new pass", "app", true)

	// The password is stored as a SCRAM verifier, never in clear.
	if got := s.Exec(t, "postgres", "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'"); got != "SCRAM-SHA-256$" {
		t.Errorf("stored password starts %q, want a SCRAM-SHA-256 verifier", got)
	}
	// The superuser needs its password over TCP.
	mustLogin(t, s, s.Superuser, s.SuperuserPassword, "postgres", true)
	mustLogin(t, s, s.Superuser, "", "postgres", false)

	// A missing database is an error, not a failed login.
	if ok, err := s.CanLogin("app", "new pass", "nosuchdb"); ok || err == nil {
		t.Errorf("CanLogin to a missing database = %v, %v; want an error", ok, err)
	} else if strings.Contains(err.Error(), "new pass") {
		t.Errorf("CanLogin's error shows the password: %v", err)
	}
}

func mustLogin(t *testing.T, s *Server, user, password, db string, want bool) {
	t.Helper()
	got, err := s.CanLogin(user, password, db)
	if err != nil {
		t.Fatalf("CanLogin(%q): %v", user, err)
	}
	if got != want {
		t.Fatalf("CanLogin(%q) with password #%d = %v, want %v", user, len(password), got, want)
	}
}

func TestQueryErrorsHidePasswords(t *testing.T) {
	s := Start(t)
	_, err := s.Query("postgres", "ALTER ROLE nosuchrole PASSWORD 's3cr''et-value'")
	if err == nil {
		t.Fatal("ALTER ROLE on a missing role succeeded")
	}
	if !strings.Contains(err.Error(), `role "nosuchrole" does not exist`) {
		t.Errorf("error lacks psql's message: %v", err)
	}
	// A syntax error makes psql echo the statement.
	_, err = s.Query("postgres", "ALTER ROLE x PASSWORD 's3cr''et-value' BOGUS")
	if err == nil {
		t.Fatal("bad SQL succeeded")
	}
	if strings.Contains(err.Error(), "s3cr") {
		t.Errorf("error shows the password: %v", err)
	}
	t.Logf("redacted error: %v", err)
	if log, err := os.ReadFile(s.LogFile); err != nil {
		t.Error(err)
	} else if strings.Contains(string(log), "s3cr") {
		t.Errorf("server log shows the password:\n%s", log)
	}
}

func TestPgcrypto(t *testing.T) {
	s := Start(t)
	s.CreateDatabase(t, "vault")
	s.CreateExtension(t, "vault", "pgcrypto")
	s.CreateExtension(t, "vault", "pgcrypto") // idempotent
	s.Exec(t, "vault", `
CREATE TABLE secrets (id int PRIMARY KEY, data bytea NOT NULL);
INSERT INTO secrets SELECT i, pgp_sym_encrypt('value-' || i, 'key-1') FROM generate_series(1, 5) i;
`)
	// Ciphertext is not the clear text.
	if got := s.Exec(t, "vault", "SELECT count(*) FROM secrets WHERE position('value-'::bytea in data) > 0"); got != "0" {
		t.Fatalf("%s rows hold clear text", got)
	}
	// Re-encrypt under a new key, as a rotation hook would.
	s.Exec(t, "vault", "UPDATE secrets SET data = pgp_sym_encrypt(pgp_sym_decrypt(data, 'key-1'), 'key-2')")
	got := s.Exec(t, "vault", "SELECT id, pgp_sym_decrypt(data, 'key-2') FROM secrets ORDER BY id")
	want := "1|value-1\n2|value-2\n3|value-3\n4|value-4\n5|value-5"
	if got != want {
		t.Fatalf("decrypted rows:\n%s\nwant:\n%s", got, want)
	}
	if _, err := s.Query("vault", "SELECT pgp_sym_decrypt(data, 'key-1') FROM secrets"); err == nil || !strings.Contains(err.Error(), "Wrong key") {
		t.Fatalf("decrypting with the old key: %v, want a wrong-key error", err)
	}
}

func TestTwoServersAndCleanup(t *testing.T) {
	var pids []int
	var ports []int
	t.Run("servers", func(t *testing.T) {
		a, b := Start(t), Start(t)
		t.Logf("startup: %v and %v", a.StartupTime, b.StartupTime)
		if a.Port == b.Port || a.Dir == b.Dir || a.SocketDir == b.SocketDir {
			t.Fatalf("servers share port or directory: %d %s, %d %s", a.Port, a.Dir, b.Port, b.Dir)
		}
		a.Exec(t, "postgres", "CREATE DATABASE only_a")
		if got := b.Exec(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'only_a'"); got != "0" {
			t.Fatalf("server b sees server a's database")
		}
		for _, s := range []*Server{a, b} {
			pid := postmasterPID(t, s)
			if pid != s.PID() {
				t.Fatalf("postmaster.pid says %d, Start started %d", pid, s.PID())
			}
			if err := syscall.Kill(pid, 0); err != nil {
				t.Fatalf("postmaster %d: %v", pid, err)
			}
			pids = append(pids, pid)
			ports = append(ports, s.Port)
		}
		// Hooks run psql with PsqlEnv.
		cmd := exec.Command(a.PsqlPath(), "-X", "-A", "-t", "-c", "SELECT current_setting('port')")
		cmd.Env = append(os.Environ(), a.PsqlEnv()...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(a.Port) {
			t.Fatalf("psql with PsqlEnv: %v: %s", err, out)
		}
	})
	if len(pids) != 2 {
		t.FailNow()
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("postmaster %d still there after cleanup (kill 0: %v)", pid, err)
		}
		if backends, _ := filepath.Glob("/proc/[0-9]*/cmdline"); len(backends) > 0 {
			for _, f := range backends {
				b, _ := os.ReadFile(f)
				if strings.Contains(string(b), "postgres") && strings.Contains(string(b), "-p\x00"+strconv.Itoa(ports[i])+"\x00") {
					t.Errorf("a postgres process remains: %s: %q", f, b)
				}
			}
		}
	}
}

func TestStopEarly(t *testing.T) {
	s := Start(t)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CanLogin(s.Superuser, s.SuperuserPassword, "postgres"); err == nil {
		t.Fatal("CanLogin on a stopped server: no error")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestURL(t *testing.T) {
	s := &Server{Host: "127.0.0.1", Port: 5433}
	got := s.URL("app", "p@ss/w:rd", "db")
	want := "postgresql://app:p%40ss%2Fw%3Ard@127.0.0.1:5433/db?sslmode=disable"
	if got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
}

func TestVersionOrder(t *testing.T) {
	if !versionLess("/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin") {
		t.Error("9.6 should sort before 15")
	}
	if versionLess("/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin") {
		t.Error("16 should sort after 15")
	}
}

// postmasterPID reads the first line of s's postmaster.pid.
func postmasterPID(t *testing.T, s *Server) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}
