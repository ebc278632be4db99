package server

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/socket"
)

// The log line names which timeout cut a request, whichever transport's
// error it is and however it came wrapped.
func TestTimeoutReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&socket.Error{Op: socket.OpRead, Sent: true, Err: socket.ErrResponseHeaderTimeout}, "response header timeout"},
		{&socket.Error{Op: socket.OpWrite, Err: socket.ErrIdleTimeout}, "idle timeout"},
		{fmt.Errorf("Post: %w", &net.OpError{Op: "write", Net: "tcp", Err: fetch.ErrIdleTimeout}), "idle timeout"},
		{fmt.Errorf("body: %w", fetch.ErrIdleTimeout), "idle timeout"},
		{errors.New("i/o timeout"), "timeout"},
	} {
		if got := timeoutReason(tc.err); got != tc.want {
			t.Errorf("timeoutReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
