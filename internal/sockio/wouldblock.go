package sockio

// ErrWouldBlock is what a read within Conn.ReadLoop returns when the
// socket has nothing for it. It is a net.Error that is temporary and not
// a timeout: crypto/tls keeps a record it has begun and does not make the
// error its own, so a TLS connection over the socket reads on after the
// wait.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "sockio: nothing to read yet" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }
