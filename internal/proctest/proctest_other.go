//go:build !unix

package proctest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// attr: no user to switch to (u is nil where the tests cannot run as
// root) and no death signal.
func attr(*User) *syscall.SysProcAttr { return nil }

var errNoFreeze = fmt.Errorf("proctest: this system cannot stop a process without ending it: %w", errors.ErrUnsupported)

func freeze(*os.Process) error { return errNoFreeze }
func thaw(*os.Process) error   { return nil }
