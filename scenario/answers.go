package scenario

import (
	"errors"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/ratelab/ratelab/internal/wire"
)

// Answers is what a target's requests came back with: how many answers of each HTTP
// status, and the requests that got no answer, by kind of error with one example
// message each (vegeta's "Status Codes" and "Error Set").
type Answers struct {
	// Codes counts the answers by status code.
	Codes map[int]int64
	// FailClosed counts the 5xx answers that were a fail-closed refusal: the node's
	// limiter check failed (its Server-Timing said so) and it refused on purpose.
	FailClosed int64
	// FailOpen counts the answers a node served although its limiter check failed
	// (its Server-Timing said so): admitted by the fail mode, unlimited.
	FailOpen int64
	// Local counts the answers (200 or 429) a node's own in-memory limiter decided
	// because its limiter check failed (fail mode local).
	Local int64
	// Errors are the requests without an answer, by kind (see ErrorKind).
	Errors map[string]ErrorCount
}

// ErrorCount is how many requests failed with one kind of error, and the message of
// the first of them.
type ErrorCount struct {
	Count   int64
	Example string
}

// ServerErrors counts the 5xx answers that were not fail-closed refusals: the
// server failing, not the limiter deciding.
func (a Answers) ServerErrors() int64 {
	var n int64
	for code, c := range a.Codes {
		if code >= 500 {
			n += c
		}
	}
	return n - a.FailClosed
}

// TransportErrors counts the requests that got no answer.
func (a Answers) TransportErrors() int64 {
	var n int64
	for _, e := range a.Errors {
		n += e.Count
	}
	return n
}

// ErrorKinds lists the error kinds, the most frequent first.
func (a Answers) ErrorKinds() []string {
	kinds := make([]string, 0, len(a.Errors))
	for k := range a.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		ci, cj := a.Errors[kinds[i]].Count, a.Errors[kinds[j]].Count
		return ci > cj || (ci == cj && kinds[i] < kinds[j])
	})
	return kinds
}

// add adds b's counts to a.
func (a *Answers) add(b *Answers) {
	for code, n := range b.Codes {
		if a.Codes == nil {
			a.Codes = make(map[int]int64)
		}
		a.Codes[code] += n
	}
	a.FailClosed += b.FailClosed
	a.FailOpen += b.FailOpen
	a.Local += b.Local
	for k, e := range b.Errors {
		if a.Errors == nil {
			a.Errors = make(map[string]ErrorCount)
		}
		sum := a.Errors[k]
		if sum.Count == 0 {
			sum.Example = e.Example
		}
		sum.Count += e.Count
		a.Errors[k] = sum
	}
}

// answered counts one answer: its status code, and whether a fail mode decided it
// (outcome is the node's Server-Timing outcome: wire.CheckError when its check failed
// and open or closed decided, wire.CheckLocal when its in-memory limiter did). Each
// connection keeps its own Answers, written only by whoever holds the connection, so
// the hot path takes no lock; HTTPTarget.Answers merges them once the requests are over.
func (a *Answers) answered(code int, st Status, outcome string) {
	if a.Codes == nil {
		a.Codes = make(map[int]int64, 4)
	}
	a.Codes[code]++
	switch {
	case outcome == wire.CheckLocal:
		a.Local++
	case outcome != wire.CheckError:
	case st == Allowed:
		a.FailOpen++
	case st == Failed && code >= 500:
		a.FailClosed++
	}
}

// failed counts one request that got no answer.
func (a *Answers) failed(err error) {
	if a.Errors == nil {
		a.Errors = make(map[string]ErrorCount, 2)
	}
	k := ErrorKind(err)
	e := a.Errors[k]
	if e.Count == 0 {
		e.Example = err.Error()
	}
	e.Count++
	a.Errors[k] = e
}

// ErrorKind names the kind of a transport error in a few words: "connection
// refused", "connection reset", "timeout", "connection closed", "bad response", or
// for anything else "other".
func ErrorKind(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "address unreachable"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed"
	case strings.Contains(err.Error(), "malformed HTTP"), strings.Contains(err.Error(), "HTTP/1"):
		return "bad response"
	}
	return "other"
}

// Answers merges what every connection's answers said. Call it when no request is in
// flight: after Runner.Run or Warm returns.
func (t *HTTPTarget) Answers() Answers {
	var a Answers
	for _, cn := range t.conns {
		a.add(&cn.answers)
	}
	return a
}

// ResetAnswers forgets the answers so far (a warm-up's). Call it when no request is
// in flight.
func (t *HTTPTarget) ResetAnswers() {
	for _, cn := range t.conns {
		cn.answers = Answers{}
	}
}
