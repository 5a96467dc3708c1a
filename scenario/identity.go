package scenario

import (
	"fmt"
	"net/netip"
)

// MaxIdentities bounds --ips: identities are addresses 10.<salt>.x.y, 65536 of them per salt.
const MaxIdentities = 1 << 16

// Identities returns n simulated client addresses, 10.<salt>.<i/256>.<i%256>. A run uses
// a salt of its own, so two runs against one Redis never share limiter state.
func Identities(n int, salt uint8) ([]string, error) {
	if n < 1 || n > MaxIdentities {
		return nil, fmt.Errorf("%d identities: choose between 1 and %d", n, MaxIdentities)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = netip.AddrFrom4([4]byte{10, salt, byte(i >> 8), byte(i)}).String()
	}
	return ids, nil
}
