package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/proctest"
)

// No error from Open shows the database password, whatever is wrong:
// the URL, the address, the password itself.
func TestDatabaseURLErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-s3cret-pw"
	escaped := url.QueryEscape("p@ss/w:rd%" + pw)
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	type tc struct {
		name, url string
		hide      []string
	}
	cases := []tc{
		{"bad sslmode", "postgres://u:" + pw + "@localhost:5432/db?sslmode=bogus", []string{pw}},
		{"bad port", "postgres://u:" + pw + "@localhost:notaport/db", []string{pw}},
		{"bad escape", "postgres://u:" + pw + "%zz@localhost/db", []string{pw}},
		{"space in host", "postgres://u:" + pw + "@local host/db", []string{pw}},
		{"other scheme", "mysql://u:" + pw + "@localhost/db", []string{pw}},
		{"no scheme", "u:" + pw + "@localhost/db", []string{pw}},
		{"password in the query", "postgres://u@localhost/db?password=" + pw + "&sslmode=bogus", []string{pw}},
		{"escaped password", "postgres://u:" + escaped + "@localhost/db?sslmode=bogus", []string{escaped, "p@ss/w:rd%" + pw}},
		{"nothing listens", "postgres://u:" + pw + "@" + closed + "/db?sslmode=disable&connect_timeout=5", []string{pw}},
	}
	if srv := postgresServerIfAny(t); srv != nil {
		u, _ := url.Parse(srv.url("postgres"))
		u.User = url.UserPassword("llmproxy", pw)
		cases = append(cases, tc{"wrong password", u.String(), []string{pw}})
		u.User = url.UserPassword("nobody", pgPassword)
		cases = append(cases, tc{"wrong user", u.String(), []string{pgPassword}})
		u.User = url.User("llmproxy")
		u.Path = "/no_such_db"
		u.RawQuery = "sslmode=disable&password=" + pgPassword
		cases = append(cases, tc{"no such database", u.String(), []string{pgPassword}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, Options{DatabaseURL: c.url})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, h := range c.hide {
				if strings.Contains(err.Error(), h) || strings.Contains(fmt.Sprintf("%+v", err), h) {
					t.Errorf("the error shows the password: %v", err)
				}
			}
			t.Logf("%v", err)
		})
	}
}

// postgresServerIfAny is the test server, or nil where PostgreSQL is not
// installed and not required (the rest of the test still runs).
func postgresServerIfAny(t *testing.T) *pgServer {
	t.Helper()
	if _, err := proctest.PostgresBinDir(); err != nil && os.Getenv(pgTestsEnv) == "" {
		return nil
	}
	return postgresServer(t)
}

func TestRedact(t *testing.T) {
	t.Parallel()
	base := errors.New("failed for user=u password=hunter2-long at host")
	for _, tc := range []struct {
		name    string
		secrets []string
		want    string
	}{
		{"replaced", []string{"hunter2-long"}, "failed for user=u password=xxxxx at host"},
		{"not there", []string{"other-secret"}, base.Error()},
		{"too short to replace", []string{"u"}, withheld},
		{"none", nil, base.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := redact(base, tc.secrets)
			if got.Error() != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !errors.Is(got, base) {
				t.Error("the redacted error does not wrap the original")
			}
		})
	}
	if redact(nil, []string{"x"}) != nil {
		t.Error("redact(nil) is not nil")
	}
}

// parseDatabaseURL's errors never hold the URL's password, whatever the
// URL around it.
func FuzzParseDatabaseURL(f *testing.F) {
	for _, seed := range [][3]string{
		{"secret-pw", "localhost:5432", "sslmode=disable"},
		{"secret-pw", "localhost:port", ""},
		{"p%40ss-word", "h", "sslmode=bogus"},
		{"pw", "h:1", "password=another-secret&sslmode=x"},
		{"a:b:c-secret", "[::1]:5432", "connect_timeout=abc"},
		{"", "h", "sslpassword=key-pass&sslmode=verify-full&sslkey=/nonexistent"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, pw, host, query string) {
		raw := "postgres://user:" + pw + "@" + host + "/db?" + query
		_, _, err := parseDatabaseURL(raw)
		if err == nil {
			return
		}
		msg := err.Error()
		u, perr := url.Parse(raw)
		if perr != nil || msg == withheld {
			return // fixed texts
		}
		// The secrets as the URL means them: the user info's password
		// (decoded, and as written) and the query's.
		var check []string
		if p, ok := u.User.Password(); ok {
			check = append(check, p)
			authority := raw[len("postgres://"):]
			if i := strings.IndexAny(authority, "/?#"); i >= 0 {
				authority = authority[:i]
			}
			userinfo := authority[:strings.LastIndex(authority, "@")]
			_, written, _ := strings.Cut(userinfo, ":")
			check = append(check, written)
		}
		for _, k := range []string{"password", "sslpassword"} {
			check = append(check, u.Query()[k]...)
		}
		for _, s := range check {
			// A very short secret makes the message the fixed one; the
			// mask itself may look like a secret of x's.
			if len(s) >= minRedact && !strings.Contains(s, "xxx") && strings.Contains(msg, s) {
				t.Fatalf("error %q holds the secret %q", msg, s)
			}
		}
	})
}
