package algorithms_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

func TestIPIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		bits int
		want string
	}{
		{"10.0.0.7", 64, "10.0.0.7"},
		{"::ffff:10.0.0.7", 64, "10.0.0.7"},
		{"::ffff:10.0.0.7", 48, "10.0.0.7"},
		{"2001:db8::7", 64, "2001:db8::/64"},
		{"2001:db8:0:0:ffff:ffff:ffff:ffff", 64, "2001:db8::/64"},
		{"2001:db8:0:1::7", 64, "2001:db8:0:1::/64"},
		{"2001:db8:aa:bb::7", 48, "2001:db8:aa::/48"},
		{"2001:db8:aa:bb::7", 56, "2001:db8:aa::/56"},
		{"2001:db8:aa:bbcc::7", 60, "2001:db8:aa:bbc0::/60"},
		{"2001:DB8::7", 128, "2001:db8::7"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"fe80::1%eth0", 128, "fe80::1"},
		{"2001:db8::7", 0, "2001:db8::7"},
		{"2001:db8::7", 200, "2001:db8::7"},
	}
	for _, tt := range tests {
		got := algorithms.IPIdentity(netip.MustParseAddr(tt.addr), tt.bits)
		if got != tt.want {
			t.Errorf("IPIdentity(%s, %d) = %q; want %q", tt.addr, tt.bits, got, tt.want)
		}
		if n, err := algorithms.NormalizeIdentity(got); err != nil || n != got {
			t.Errorf("NormalizeIdentity(%q) = %q, %v; IPIdentity's output must be a normalised identity", got, n, err)
		}
	}
}

func TestCheckIPv6Prefix(t *testing.T) {
	t.Parallel()
	for bits, ok := range map[int]bool{47: false, 48: true, 64: true, 127: true, 128: true, 129: false, 0: false, -64: false} {
		err := algorithms.CheckIPv6Prefix(bits)
		if (err == nil) != ok || (err != nil && (!errors.Is(err, algorithms.ErrInvalidIPv6Prefix) || !strings.Contains(err.Error(), "choose 48 to 128"))) {
			t.Errorf("CheckIPv6Prefix(%d) = %v; want ok=%v, an error saying what to choose", bits, err, ok)
		}
	}
}

func TestNormalizeNetworkIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, wantErr string }{
		{in: "2001:db8::/64", want: "2001:db8::/64"},
		{in: "2001:DB8:0::7/64", want: "2001:db8::/64"},
		{in: "2001:db8::7/128", want: "2001:db8::7"},
		{in: "2001:db8::/48", want: "2001:db8::/48"},
		{in: "2001:db8::/47", wantErr: "IPv6 network of /48 to /128"},
		{in: "10.0.0.0/8", wantErr: "IPv6 network"},
		{in: "10.0.0.7/32", wantErr: "IPv6 network"},
		{in: "::ffff:10.0.0.0/120", wantErr: "IPv6 network"},
		{in: "fe80::%eth0/64", want: "fe80::"}, // a zone may hold anything; it is dropped
		{in: "2001:db8::/64/64", wantErr: "IPv6 network"},
		{in: "../../etc", wantErr: "IPv6 network"},
		{in: "a/b", wantErr: "IPv6 network"},
		{in: strings.Repeat("a", 70) + "/64", wantErr: "character '/'"},
	}
	for _, tt := range tests {
		got, err := algorithms.NormalizeIdentity(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, algorithms.ErrInvalidIdentity) {
				t.Errorf("NormalizeIdentity(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeIdentity(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestNetworkIdentityKey: a /64 identity keeps its hash tag whole, parses back out of
// its key, and only in its canonical spelling.
func TestNetworkIdentityKey(t *testing.T) {
	t.Parallel()
	ks := algorithms.MustKeyspace("ratelab")
	p := algorithms.Policy{Limit: 10, Window: time.Second}
	id := algorithms.IPIdentity(netip.MustParseAddr("2001:db8::7"), algorithms.DefaultIPv6Prefix)
	key := ks.Limiter(algorithms.GCRA, p, id)
	if key != "ratelab:rl:gcra:10r1s:{2001:db8::/64}" {
		t.Fatalf("key = %q", key)
	}
	if tag := hashTag(key); tag != id {
		t.Fatalf("key %q hashes on %q, not on %q", key, tag, id)
	}
	got, err := ks.Parse(key)
	if err != nil || got.Identity != id {
		t.Fatalf("Parse(%q) = %+v, %v", key, got, err)
	}
	if got := ks.MatchIdentity(id); got != "ratelab:rl:*{2001:db8::/64}" {
		t.Fatalf("MatchIdentity = %q", got)
	}
	for _, bad := range []string{
		"ratelab:rl:gcra:10r1s:{2001:db8::7/64}",
		"ratelab:rl:gcra:10r1s:{2001:DB8::/64}",
		"ratelab:rl:gcra:10r1s:{2001:db8::/32}",
		"ratelab:rl:gcra:10r1s:{10.0.0.0/8}",
		"ratelab:rl:gcra:10r1s:{../../etc}",
		"ratelab:rl:gcra:10r1s:{010.0.0.7}",
		"ratelab:rl:gcra:10r1s:{10.0.0}",
		"ratelab:rl:gcra:10r1s:{2001:db8:0::1}",
		"ratelab:rl:gcra:10r1s:{...}",
		"ratelab:product:{../../etc}",
		"ratelab:lock:product:{a b}",
	} {
		if _, err := ks.Parse(bad); !errors.Is(err, algorithms.ErrUndecodable) {
			t.Errorf("Parse(%q) = %v; want ErrUndecodable (not a form ratelab writes)", bad, err)
		}
	}
}

func TestAPIKeyHasher(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, err := algorithms.NewAPIKeyHasher(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := algorithms.NewAPIKeyHasher(append([]byte(nil), secret...))
	other, _ := algorithms.NewAPIKeyHasher([]byte("another secret of enough bytes"))

	id := a.Identity("abc")
	if !strings.HasPrefix(id, "key-") || len(id) != 4+32 {
		t.Fatalf("Identity = %q; want key- and 32 hex digits", id)
	}
	if n, err := algorithms.NormalizeIdentity(id); err != nil || n != id {
		t.Fatalf("NormalizeIdentity(%q) = %q, %v", id, n, err)
	}
	if got := b.Identity("abc"); got != id {
		t.Errorf("the same key and secret on another node: %q; want %q", got, id)
	}
	if got := a.Identity("abc"); got != id {
		t.Errorf("the same key again: %q; want %q", got, id)
	}
	if got := other.Identity("abc"); got == id {
		t.Errorf("another secret gives the same identity %q", got)
	}
	if got := a.Identity("abd"); got == id {
		t.Errorf("another key gives the same identity %q", got)
	}
	sum := sha256.Sum256([]byte("abc"))
	if bare := "key-" + hex.EncodeToString(sum[:16]); id == bare || strings.Contains(id, hex.EncodeToString(sum[:8])) {
		t.Errorf("Identity(abc) = %q is the bare SHA-256 of the key", id)
	}
	for _, shown := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), slog.AnyValue(a).Resolve().String()} {
		if strings.Contains(shown, string(secret)) || strings.Contains(shown, "0123456789") {
			t.Errorf("the hasher prints its secret: %s", shown)
		}
	}
}

func TestNewAPIKeyHasherRefusesWeakSecrets(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "short", strings.Repeat("x", algorithms.MinAPIKeySecretLen-1), strings.Repeat("x", algorithms.MaxAPIKeySecretLen+1)} {
		if _, err := algorithms.NewAPIKeyHasher([]byte(s)); !errors.Is(err, algorithms.ErrWeakSecret) {
			t.Errorf("NewAPIKeyHasher(%d bytes) = %v; want ErrWeakSecret", len(s), err)
		}
	}
	if _, err := algorithms.NewAPIKeyHasher([]byte(strings.Repeat("x", algorithms.MinAPIKeySecretLen))); err != nil {
		t.Errorf("a secret of %d bytes: %v", algorithms.MinAPIKeySecretLen, err)
	}
}

func BenchmarkAPIKeyHasher(b *testing.B) {
	h, _ := algorithms.NewAPIKeyHasher([]byte("0123456789abcdef0123456789abcdef"))
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Identity("sk_live_0123456789")
	}
}
