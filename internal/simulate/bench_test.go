package simulate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// BenchmarkDecide is simulate's speed per core: one lane, 10,000 clients, requests
// at random clients 50 µs apart (20,000 a second), so a good share is denied. One op
// is one decision.
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
			b.ResetTimer()
			for i := range b.N {
				now += 50
				e.AddID(now, ids[i&(len(ids)-1)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
