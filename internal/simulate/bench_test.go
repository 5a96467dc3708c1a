//go:build unix

package simulate

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// BenchmarkDecide is simulate's speed per core: one lane, 10,000 clients, requests
// at random clients 50 µs apart (20,000 a second), so a good share is denied. One op
// is one decision. decisions/s is by the wall clock; decisions/cpu-s by the process's
// CPU time, which a busy machine's other work does not inflate.
func BenchmarkDecide(b *testing.B) {
	p := algorithms.Policy{Limit: 100, Window: time.Minute}
	for _, name := range algorithms.Names() {
		b.Run(name, func(b *testing.B) {
			e, err := New(Config{Algorithms: []string{name}, Policies: []algorithms.Policy{p}})
			if err != nil {
				b.Fatal(err)
			}
			const clients = 10_000
			for i := range clients {
				e.Intern(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ids := make([]int32, 1<<16)
			for i := range ids {
				ids[i] = int32(rng.IntN(clients))
			}
			now := t0
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				now += 50
				e.AddID(now, ids[i&(len(ids)-1)])
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(b.N)/(cpuTime(b)-cpu0).Seconds(), "decisions/cpu-s")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
