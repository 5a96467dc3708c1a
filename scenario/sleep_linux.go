package scenario

import (
	"time"

	"golang.org/x/sys/unix"
)

// sleepShort sleeps d (at most a few milliseconds) in nanosleep: the Go runtime's
// timers wake through the network poller, whose timeout is in whole milliseconds, so a
// time.Sleep of 300µs can take 1ms. An open-loop pacer needs better; this blocks the
// dispatcher's thread instead, and the runtime lends its processor to other goroutines.
func sleepShort(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil)
}
