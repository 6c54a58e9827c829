// Command testapp holds the programs the real-node end-to-end tests run in
// pods, one per subcommand. None of them ever prints a value it loads: they
// log a keyed digest (HMAC-SHA256 under $DIGEST_KEY, which the test chose),
// so the test can tell which value a pod runs with while the logs, readable
// by anyone with pods/log, reveal nothing about it.
//
//	testapp db            log in to PostgreSQL with the password from
//	                      $DB_PASSWORD or the file $DB_PASSWORD_FILE; serve
//	                      /readyz (200 only while that login works) on $LISTEN
//	testapp set-password  hook: ALTER ROLE $ROLE PASSWORD <the pending value>,
//	                      read from $KUBE_ROTATE_PENDING_DIR/$KEY, logged in
//	                      as $ADMIN_USER with $ADMIN_PASSWORD
//	testapp check-login   hook: exit 0 only if $ROLE can log in with the
//	                      pending value
//	testapp jwks-sign     print a token signed with the signing key of the
//	                      private key set in $JWKS_FILE (see jwks.go)
//	testapp jwks-verify   serve /verify?token=…: 200 if the token verifies
//	                      against the public key set in $JWKS_FILE, read anew
//	                      on every request
//	testapp pending-digest  hook: log the keyed digest of every key of the
//	                      pending Secret mounted at $KUBE_ROTATE_PENDING_DIR
//	testapp exit CODE     exit with CODE at once (a hook that really ends)
//	testapp sleep         sleep until SIGTERM, then exit 0
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kube-rotate/kube-rotate/e2e/images/digest"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: testapp db|set-password|check-login|pending-digest|jwks-sign|jwks-verify|exit CODE|sleep"))
	}
	var err error
	switch os.Args[1] {
	case "db":
		err = serveDB()
	case "set-password":
		err = setPassword()
	case "check-login":
		err = checkLogin()
	case "jwks-sign":
		err = jwksSign()
	case "jwks-verify":
		err = serveJWKSVerify()
	case "pending-digest":
		err = pendingDigest()
	case "exit":
		code := 0
		if len(os.Args) > 2 {
			code, _ = strconv.Atoi(os.Args[2])
		}
		fmt.Printf("testapp: exit %d\n", code)
		os.Exit(code)
	case "sleep":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
	os.Exit(1)
}

// Digest is the keyed digest a program logs of a value it loaded.
func Digest(key, value []byte) string { return digest.Of(key, value) }

func digestKey() ([]byte, error) {
	k := os.Getenv("DIGEST_KEY")
	if len(k) < 16 {
		return nil, errors.New("DIGEST_KEY must hold at least 16 characters")
	}
	return []byte(k), nil
}

// password reads the value from $DB_PASSWORD or from the file named by
// $DB_PASSWORD_FILE (a mounted Secret key).
func password() ([]byte, string, error) {
	if f := os.Getenv("DB_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", fmt.Errorf("reading DB_PASSWORD_FILE: %w", err)
		}
		return b, "file " + f, nil
	}
	if v, ok := os.LookupEnv("DB_PASSWORD"); ok {
		return []byte(v), "env DB_PASSWORD", nil
	}
	return nil, "", errors.New("set DB_PASSWORD or DB_PASSWORD_FILE")
}

// connConfig is $DB_HOST:$DB_PORT/$DB_NAME for user with pw, no TLS.
func connConfig(user, pw string, timeout time.Duration) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(os.Getenv("DB_PORT"))
	if err != nil {
		return nil, fmt.Errorf("DB_PORT: %w", err)
	}
	cfg.Host, cfg.Port, cfg.Database = os.Getenv("DB_HOST"), uint16(port), os.Getenv("DB_NAME")
	cfg.User, cfg.Password = user, pw
	cfg.ConnectTimeout = timeout
	return cfg, nil
}

// login connects as user with pw and runs SELECT 1.
func login(ctx context.Context, user string, pw []byte) error {
	cfg, err := connConfig(user, string(pw), 3*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return redact(err, pw)
	}
	defer conn.Close(context.Background())
	var one int
	return redact(conn.QueryRow(ctx, "SELECT 1").Scan(&one), pw)
}

// redact keeps a value out of an error that could quote it.
func redact(err error, pw []byte) error {
	if err == nil || len(pw) == 0 || !strings.Contains(err.Error(), string(pw)) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), string(pw), "[REDACTED]"))
}

func serveDB() error {
	key, err := digestKey()
	if err != nil {
		return err
	}
	pw, from, err := password()
	if err != nil {
		return err
	}
	user := os.Getenv("DB_USER")
	fmt.Printf("testapp: loaded password from %s digest=%s\n", from, Digest(key, pw))
	var lastOK *bool
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		err := login(r.Context(), user, pw)
		if ok := err == nil; lastOK == nil || *lastOK != ok {
			lastOK = &ok
			if ok {
				fmt.Printf("testapp: login as %s works\n", user)
			} else {
				fmt.Printf("testapp: login as %s fails: %v\n", user, err)
			}
		}
		if err != nil {
			http.Error(w, "login fails", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return listen()
}

func listen() error {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pendingDir is where a hook Job finds the pending Secret.
func pendingDir() string {
	if dir := os.Getenv("KUBE_ROTATE_PENDING_DIR"); dir != "" {
		return dir
	}
	return "/etc/kube-rotate/pending"
}

// pending reads key $KEY (default "password") of the pending Secret the
// hook Job mounts at $KUBE_ROTATE_PENDING_DIR.
func pending() ([]byte, error) {
	dir := pendingDir()
	key := os.Getenv("KEY")
	if key == "" {
		key = "password"
	}
	b, err := os.ReadFile(filepath.Join(dir, key))
	if err != nil {
		return nil, fmt.Errorf("reading the pending value: %w", err)
	}
	return b, nil
}

func setPassword() error {
	pw, err := pending()
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, err := connConfig(os.Getenv("ADMIN_USER"), os.Getenv("ADMIN_PASSWORD"), 5*time.Second)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting as %s: %w", cfg.User, err)
	}
	defer conn.Close(ctx)
	role := os.Getenv("ROLE")
	sql := "ALTER ROLE " + pgx.Identifier{role}.Sanitize() + " PASSWORD " + quoteLiteral(string(pw))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("ALTER ROLE %s: %w", role, redact(err, pw))
	}
	key, err := digestKey()
	if err != nil {
		return err
	}
	fmt.Printf("testapp: role %s password set, digest=%s\n", role, Digest(key, pw))
	return nil
}

func pendingDigest() error {
	key, err := digestKey()
	if err != nil {
		return err
	}
	dir := pendingDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the pending values: %w", err)
	}
	n := 0
	for _, e := range entries {
		// A Secret volume holds each key as a link into ..data; skip the
		// volume's own ..data and ..<timestamp> entries.
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fmt.Printf("testapp: pending %s digest=%s\n", e.Name(), Digest(key, b))
		n++
	}
	if n == 0 {
		return fmt.Errorf("no pending values in %s", dir)
	}
	return nil
}

func checkLogin() error {
	pw, err := pending()
	if err != nil {
		return err
	}
	role := os.Getenv("ROLE")
	if err := login(context.Background(), role, pw); err != nil {
		return fmt.Errorf("login as %s with the pending value: %w", role, err)
	}
	fmt.Printf("testapp: login as %s with the pending value works\n", role)
	return nil
}

// quoteLiteral quotes s as a standard SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
