package redisconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/redistest"
)

func open(t *testing.T, url string) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(context.Background(), url, redisconn.Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func roundTrip(t *testing.T, c *redisconn.Conn) {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.Set(ctx, "redisconn-test:{k}", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET on %s: %v", c.Backend, err)
	}
	if v, err := c.Client.Get(ctx, "redisconn-test:{k}").Result(); err != nil || v != "v" {
		t.Fatalf("GET on %s = %q, %v", c.Backend, v, err)
	}
}

func TestOpenEmbeddedExpiresKeysInRealTime(t *testing.T) {
	c := open(t, "")
	if !c.Embedded || c.Backend != "embedded" || c.Addr() == "" {
		t.Fatalf("Open(\"\") = %+v, want the embedded backend", c)
	}
	roundTrip(t, c)
	ctx := context.Background()
	if err := c.Client.Set(ctx, "short", "v", 150*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Client.Exists(ctx, "short").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 150ms TTL still exists after 5s: the embedded Redis does not age keys")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOpenStandaloneAndUnixSocket(t *testing.T) {
	redistest.RequireServer(t)
	sock := filepath.Join(t.TempDir(), "redis.sock")
	s := redistest.StartServer(t, "--unixsocket", sock)
	c := open(t, "redis://"+s.Addr+"/2")
	if c.Embedded || c.Cluster || c.Backend != "redis://"+s.Addr+"/2" {
		t.Fatalf("Open = %+v", c)
	}
	roundTrip(t, c)
	roundTrip(t, open(t, "unix://"+sock))
}

func TestOpenWithPassword(t *testing.T) {
	redistest.RequireServer(t)
	s := redistest.StartServer(t, "--requirepass", "s3cret")
	_, err := redisconn.Open(context.Background(), "redis://"+s.Addr, redisconn.Options{})
	if !errors.Is(err, redisconn.ErrUnreachable) || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("no password: %v, want an authentication error", err)
	}
	_, err = redisconn.Open(context.Background(), "redis://:wrong@"+s.Addr, redisconn.Options{})
	if err == nil || !strings.Contains(err.Error(), "check the user and password") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v, want advice and no password in the message", err)
	}
	c := open(t, "redis://:s3cret@"+s.Addr)
	if strings.Contains(c.Backend, "s3cret") {
		t.Fatalf("Backend %q shows the password", c.Backend)
	}
	roundTrip(t, c)
}

func TestOpenTLS(t *testing.T) {
	redistest.RequireServer(t)
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	tlsPort := redistest.FreePort(t)
	redistest.StartServer(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", certFile,
		"--tls-key-file", keyFile, "--tls-ca-cert-file", certFile, "--tls-auth-clients", "no")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	roundTrip(t, open(t, "rediss://"+addr+"?skip_verify=true"))
	_, err := redisconn.Open(context.Background(), "rediss://"+addr, redisconn.Options{})
	if !errors.Is(err, redisconn.ErrUnreachable) || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("an untrusted certificate gave %v, want a TLS error", err)
	}
}

