//go:build !linux

package scenario

import "time"

// sleepShort sleeps d; off Linux it is time.Sleep, with the runtime timers' resolution.
func sleepShort(d time.Duration) { time.Sleep(d) }
