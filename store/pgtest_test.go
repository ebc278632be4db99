package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmproxy/llmproxy/internal/logbuf"
	"github.com/llmproxy/llmproxy/internal/proctest"
)

// The PostgreSQL tests run against a real server that the package starts
// once, on first use, from the Debian package's binaries (initdb,
// postgres), and that TestMain stops. Each test gets a database of its own.
// Without the binaries the tests skip, unless pgTestsEnv is set (CI
// installs postgresql and sets it): then they fail.

const pgTestsEnv = "LLMPROXY_PG_TESTS"

// pgPassword is the test superuser's password: tests check that no error
// shows it.
const pgPassword = "pg-test-Pass-7f3a9c"

type pgServer struct {
	port int
	base string // the data dir, the socket dir and the password file
	cmd  *exec.Cmd
	exit chan error
	logs *logbuf.Buffer

	mu     sync.Mutex // one CREATE DATABASE at a time
	admin  *pgx.Conn
	nextDB int
}

var (
	pgOnce sync.Once
	pgSrv  *pgServer
	pgErr  error
)

// postgresServer is the package's server, started on first use; the test
// skips (or fails, in CI) when there is none.
func postgresServer(t testing.TB) *pgServer {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = startPostgres() })
	if pgErr != nil {
		if errors.Is(pgErr, proctest.ErrNoPostgres) && os.Getenv(pgTestsEnv) == "" {
			t.Skipf("%v; set %s=1 to make this a failure", pgErr, pgTestsEnv)
		}
		t.Fatalf("PostgreSQL for the tests: %v", pgErr)
	}
	return pgSrv
}

// stopPostgres stops the server if a test started it (TestMain).
func stopPostgres() {
	if pgSrv != nil {
		pgSrv.stop()
	}
}

func startPostgres() (*pgServer, error) {
	bin, err := proctest.PostgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := proctest.PostgresUser()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "llmproxy-pg-")
	if err != nil {
		return nil, err
	}
	p := &pgServer{base: base, logs: &logbuf.Buffer{}}
	fail := func(err error) (*pgServer, error) {
		p.stop()
		return nil, err
	}
	pwfile := filepath.Join(base, "pw")
	if err := os.WriteFile(pwfile, []byte(pgPassword+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if err := proctest.Chown(cred, base, pwfile); err != nil {
		return fail(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(base, "data"), "-U", "llmproxy",
		"--pwfile", pwfile, "--auth-local", "trust", "--auth-host", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = base
	proctest.Prepare(initdb, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	// A port that was free a moment ago may be taken by the time the
	// server binds it: try a few.
	for range 3 {
		if err = p.start(bin, cred); err == nil {
			return p, nil
		}
	}
	return fail(err)
}

func (p *pgServer) start(bin string, cred *proctest.User) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"-D", filepath.Join(p.base, "data"), "-p", strconv.Itoa(p.port),
		"-k", p.base, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"}
	if !pgDurable() {
		// Speed over durability: the tests never survive a crash.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	p.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	p.cmd.Dir = p.base
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	// Killed with the test binary, whatever way it ends.
	proctest.Prepare(p.cmd, cred)
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.exit = make(chan error, 1)
	go func() { p.exit <- p.cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, p.url("postgres"))
		if err == nil {
			p.admin = conn
			return nil
		}
		select {
		case err := <-p.exit:
			p.cmd = nil
			return fmt.Errorf("postgres exited (%v):\n%s", err, p.logs.String())
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in 30s:\n%s", p.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pgDurable: when benchmarks run, the server flushes at every commit as
// a production one does, so that its numbers compare with SQLite's
// synchronous=FULL.
func pgDurable() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

func (p *pgServer) stop() {
	if p.admin != nil {
		p.admin.Close(context.Background())
	}
	if p.cmd != nil {
		// SIGINT: the fast shutdown (aborts sessions, no waiting for
		// clients), https://www.postgresql.org/docs/current/server-shutdown.html.
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exit:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exit
		}
	}
	os.RemoveAll(p.base)
}

// url is the connection URL of a database, over TCP with the password.
func (p *pgServer) url(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("llmproxy", pgPassword),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// newDatabase creates an empty database and returns its URL.
func (p *pgServer) newDatabase(t testing.TB) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextDB++
	name := fmt.Sprintf("t%d", p.nextDB)
	// FILE_COPY: a third of the default's time for a small database
	// (PostgreSQL 15 and later; earlier ones copy files anyway).
	_, err := p.admin.Exec(context.Background(), "CREATE DATABASE "+name+" STRATEGY FILE_COPY")
	if err != nil {
		_, err = p.admin.Exec(context.Background(), "CREATE DATABASE "+name)
	}
	if err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	return p.url(name)
}

// exec runs a statement as the superuser in database db (of a URL).
func (p *pgServer) exec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
