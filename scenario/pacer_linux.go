package scenario

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacerPriority is the real-time priority the pacer asks for: the lowest SCHED_FIFO
// level, above every normal thread and below any real-time work the machine has.
const pacerPriority = 1

// realtimePacer gives the calling goroutine an OS thread of its own and asks the
// kernel to run that thread SCHED_FIFO. On a small machine the pacer shares the CPUs
// with the API nodes and the Redis server it is loading, and a normal thread that
// wakes from its sleep waits behind them for milliseconds; a real-time one runs at
// once. The pacer sleeps between sends and blocks when the workers are busy, so it
// never holds a CPU for long (and the kernel's real-time throttling bounds it anyway).
//
// It needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance; without them it reports false
// and the pacer runs at normal priority. The goroutine must not unlock its thread:
// when it returns, the runtime ends the thread, and the priority with it.
func realtimePacer() bool {
	runtime.LockOSThread()
	err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: pacerPriority}, 0)
	return err == nil
}

// sleepShort sleeps d (at most a few milliseconds) in nanosleep: the Go runtime's
// timers wake through the network poller, whose timeout is in whole milliseconds, so a
// time.Sleep of 300µs can take 1ms. An open-loop pacer needs better; this blocks the
// pacer's thread instead, and the runtime lends its processor to other goroutines.
func sleepShort(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil)
}
