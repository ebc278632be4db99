package sockio

// ErrWouldBlock is what a read within Conn.ReadLoop returns when the
// socket has nothing for it. It is a net.Error that is temporary and not
// a timeout: crypto/tls keeps a record it has begun and does not make the
// error its own, so a TLS connection over the socket reads on after the
// wait.
//
// It is a pointer, so that comparing an error with it is a comparison of
// two words (it is made per event of a relayed stream).
var ErrWouldBlock error = &wouldBlock{}

type wouldBlock struct{ _ byte }

func (*wouldBlock) Error() string   { return "sockio: nothing to read yet" }
func (*wouldBlock) Timeout() bool   { return false }
func (*wouldBlock) Temporary() bool { return true }
