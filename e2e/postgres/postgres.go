// Package postgres starts throwaway PostgreSQL servers for the project's
// end-to-end tests: initdb in the test's temporary directory, postgres on a
// free 127.0.0.1 port, stopped when the test ends. It never touches a system
// service or a system cluster, and it drives the server with PostgreSQL's own
// command-line tools (initdb, postgres, pg_ctl, psql), so it needs no Go
// database driver.
//
// # Binaries
//
// The server binaries are looked up in $POSTGRES_BIN, else in the highest
// version of /usr/lib/postgresql/*/bin (Debian and Ubuntu), else in PATH.
// psql is taken from the same directory if it is there, else from PATH. On
// Debian, `apt-get install postgresql-15` provides all of them, and the
// contrib extensions (pgcrypto) as well; other distributions ship contrib
// separately (postgresql-contrib or postgresql15-contrib).
//
// # Root
//
// initdb, postgres and pg_ctl refuse to run as root. When the tests run as
// root, those three are run as the "postgres" system user if it exists, else
// as "nobody", by setting the child's credentials (setuid/setgid in the forked
// child, no su, sudo or setpriv needed). The server's directory is chowned to
// that user and the test's temporary directory made traversable (mode 0711)
// so the user can reach it; if another ancestor directory is not traversable,
// the server lives in a fresh directory under /tmp instead, removed in the
// test's cleanup. psql needs no such treatment and runs as the caller. As a
// normal user everything runs as that user.
//
// # Access
//
// Connections over the Unix socket, in a directory only the server's user
// (and root) can enter, are trusted: that is how Exec and Query reach the
// server as the superuser without a password. TCP connections to 127.0.0.1
// need a password (scram-sha-256); URL and CanLogin use them.
package postgres

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/internal/files"
	"github.com/kube-rotate/kube-rotate/e2e/internal/ports"
)

// Server is a throwaway PostgreSQL server started by Start.
type Server struct {
	// Host is the TCP address the server listens on: always 127.0.0.1.
	Host string
	// Port is the TCP port (and the Unix socket's port number).
	Port int
	// Dir holds everything of this server: DataDir, SocketDir and LogFile.
	Dir string
	// DataDir is the cluster's data directory (initdb's -D).
	DataDir string
	// SocketDir holds the Unix socket (PGHOST for local connections).
	SocketDir string
	// LogFile receives the server's log.
	LogFile string
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string
	// Version is the server's version, e.g. "15.18".
	Version string
	// Superuser is the name of the bootstrap superuser ("postgres").
	Superuser string
	// SuperuserPassword lets the superuser log in over TCP (URL); local
	// connections (Exec, Query, PsqlEnv) need no password.
	SuperuserPassword string
	// StartupTime is how long Start took, initdb included.
	StartupTime time.Duration

	psql     string
	cred     *syscall.Credential // nil: run as the caller
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the postmaster has exited
	waitErr  error         // set before exited is closed
	stopOnce sync.Once
	stopErr  error
}

// superuser is the bootstrap superuser's name.
const superuser = "postgres"

// installHint ends the message given when no binaries are found.
const installHint = "install them with `apt-get install -y postgresql-15` (Debian/Ubuntu; it includes pgcrypto) or point POSTGRES_BIN at the directory holding initdb, pg_ctl and postgres"

// Start runs initdb in a temporary directory of t, starts postgres on a free
// 127.0.0.1 port with its Unix socket in that directory and password
// authentication (scram-sha-256) for TCP connections, and stops it with
// `pg_ctl stop -m immediate` in t.Cleanup. The server is also killed if the
// test process dies without cleaning up. Durability is switched off
// (fsync=off): the data is thrown away anyway.
//
// Binaries are found in $POSTGRES_BIN, else /usr/lib/postgresql/*/bin
// (highest version), else PATH; if there are none, Start fails the test with
// a one-line message saying how to install them. See the package
// documentation for how running as root is handled.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// Options configure StartWith.
type Options struct {
	// ListenOn are addresses the server listens on besides 127.0.0.1, for
	// clients in pods: the real node's host address, where pods reach the
	// host.
	ListenOn []string
	// AllowFrom are the client networks (CIDR) allowed to log in with a
	// password over those addresses, for example the real node's pod
	// subnet.
	AllowFrom []string
}

