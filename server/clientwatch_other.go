//go:build !linux

package server

import "errors"

// clientWatcher is Linux's (epoll); elsewhere streams are relayed in their
// handlers, where net/http watches the client.
type clientWatcher struct{}

func newClientWatcher() (*clientWatcher, error) {
	return nil, errors.New("handing streams off needs epoll")
}

func (*clientWatcher) add(*handoff) bool { return false }
func (*clientWatcher) remove(*handoff)   {}
func (*clientWatcher) close()            {}
