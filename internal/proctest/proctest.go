// Package proctest prepares the helper processes that tests start
// (redis-server, PostgreSQL, llmproxy replicas) on every system the tests
// build on: on Linux they die with the test binary, however it ends (a
// timeout's panic runs no cleanup); elsewhere only the tests' cleanup
// stops them. It also finds PostgreSQL and the user to run it as, and
// freezes a process to stand for a network partition.
package proctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
)

// User is a user a helper process runs as.
type User struct{ UID, GID uint32 }

// Prepare sets cmd's process attributes: it runs as u (nil: as the test's
// own user) and, where the system can, is killed when the test binary
// dies.
func Prepare(cmd *exec.Cmd, u *User) { cmd.SysProcAttr = attr(u) }

// ErrNoPostgres: PostgresBinDir found no initdb and postgres.
var ErrNoPostgres = errors.New("PostgreSQL is not installed (initdb and postgres not in PATH nor in /usr/lib/postgresql/*/bin)")

// PostgresBinDir finds initdb and postgres: in PATH, else the newest
// /usr/lib/postgresql/N/bin (Debian keeps them out of PATH).
func PostgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

// PostgresUser is whom PostgreSQL runs as in the tests: nil (the test's
// own user) unless the tests run as root, which PostgreSQL refuses; then
// the postgres user that the Debian package creates (CI).
func PostgresUser() (*User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the postgres user's id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the postgres user's group %q: %w", u.Gid, err)
	}
	return &User{UID: uint32(uid), GID: uint32(gid)}, nil
}

// Chown gives the files to u (nothing for nil: they are the test's own).
func Chown(u *User, files ...string) error {
	if u == nil {
		return nil
	}
	for _, f := range files {
		if err := os.Chown(f, int(u.UID), int(u.GID)); err != nil {
			return err
		}
	}
	return nil
}

// Freeze stops p without ending it (SIGSTOP: its connections stay open, as
// in a network partition); Thaw resumes it. Where the system cannot, the
// error wraps errors.ErrUnsupported.
func Freeze(p *os.Process) error { return freeze(p) }

// Thaw resumes a process Freeze stopped; for a running one it does
// nothing.
func Thaw(p *os.Process) error { return thaw(p) }
