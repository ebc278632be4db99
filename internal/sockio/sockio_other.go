//go:build !linux || msan || asan

// Package sockio reads and writes a connected socket with raw system
// calls on Linux (see sockio_linux.go); elsewhere, and under the memory
// and address sanitizers (which would not see what a raw read writes),
// Wrap leaves connections as they are.
package sockio

import "net"

// Raw reports whether Wrap wraps connections in this build.
const Raw = false

// Wrap returns c.
func Wrap(c net.Conn) net.Conn { return c }
