//go:build !linux

package scenario

import "time"

// realtimePacer reports false: off Linux the pacer runs at normal priority.
func realtimePacer() bool { return false }

// sleepShort sleeps d; off Linux it is time.Sleep, with the runtime timers' resolution.
func sleepShort(d time.Duration) { time.Sleep(d) }
