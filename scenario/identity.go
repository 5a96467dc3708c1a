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

// SourceIdentities returns n simulated client addresses on the loopback network,
// 127.<1+salt%254>.<i/256>.<i%256>, for IdentitySource: each identity's requests come
// from its own address. The second byte is never 0 or 255, so an identity is never
// 127.0.0.1 (the usual address of the target itself), nor SourceWarmIdentity, nor the
// network's broadcast address.
func SourceIdentities(n int, salt uint8) ([]string, error) {
	if n < 1 || n > MaxIdentities {
		return nil, fmt.Errorf("%d identities: choose between 1 and %d", n, MaxIdentities)
	}
	second := 1 + salt%254
	ids := make([]string, n)
	for i := range ids {
		ids[i] = netip.AddrFrom4([4]byte{127, second, byte(i >> 8), byte(i)}).String()
	}
	return ids, nil
}

// SourceWarmIdentity is a loopback address that SourceIdentities never returns, for
// requests that are not a run's (a warm-up).
const SourceWarmIdentity = "127.255.0.1"
