//go:build !linux

// Package sockio reads and writes a connected socket with raw system
// calls on Linux (see sockio_linux.go); elsewhere Wrap leaves connections
// as they are.
package sockio

import "net"

// Wrap returns c: only Linux has the raw reads and writes.
func Wrap(c net.Conn) net.Conn { return c }
