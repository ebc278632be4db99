package server

import (
	"errors"
	"sync"
	"syscall"
)

// clientWatcher notices, for every handed-off stream at once, a client
// leaving or sending its next request: one epoll set and one goroutine
// instead of a goroutine (and its stack) blocked in a read per stream.
// Each connection is watched once (EPOLLONESHOT) for the client's side
// closing (EPOLLRDHUP) or bytes arriving (EPOLLIN).
type clientWatcher struct {
	mu     sync.Mutex
	epfd   int
	wake   [2]int // a pipe: a byte on it stops the loop
	m      map[uint32]*handoff
	token  uint32 // the last one handed out; 0 is the wake pipe's
	closed bool
	done   chan struct{}
}

func newClientWatcher() (*clientWatcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	cw := &clientWatcher{epfd: epfd, m: make(map[uint32]*handoff), done: make(chan struct{})}
	if err := syscall.Pipe2(cw.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, cw.wake[0], &ev); err != nil {
		cw.closeFDs()
		return nil, err
	}
	go cw.loop()
	return cw, nil
}

// add starts watching h's client connection; false when it cannot be.
func (cw *clientWatcher) add(h *handoff) bool {
	sc, ok := h.c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.closed {
		return false
	}
	cw.token++
	if cw.token == 0 {
		cw.token++
	}
	tok := cw.token
	var cerr error
	err = raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(tok)}
		if cerr = syscall.EpollCtl(cw.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); cerr == nil {
			h.fd = int(fd)
		}
	})
	if err != nil || cerr != nil {
		return false
	}
	h.token = tok
	cw.m[tok] = h
	return true
}

// remove stops watching h's connection. It runs before the connection is
// closed or given back, while its descriptor is still h's.
func (cw *clientWatcher) remove(h *handoff) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if h.token == 0 {
		return
	}
	delete(cw.m, h.token)
	h.token = 0
	if !cw.closed {
		var ev syscall.EpollEvent
		syscall.EpollCtl(cw.epfd, syscall.EPOLL_CTL_DEL, h.fd, &ev)
	}
}

func (cw *clientWatcher) loop() {
	defer close(cw.done)
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(cw.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			tok := uint32(ev.Fd)
			if tok == 0 {
				return // close
			}
			cw.mu.Lock()
			h := cw.m[tok]
			gone, spurious := false, false
			if h != nil {
				// Under mu: remove, and so the connection's close, waits
				// for this look at its descriptor.
				gone, spurious = cw.classify(h, ev.Events)
			}
			cw.mu.Unlock()
			if h != nil && !spurious {
				h.clientEvent(gone)
			}
		}
	}
}

// classify tells what an event on h's connection means: the client left
// (gone), or sent bytes of its next request. EPOLLRDHUP with bytes waiting
// is a client that sent its next request and then shut its side: like
// net/http, which reads the byte first, the stream goes on. An event with
// nothing to read (spurious) arms the watch again.
func (cw *clientWatcher) classify(h *handoff, events uint32) (gone, spurious bool) {
	if events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		return true, false
	}
	var b [1]byte
	n, _, err := syscall.Recvfrom(h.fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n > 0:
		return false, false
	case err == nil: // end of stream
		return true, false
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(h.token)}
		syscall.EpollCtl(cw.epfd, syscall.EPOLL_CTL_MOD, h.fd, &ev)
		return false, true
	default: // reset
		return true, false
	}
}

// close stops the loop and releases the epoll set; connections still
// registered are no longer watched.
func (cw *clientWatcher) close() {
	cw.mu.Lock()
	if cw.closed {
		cw.mu.Unlock()
		return
	}
	cw.closed = true
	cw.mu.Unlock()
	syscall.Write(cw.wake[1], []byte{0})
	<-cw.done
	cw.closeFDs()
}

func (cw *clientWatcher) closeFDs() {
	syscall.Close(cw.wake[0])
	syscall.Close(cw.wake[1])
	syscall.Close(cw.epfd)
}
