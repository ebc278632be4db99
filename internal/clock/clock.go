// Package clock reads the time for timeouts and durations at half the cost
// of time.Now.
//
// time.Now reads two clocks, the wall clock and the monotonic one; a
// deadline, an idle timer or a duration needs only the monotonic one. On a
// busy proxy the request path reads the time a dozen times, and each read
// is a call into the vDSO that costs as much as a small allocation.
package clock

import "time"

// epoch is the time the process started, as time.Now read it.
var epoch = time.Now()

// Now returns the current time for deadlines and durations, with one clock
// read: its monotonic reading is exact, so comparing it with, or
// subtracting it from, any time.Time that has one (time.Now's, Now's) is
// exact too. Its wall clock is the start's plus the monotonic time since:
// it does not follow the wall clock if that was set since the start. A
// time that is printed, or compared with a date from outside, takes
// time.Now.
func Now() time.Time { return epoch.Add(time.Since(epoch)) }