// StartWith is Start with pods as clients too: see Options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	begin := time.Now()
	binDir, psql, err := findBinaries()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	s := &Server{
		Host:      "127.0.0.1",
		BinDir:    binDir,
		Superuser: superuser,
		psql:      psql,
	}
	if err := s.prepareDir(t); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if err := s.initdb(o); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	// The port is picked free, then bound by postgres: another process
	// can take it in between, so a bind failure is retried on a new port.
	for attempt := 1; ; attempt++ {
		err = s.start()
		if err == nil {
			break
		}
		var busy errPortBusy
		if !errors.As(err, &busy) || attempt == 5 {
			t.Fatalf("postgres: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("postgres: %v", err)
		}
	})
	s.StartupTime = time.Since(begin)
	return s
}

// URL returns a postgresql:// URL for user and password on the TCP port,
// database db, with sslmode=disable (the server has no TLS).
func (s *Server) URL(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// PsqlPath returns the path of the psql binary Exec, Query and CanLogin use.
func (s *Server) PsqlPath() string { return s.psql }

// PsqlEnv returns the environment for running psql (or any libpq client)
// as the superuser over the Unix socket, without a password: PGHOST,
// PGPORT, PGUSER, PGDATABASE (postgres) and settings that keep the client
// from picking up the caller's files and variables. Append it to
// os.Environ(): exec.Cmd lets the later value of a variable win.
func (s *Server) PsqlEnv() []string {
	return []string{
		"PGHOST=" + s.SocketDir,
		"PGPORT=" + strconv.Itoa(s.Port),
		"PGUSER=" + s.Superuser,
		"PGDATABASE=postgres",
		// Files that do not exist: libpq then reads no password or
		// service file (/dev/null would draw a warning).
		"PGPASSFILE=" + filepath.Join(s.Dir, "no-pgpass"),
		"PGSERVICEFILE=" + filepath.Join(s.Dir, "no-pg_service.conf"),
		"PGSYSCONFDIR=" + s.Dir,
		"PGCONNECT_TIMEOUT=10",
		"PGSSLMODE=disable",
	}
}

// Exec runs sql as the superuser over the Unix socket in database db and
// returns what it printed (see Query). It fails the test on error.
func (s *Server) Exec(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.Query(db, sql)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return out
}

// Query runs sql, one or more statements, as the superuser over the Unix
// socket in database db, with `psql -X -q -A -t -v ON_ERROR_STOP=1`: it
// stops at the first error, and its output is the result rows, one per
// line, columns separated by '|', without headers or command tags, with the
// final newline removed. The SQL goes to psql's standard input, never its
// command line. Errors include psql's standard error, with the literals of
// PASSWORD clauses in sql replaced by [REDACTED].
func (s *Server) Query(db, sql string) (string, error) {
	cmd := exec.Command(s.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-")
	cmd.Env = append(cleanEnv(), s.PsqlEnv()...)
	cmd.Stdin = strings.NewReader(sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := redact(strings.TrimSpace(stderr.String()), passwordLiterals(sql))
		return "", fmt.Errorf("psql in database %q on port %d: %v: %s", db, s.Port, err, msg)
	}
	return strings.TrimRight(stdout.String(), "\n"), nil
}

// CanLogin reports whether user can log in to database db over TCP with
// password (scram-sha-256). A rejected password, an unknown user and an
// empty password are false with a nil error; any other failure (the server
// is down, the database does not exist) is an error. The password reaches
// psql through PGPASSWORD in its environment, never its command line, and
// never appears in an error.
func (s *Server) CanLogin(user, password, db string) (bool, error) {
	cmd := exec.Command(s.psql, "-X", "-q", "-A", "-t", "-w",
		"-h", s.Host, "-p", strconv.Itoa(s.Port), "-U", user, "-d", db, "-c", "SELECT 1")
	cmd.Env = append(cleanEnv(),
		"PGPASSFILE="+filepath.Join(s.Dir, "no-pgpass"),
		"PGSERVICEFILE="+filepath.Join(s.Dir, "no-pg_service.conf"),
		"PGSYSCONFDIR="+s.Dir,
		"PGCONNECT_TIMEOUT=10",
		"PGSSLMODE=disable",
		"PGPASSWORD="+password,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil && strings.TrimSpace(stdout.String()) == "1" {
		return true, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "password authentication failed") || strings.Contains(msg, "no password supplied") {
		return false, nil
	}
	var secrets []string
	if password != "" {
		secrets = []string{password}
	}
	return false, fmt.Errorf("psql login as %q to database %q on %s:%d: %v: %s",
		user, db, s.Host, s.Port, err, redact(msg, secrets))
}

// CreateDatabase creates database name, owned by the superuser. It fails
// the test on error.
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	s.Exec(t, "postgres", "CREATE DATABASE "+QuoteIdent(name))
}

// CreateExtension creates extension name (e.g. "pgcrypto") in database db
// if it is not there yet. pgcrypto is a contrib extension: Debian's
// postgresql-15 package includes it; elsewhere it needs the contrib package,
// which the failure message says. It fails the test on error.
func (s *Server) CreateExtension(t testing.TB, db, name string) {
	t.Helper()
	avail, err := s.Query(db, "SELECT count(*) FROM pg_available_extensions WHERE name = "+QuoteLiteral(name))
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if avail != "1" {
		t.Fatalf("postgres: extension %q is not installed for the server in %s: install PostgreSQL's contrib extensions (Debian: postgresql-15; elsewhere postgresql-contrib)", name, s.BinDir)
	}
	s.Exec(t, db, "CREATE EXTENSION IF NOT EXISTS "+QuoteIdent(name))
}

// QuoteIdent quotes an SQL identifier (a role or database name).
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// QuoteLiteral quotes an SQL string literal (a password). It assumes
// standard_conforming_strings, the default since PostgreSQL 9.1.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// PID returns the postmaster's process id.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop stops the server with `pg_ctl stop -m immediate` and waits for the
// postmaster to exit; if pg_ctl fails, the server's process group is
// killed. Start registers it with t.Cleanup; calling it earlier (to test
// what happens when the database is down) is fine, and later calls do
// nothing.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.exited:
		return nil // already gone (it crashed; start reported it)
	default:
	}
	var errs []error
	ctl := exec.Command(filepath.Join(s.BinDir, "pg_ctl"), "stop", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "30")
	ctl.Env = cleanEnv()
	s.asServerUser(ctl)
	if out, err := ctl.CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("pg_ctl stop -m immediate on port %d: %v: %s", s.Port, err, strings.TrimSpace(string(out))))
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		errs = append(errs, fmt.Errorf("postmaster (pid %d) still running after pg_ctl stop; killing its process group", s.PID()))
		_ = syscall.Kill(-s.PID(), syscall.SIGKILL)
		<-s.exited
	}
	return errors.Join(errs...)
}

// errPortBusy reports that postgres could not bind its port.
type errPortBusy struct{ error }

// start picks a free port and starts the postmaster on it.
func (s *Server) start() error {
	port, err := ports.Free()
	if err != nil {
		return err
	}
	s.Port = port
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the server log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- kube-rotate: starting postgres on %s:%d\n", s.Host, port)
	cmd := exec.Command(filepath.Join(s.BinDir, "postgres"), "-D", s.DataDir, "-p", strconv.Itoa(port))
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for go test does not reach it
	// before the cleanup does, and the cleanup can kill the whole group.
	// Pdeathsig: the kernel kills it if the test process dies, even by
	// SIGKILL or a test timeout, which skips t.Cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			tail := files.Tail(s.LogFile, 15)
			err := fmt.Errorf("postgres exited during startup on port %d (%v); log %s:\n%s", port, s.waitErr, s.LogFile, tail)
			if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
				return errPortBusy{err}
			}
			return err
		case <-deadline:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
			return fmt.Errorf("postgres on port %d not ready after 60s; log %s:\n%s", port, s.LogFile, files.Tail(s.LogFile, 15))
		case <-tick.C:
			if s.ready() {
				return nil
			}
		}
	}
}

// ready reports whether postmaster.pid says the server accepts
// connections: pg_ctl -w waits the same way. Its lines are the pid, data
// directory, start time, port, socket directory, listen address, shared
// memory key and status.
func (s *Server) ready() bool {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 &&
		strings.TrimSpace(lines[0]) == strconv.Itoa(s.cmd.Process.Pid) &&
		strings.TrimSpace(lines[7]) == "ready"
}