func TestOpenCluster(t *testing.T) {
	b := redistest.Cluster(t)
	for _, url := range []string{"redis://" + strings.Join(b.Addrs, ","), "redis+cluster://" + b.Addrs[1]} {
		c := open(t, url)
		if !c.Cluster {
			t.Fatalf("Open(%q) is not a cluster client", url)
		}
		roundTrip(t, c)
		var masters atomic.Int32
		if err := c.ForEachMaster(context.Background(), func(context.Context, *redis.Client) error { masters.Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		if masters.Load() != 3 {
			t.Fatalf("ForEachMaster visited %d masters, want 3", masters.Load())
		}
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"localhost:6379", "http://127.0.0.1:6379", "redis://a:1,b", "unix+cluster://x", "redis://127.0.0.1:notaport"} {
		_, err := redisconn.Open(context.Background(), url, redisconn.Options{DialTimeout: 500 * time.Millisecond})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if !errors.Is(err, redisconn.ErrBadURL) && !errors.Is(err, redisconn.ErrUnreachable) {
			t.Errorf("Open(%q) = %v, want ErrBadURL or ErrUnreachable", url, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q): the error is not one line: %q", url, err)
		}
	}
}

func TestOpenUnreachableSaysWhatToDo(t *testing.T) {
	t.Parallel()
	port := redistest.FreePort(t)
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	_, err := redisconn.Open(context.Background(), url, redisconn.Options{})
	if !errors.Is(err, redisconn.ErrUnreachable) {
		t.Fatalf("Open(%q) = %v, want ErrUnreachable", url, err)
	}
	want := "cannot reach Redis " + url + " (connection refused); start redis-server there, or drop --redis to use the embedded one"
	if err.Error() != want {
		t.Fatalf("error = %q\nwant    %q", err, want)
	}
}

func TestOpenOtherKindOfServer(t *testing.T) {
	t.Parallel()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	url := "redis://" + web.Listener.Addr().String()
	_, err := redisconn.Open(context.Background(), url, redisconn.Options{DialTimeout: time.Second})
	if !errors.Is(err, redisconn.ErrUnreachable) || !strings.Contains(err.Error(), "does not speak the Redis protocol") ||
		strings.Contains(err.Error(), "HTTP/1.1") {
		t.Fatalf("an HTTP server at %s gave %v; want words, not the raw reply", url, err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://u:p@h:1/0":       "redis://u:xxxxx@h:1/0",
		"rediss://:p@h:1":         "rediss://:xxxxx@h:1",
		"redis://h:1":             "redis://h:1",
		"redis://user@h:1":        "redis://user@h:1",
		"redis://u:p@a:1,b:2":     "redis://u:xxxxx@a:1,b:2",
		"redis://u:p@ss@word@h:1": "redis://u:xxxxx@h:1",
	} {
		if got := redisconn.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis://u:s3cr%zzet@127.0.0.1:1",        // the URL parser's error quotes the URL
		"redis://u:s3cret@127.0.0.1:notaport",    // so does go-redis's
		"redis+cluster://u:s3cret@127.0.0.1:1,b", // a seed that is not host:port
		"redis://u:s3cret@127.0.0.1:1",           // connection refused
		"bogus://u:s3cret@127.0.0.1:1",           // not a scheme ratelab knows
	} {
		_, err := redisconn.Open(context.Background(), raw, redisconn.Options{DialTimeout: time.Second})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("Open(%q): the error shows the password: %v", raw, err)
		}
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ratelab test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestProbeDiagnosesRealFaults: the probe, a limiter-shaped write, fails for each
// reason a limiter check fails, and Diagnose names each in words without the
// server's address or user; Explain tells a refusal from an unreachable server.
func TestProbeDiagnosesRealFaults(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	admin := b.Client
	if err := admin.ACLSetUser(ctx, "probe-user", "on", ">pw", "~*", "+@all", "-evalsha", "-eval").Err(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	tests := []struct {
		name    string
		url     string
		fault   func()
		undo    func()
		kind    redisconn.Kind
		why     string
		refused bool
	}{
		{name: "healthy", url: b.URL()},
		{name: "out of memory", url: b.URL(), kind: redisconn.KindOutOfMemory, why: "out of memory", refused: true,
			fault: func() {
				admin.ConfigSet(ctx, "maxmemory-policy", "noeviction")
				admin.Set(ctx, "redisconn-test:{big}", strings.Repeat("x", 4<<20), time.Hour)
				admin.ConfigSet(ctx, "maxmemory", "1mb")
			},
			undo: func() { admin.ConfigSet(ctx, "maxmemory", "0") }},
		{name: "read-only replica", url: b.URL(), kind: redisconn.KindReadOnly, why: "read-only replica", refused: true,
			fault: func() { admin.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(redistest.FreePort(t))) },
			undo:  func() { admin.Do(ctx, "REPLICAOF", "NO", "ONE") }},
		{name: "no permission", url: "redis://probe-user:pw@" + b.Addrs[0], kind: redisconn.KindNoPermission, why: "permission denied by an ACL", refused: true},
		{name: "stalled", url: b.URL(), kind: redisconn.KindTimeout, why: "timeout: no answer in time",
			fault: b.Server.Suspend, undo: b.Server.Resume},
		{name: "refused", url: "redis://" + dead, kind: redisconn.KindRefused, why: "connection refused"},
	}
	for _, tt := range tests {
		if tt.kind == redisconn.KindRefused {
			_, err := redisconn.Open(ctx, tt.url, redisconn.Options{})
			if err == nil || redisconn.Diagnose(err).Kind != redisconn.KindRefused || !errors.Is(err, redisconn.ErrUnreachable) {
				t.Errorf("%s: Open = %v; want a refused connection, ErrUnreachable", tt.name, err)
			}
			continue
		}
		c := open(t, tt.url)
		if tt.fault != nil {
			tt.fault()
		}
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := c.Probe(pctx, "redisconn-test:health:{abc}")
		cancel()
		if tt.undo != nil {
			tt.undo()
		}
		p := redisconn.Diagnose(err)
		if tt.kind == "" {
			if err != nil {
				t.Errorf("%s: Probe = %v; want nil", tt.name, err)
			}
			continue
		}
		if p.Kind != tt.kind || p.Why != tt.why || p.Answered != tt.refused {
			t.Errorf("%s: Diagnose(%v) = %+v; want kind %q, why %q, answered %v", tt.name, err, p, tt.kind, tt.why, tt.refused)
		}
		if strings.Contains(p.Why, "127.0.0.1") || strings.Contains(p.Why, "probe-user") {
			t.Errorf("%s: Why %q names the server or the user", tt.name, p.Why)
		}
		e := redisconn.Explain(err, "at "+c.Backend)
		if sentinel := map[bool]error{true: redisconn.ErrRefused, false: redisconn.ErrUnreachable}[tt.refused]; !errors.Is(e, sentinel) || !strings.Contains(e.Error(), tt.why) {
			t.Errorf("%s: Explain = %v; want %v and %q", tt.name, e, sentinel, tt.why)
		}
	}
}
