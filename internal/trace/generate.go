package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"
)

// GenConfig is what a generated combined log is made from. The same GenConfig always
// gives the same log, byte for byte.
type GenConfig struct {
	Seed uint64
	// Start is the first second of the log (DefaultGenStart when zero).
	Start time.Time
	// Lines is how many lines to write, malformed ones included.
	Lines int64
	// Clients is how many clients send (at least 10): three in five steady users, one
	// in four bursty users, one in ten on IPv6 (two addresses of a /64 each), and
	// one scraper.
	Clients int
	// BadEvery makes one line in BadEvery malformed (0: none).
	BadEvery int
	// XFF writes nginx's log_format main: every request comes through one of three
	// load balancers ($remote_addr) with the client first in "$http_x_forwarded_for".
	XFF bool
}

// DefaultGenStart is where a generated log begins unless told otherwise.
var DefaultGenStart = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// ScraperRPS is the generated scraper's rate, requests per second: 300 a minute,
// steadily, day and night.
const ScraperRPS = 5

// The kinds of generated client.
const (
	kindSteady = iota
	kindBursty
	kindIPv6
	kindScraper
)

type genClient struct {
	kind  int
	addr  string
	addr2 string // the IPv6 client's second address in its /64
	rate  float64
	ua    string
	// burst is how many requests of a bursty client's burst remain, and burstRate how
	// many it sends each second.
	burst, burstRate int
}

var userAgents = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	// nginx writes a quote in a header as \x22.
	`Mozilla/5.0 (compatible; Widget \x22Pro\x22 1.2; +https://widget.example/bot)`,
	"curl/8.5.0",
}

// ErrGenConfig is wrapped by the errors of a GenConfig that cannot be generated.
var ErrGenConfig = errors.New("cannot generate")

// Generate writes the combined log of c to w: a realistic mix of steady users,
// bursty users (a page and its assets, then quiet), IPv6 clients, one scraper at
// ScraperRPS, and malformed lines, one second at a time.
func Generate(w io.Writer, c GenConfig) error {
	if c.Clients < 10 || c.Clients > 1<<20 {
		return fmt.Errorf("%w: %d clients; choose between 10 and %d", ErrGenConfig, c.Clients, 1<<20)
	}
	if c.Lines < 1 {
		return fmt.Errorf("%w: %d lines; it must be at least 1", ErrGenConfig, c.Lines)
	}
	if c.BadEvery < 0 {
		return fmt.Errorf("%w: one bad line every %d; it must not be negative", ErrGenConfig, c.BadEvery)
	}
	start := c.Start
	if start.IsZero() {
		start = DefaultGenStart
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6f_6773))
	clients := genClients(c.Clients, rng)
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	var written int64
	for sec := int64(0); written < c.Lines; sec++ {
		ts := start.Add(time.Duration(sec) * time.Second).Format(combinedTimeLayout)
		for i := range clients {
			cl := &clients[i]
			for range cl.requestsThisSecond(rng) {
				if written == c.Lines {
					break
				}
				buf = buf[:0]
				if c.BadEvery > 0 && rng.IntN(c.BadEvery) == 0 {
					buf = appendBad(buf, rng, ts)
				} else {
					buf = appendLine(buf, rng, cl, ts, c.XFF)
				}
				buf = append(buf, '\n')
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				written++
			}
		}
	}
	return bw.Flush()
}

func genClients(n int, rng *rand.Rand) []genClient {
	out := make([]genClient, n)
	for i := range out {
		cl := &out[i]
		switch {
		case i == 0:
			cl.kind, cl.rate = kindScraper, ScraperRPS
		case i%10 == 1:
			cl.kind, cl.rate = kindIPv6, 0.02+rng.Float64()*0.3
		case i%4 == 2:
			cl.kind, cl.rate = kindBursty, 0.002+rng.Float64()*0.01
		default:
			cl.kind, cl.rate = kindSteady, 0.02+rng.Float64()*0.5
		}
		if cl.kind == kindIPv6 {
			net := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i), 0}
			a, b := net, net
			a[15], b[15] = byte(1+rng.IntN(200)), byte(201+rng.IntN(50))
			cl.addr, cl.addr2 = netip.AddrFrom16(a).String(), netip.AddrFrom16(b).String()
		} else {
			cl.addr = netip.AddrFrom4([4]byte{byte(100 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)}).String()
		}
		cl.ua = userAgents[rng.IntN(len(userAgents))]
		if cl.kind == kindScraper {
			cl.ua = "python-requests/2.32.3"
		}
	}
	return out
}

// requestsThisSecond is how many requests the client sends in the next second.
func (cl *genClient) requestsThisSecond(rng *rand.Rand) int {
	switch cl.kind {
	case kindScraper:
		return ScraperRPS
	case kindBursty:
		if cl.burst == 0 && rng.Float64() < cl.rate {
			// A page and its assets, over a few seconds: 20 to 120 requests.
			cl.burst = 20 + rng.IntN(101)
			cl.burstRate = 10 + rng.IntN(40)
		}
		n := min(cl.burst, cl.burstRate)
		cl.burst -= n
		return n
	}
	return poisson(rng, cl.rate)
}

// poisson draws a Poisson count of mean m (small m: Knuth's method).
func poisson(rng *rand.Rand, m float64) int {
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

var routes = []string{"/products/", "/products/", "/products/", "/api/search?q=", "/static/app.js", "/login"}

func appendLine(b []byte, rng *rand.Rand, cl *genClient, ts string, xff bool) []byte {
	addr := cl.addr
	if cl.addr2 != "" && rng.IntN(2) == 0 {
		addr = cl.addr2
	}
	remote := addr
	if xff {
		remote = "10.0.0." + strconv.Itoa(1+rng.IntN(3))
	}
	b = append(b, remote...)
	b = append(b, " - - ["...)
	b = append(b, ts...)
	b = append(b, "] \""...)
	route := routes[rng.IntN(len(routes))]
	status := 200
	switch {
	case route == "/login":
		b = append(b, "POST /login HTTP/1.1"...)
		if rng.IntN(5) == 0 {
			status = 401
		}
	case cl.kind == kindScraper:
		b = append(b, "GET /products/"...)
		b = strconv.AppendInt(b, int64(1+rng.IntN(100_000)), 10)
		b = append(b, " HTTP/1.1"...)
	default:
		b = append(b, "GET "...)
		b = append(b, route...)
		if route[len(route)-1] == '/' || route[len(route)-1] == '=' {
			b = strconv.AppendInt(b, int64(1+rng.IntN(500)), 10)
		}
		b = append(b, " HTTP/2.0"...)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(200+rng.IntN(20_000)), 10)
	b = append(b, " \"-\" \""...)
	b = append(b, cl.ua...)
	b = append(b, '"')
	if xff {
		b = append(b, " \""...)
		b = append(b, addr...)
		b = append(b, ", 192.0.2.10\""...)
	}
	return b
}

// appendBad writes one of the malformed lines a real log has: cut short by a full
// disk or a rotation, a stray message, binary noise, or a broken time.
func appendBad(b []byte, rng *rand.Rand, ts string) []byte {
	switch rng.IntN(4) {
	case 0:
		return append(b, "203.0.113.9 - - ["+ts[:11]...)
	case 1:
		return append(b, "nginx: [warn] conflicting server name \"example.com\" on 0.0.0.0:80, ignored"...)
	case 2:
		return append(b, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"...)
	}
	return append(b, "203.0.113.9 - - [99/Foo/2026:25:61:61 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"-\""...)
}