// prepareDir creates Dir, DataDir and SocketDir, and when running as root
// picks the user to run the server as and gives it the directories.
func (s *Server) prepareDir(t testing.TB) error {
	s.Dir = t.TempDir()
	if os.Geteuid() == 0 {
		cred, name, err := serverUser()
		if err != nil {
			return err
		}
		s.cred = cred
		// t.TempDir() is <tmp>/<TestName><random>/<NNN>, both made by the
		// testing package with mode 0700: let the server's user pass.
		for _, d := range []string{filepath.Dir(s.Dir), s.Dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				return fmt.Errorf("make %s traversable for %s: %w", d, name, err)
			}
		}
		if !traversable(filepath.Dir(filepath.Dir(s.Dir))) {
			d, err := os.MkdirTemp("/tmp", "kube-rotate-pg-")
			if err != nil {
				return fmt.Errorf("create a directory %s can reach: %w", name, err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(d) }) // runs after Stop
			s.Dir = d
		}
		if err := os.Chown(s.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("give %s to %s: %w", s.Dir, name, err)
		}
	}
	s.DataDir = filepath.Join(s.Dir, "data")
	s.LogFile = filepath.Join(s.Dir, "postgres.log")
	// A Unix socket path is limited to 107 bytes; the socket's name is
	// .s.PGSQL.<port>. Long temporary directories get a short socket
	// directory under /tmp.
	s.SocketDir = filepath.Join(s.Dir, "run")
	dirs := []string{s.DataDir, s.SocketDir}
	if len(s.SocketDir)+len("/.s.PGSQL.65535") > 100 {
		d, err := os.MkdirTemp("/tmp", "pg-") // mode 0700
		if err != nil {
			return fmt.Errorf("create the socket directory: %w", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) }) // runs after Stop
		s.SocketDir = d
		dirs = dirs[:1]
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for _, d := range []string{s.DataDir, s.SocketDir} {
		if s.cred != nil {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("chown %s: %w", d, err)
			}
		}
	}
	return nil
}

// initdb creates the cluster and appends the settings to postgresql.conf.
func (s *Server) initdb(o Options) error {
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return fmt.Errorf("generate the superuser password: %w", err)
	}
	s.SuperuserPassword = hex.EncodeToString(pw)
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.SuperuserPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the password file: %w", err)
	}
	defer os.Remove(pwfile)
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("chown the password file: %w", err)
		}
	}

	version, err := exec.Command(filepath.Join(s.BinDir, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", filepath.Join(s.BinDir, "postgres"), err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	if f := strings.Fields(string(version)); len(f) >= 3 {
		s.Version = f[2]
	}

	cmd := exec.Command(filepath.Join(s.BinDir, "initdb"),
		"-D", s.DataDir,
		"-U", s.Superuser,
		"--pwfile", pwfile,
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
		"--no-sync",
		"--no-instructions",
	)
	cmd.Env = cleanEnv()
	s.asServerUser(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb in %s: %v: %s", s.DataDir, err, files.LastLines(string(out), 15))
	}

	conf := fmt.Sprintf(`
# kube-rotate e2e: a throwaway server.
listen_addresses = '%s'
unix_socket_directories = '%s'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
ssl = off
max_connections = 40
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_destination = 'stderr'
# Failing statements may carry passwords (ALTER ROLE ... PASSWORD): do not log them.
log_min_error_statement = panic
log_statement = 'none'
`, strings.Join(append([]string{"127.0.0.1"}, o.ListenOn...), ","), strings.ReplaceAll(s.SocketDir, "'", "''"))
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if len(o.AllowFrom) == 0 {
		return nil
	}
	var hba strings.Builder
	hba.WriteString("# kube-rotate e2e: clients in pods\n")
	for _, cidr := range o.AllowFrom {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("AllowFrom %q: %w", cidr, err)
		}
		fmt.Fprintf(&hba, "host all all %s scram-sha-256\n", cidr)
	}
	hf, err := os.OpenFile(filepath.Join(s.DataDir, "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open pg_hba.conf: %w", err)
	}
	if _, err := hf.WriteString(hba.String()); err != nil {
		hf.Close()
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return hf.Close()
}

