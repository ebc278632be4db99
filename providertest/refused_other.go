//go:build !unix

package providertest

import "net"

// refusedAddr returns a loopback port a listener just gave up: nothing
// listens there, though another listener could take it before the test
// dials (the unix version keeps the port bound).
func refusedAddr() (addr string, release func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	return addr, func() {}, nil
}
