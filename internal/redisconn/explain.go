package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// ErrRefused is wrapped by the error for a command that Redis received and refused:
// out of memory, a read-only replica, missing ACL permissions and the like.
var ErrRefused = errors.New("refused by Redis")

// Kind names what went wrong talking to Redis, in a word fit for logs and metrics.
type Kind string

// The kinds of Redis trouble Diagnose tells apart.
const (
	KindTimeout       Kind = "timeout"
	KindRefused       Kind = "connection-refused"
	KindClosed        Kind = "connection-closed"
	KindUnknownHost   Kind = "unknown-host"
	KindNoSocket      Kind = "no-socket"
	KindAuth          Kind = "auth"
	KindNoPermission  Kind = "no-permission"
	KindTLS           Kind = "tls"
	KindProtocol      Kind = "protocol"
	KindOutOfMemory   Kind = "out-of-memory"
	KindReadOnly      Kind = "read-only"
	KindLoading       Kind = "loading"
	KindBusy          Kind = "busy"
	KindCannotPersist Kind = "cannot-persist"
	KindClusterDown   Kind = "cluster-down"
	KindNotCluster    Kind = "not-a-cluster"
	KindNoScript      Kind = "no-script"
	KindPoolTimeout   Kind = "pool-timeout"
	KindClientClosed  Kind = "client-closed"
	KindCanceled      Kind = "canceled"
	KindOther         Kind = "other"
)

// Problem is an error from talking to Redis, explained.
type Problem struct {
	// Kind is what went wrong, as a stable word.
	Kind Kind
	// Why says it in words, without addresses, user names or key names, so that it
	// may be shown to anyone (e.g. on /healthz): "out of memory", "connection refused".
	Why string
	// Todo says what an operator should do about it.
	Todo string
	// Answered reports whether Redis received the command and refused it, rather
	// than could not be reached or did not answer.
	Answered bool
}

// Diagnose explains err, an error from a Redis call, by its kind. It is the one place
// where ratelab reads Redis's errors; Explain, the logs and /healthz all use it.
func Diagnose(err error) Problem {
	if err == nil {
		return Problem{}
	}
	msg := err.Error()
	var redisErr redis.Error
	reply := errors.As(err, &redisErr)
	code := ""
	if reply {
		code = replyCode(redisErr.Error())
	}
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(msg, x) {
				return true
			}
		}
		return false
	}
	var netErr net.Error
	p := func(k Kind, why, todo string) Problem {
		return Problem{Kind: k, Why: why, Todo: todo, Answered: reply}
	}
	switch {
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return p(KindPoolTimeout, "no free connection in this process's pool in time",
			"this process is overloaded: lower its concurrency, add nodes, or raise the pool size")
	case errors.Is(err, context.Canceled):
		return p(KindCanceled, "the caller gave up before Redis answered", "nothing to do for Redis; the request or the program was cancelled")
	case errors.Is(err, redis.ErrClosed):
		return p(KindClientClosed, "the Redis client is closed", "this process is shutting down; retry on another node")
	case errors.Is(err, syscall.ECONNREFUSED):
		return p(KindRefused, "connection refused", "start redis-server there, or drop --redis to use the embedded one")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return p(KindTimeout, "timeout: no answer in time", "check that Redis is running and not stalled or overloaded, and that nothing blocks the port")
	case errors.Is(err, syscall.ENOENT):
		return p(KindNoSocket, "no such socket", "check the socket path")
	case has("no such host"):
		return p(KindUnknownHost, "unknown host", "check the host name in the URL")
	case code == "OOM" || has("OOM command not allowed"):
		return p(KindOutOfMemory, "out of memory",
			"Redis reached maxmemory and evicts nothing: raise maxmemory, choose an eviction policy (maxmemory-policy), or delete keys")
	case code == "READONLY" || has("READONLY You can't write"):
		return p(KindReadOnly, "read-only replica", "point --redis at the primary, not a replica")
	case code == "NOPERM" || has("NOPERM"):
		return p(KindNoPermission, "permission denied by an ACL", "grant the user the commands and keys ratelab uses (EVAL, EVALSHA, SCRIPT, the prefix's keys)")
	case code == "WRONGPASS" || code == "NOAUTH" || has("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password"):
		return p(KindAuth, "authentication failed", "check the user and password in the URL")
	case has("tls:", "x509"):
		return p(KindTLS, "TLS handshake failed", "use rediss:// only for a server that speaks TLS, and check its certificate")
	case code == "CLUSTERDOWN" || has("CLUSTERDOWN"):
		return p(KindClusterDown, "the cluster is down", "wait for every slot to be served, then retry")
	case has("cluster support disabled"):
		return p(KindNotCluster, "the server is not a cluster", "give one address without redis+cluster://")
	case code == "LOADING" || has("LOADING"):
		return p(KindLoading, "the server is still loading its data", "retry in a moment")
	case code == "BUSY" || has("BUSY Redis is busy"):
		return p(KindBusy, "the server is busy running a script", "wait, or end the script with SCRIPT KILL")
	case code == "MISCONF" || has("MISCONF"):
		return p(KindCannotPersist, "the server cannot persist to disk and refuses writes", "fix the server's disk or its save settings")
	case code == "NOSCRIPT":
		return p(KindNoScript, "script not loaded", "retry; the script is loaded again on the next call")
	case has("can't parse", "HTTP/1."):
		return p(KindProtocol, "the server there does not speak the Redis protocol", "check the host and port: they belong to another kind of server")
	case has("connection reset", "EOF", "broken pipe", "use of closed network connection"):
		return p(KindClosed, "the connection was closed", "check that the address is a Redis server and that it is running")
	case reply:
		why := "Redis answered an error"
		if code != "" {
			why += " (" + code + ")"
		}
		return p(KindOther, why, "see the Redis server's log")
	}
	return p(KindOther, "unexpected error", "check that the address is a Redis server and that it is running")
}

// replyCode is the error code that starts a Redis error reply ("OOM", "READONLY"),
// also when a script's error wraps it; empty when there is none.
func replyCode(msg string) string {
	for _, word := range strings.Fields(msg) {
		w := strings.Trim(word, ":,.")
		if len(w) >= 3 && strings.ToUpper(w) == w && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" && w != "ERR" {
			return w
		}
	}
	return ""
}

// explained is an error from Explain: its message, the sentinel it belongs to, and
// the original error.
type explained struct {
	msg      string
	sentinel error
	cause    error
}

func (e *explained) Error() string   { return e.msg }
func (e *explained) Unwrap() []error { return []error{e.sentinel, e.cause} }

// Explain turns an error from talking to Redis into one line that says what went
// wrong and what to do; where names the server (or the part of ratelab that talked
// to it). A Redis that could not be reached or did not answer wraps ErrUnreachable;
// one that refused the command wraps ErrRefused. Both wrap err too.
func Explain(err error, where string) error {
	if err == nil {
		return nil
	}
	p := Diagnose(err)
	why := p.Why
	if p.Kind == KindOther {
		why = firstLine(err.Error())
	}
	if p.Answered && p.Kind != KindAuth {
		return &explained{msg: fmt.Sprintf("Redis %s refused the command (%s); %s", where, why, p.Todo), sentinel: ErrRefused, cause: err}
	}
	return &explained{msg: fmt.Sprintf("%s %s (%s); %s", ErrUnreachable, where, why, p.Todo), sentinel: ErrUnreachable, cause: err}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