// asServerUser makes cmd run as the server's user when running as root.
func (s *Server) asServerUser(cmd *exec.Cmd) {
	if s.cred == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = s.cred
}

// serverUser returns the credentials to run the server with as root: the
// "postgres" system user, else "nobody".
func serverUser() (*syscall.Credential, string, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, name, nil
	}
	return nil, "", errors.New("running as root, and PostgreSQL refuses to: found neither a \"postgres\" nor a \"nobody\" user to run it as")
}

// traversable reports whether everyone may pass through dir and all its
// ancestors.
func traversable(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// findBinaries returns the directory holding initdb, pg_ctl and postgres,
// and the path of psql.
func findBinaries() (binDir, psql string, err error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if !isExecutable(filepath.Join(dir, name)) {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("POSTGRES_BIN"); dir != "" {
		if !has(dir) {
			return "", "", fmt.Errorf("POSTGRES_BIN=%s does not hold initdb, pg_ctl and postgres: point it at the directory that does, or unset it", dir)
		}
		binDir = dir
	}
	if binDir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j], dirs[i]) }) // highest first
		for _, dir := range dirs {
			if has(dir) {
				binDir = dir
				break
			}
		}
	}
	if binDir == "" {
		if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
			binDir = filepath.Dir(p)
		}
	}
	if binDir == "" {
		return "", "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $POSTGRES_BIN, /usr/lib/postgresql/*/bin or PATH: %s", installHint)
	}
	// Debian's /usr/bin/psql is a wrapper script picking a version; the
	// binary next to the server is the one that matches it.
	if p := filepath.Join(binDir, "psql"); isExecutable(p) {
		return binDir, p, nil
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		return "", "", fmt.Errorf("psql not found in %s or PATH: %s", binDir, installHint)
	}
	return binDir, p, nil
}

// isExecutable reports whether path is an executable file.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

// versionLess compares the version directories of two
// /usr/lib/postgresql/<version>/bin paths numerically ("9.6" < "15").
func versionLess(a, b string) bool {
	va := strings.Split(filepath.Base(filepath.Dir(a)), ".")
	vb := strings.Split(filepath.Base(filepath.Dir(b)), ".")
	for i := 0; i < len(va) && i < len(vb); i++ {
		na, errA := strconv.Atoi(va[i])
		nb, errB := strconv.Atoi(vb[i])
		if errA != nil || errB != nil {
			if va[i] != vb[i] {
				return va[i] < vb[i]
			}
			continue
		}
		if na != nb {
			return na < nb
		}
	}
	return len(va) < len(vb)
}

// cleanEnv is the caller's environment without libpq's PG* variables, so a
// developer's PGHOST, PGPASSWORD or PGSERVICE cannot redirect or
// authenticate the tests' clients, and without the locale settings, which
// initdb would otherwise take up.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// passwordRE matches a PASSWORD clause's string literal.
var passwordRE = regexp.MustCompile(`(?i)\bPASSWORD\s+(?:E)?'((?:[^']|'')*)'`)

// passwordLiterals returns the literals of sql's PASSWORD clauses, both as
// written and unquoted.
func passwordLiterals(sql string) []string {
	var out []string
	for _, m := range passwordRE.FindAllStringSubmatch(sql, -1) {
		if m[1] == "" {
			continue
		}
		out = append(out, m[1], strings.ReplaceAll(m[1], "''", "'"))
	}
	return out
}

// redact replaces every secret in msg with [REDACTED], longest first.
func redact(msg string, secrets []string) string {
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "[REDACTED]")
		}
	}
	return msg
}
