package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkTimeout bounds Check when its context has no deadline.
const checkTimeout = 5 * time.Second

// Check tells whether s can work with its Redis: the client reaches Redis
// at its address (over TLS when the client has a TLSConfig), Redis accepts
// the client's credentials, and they allow every command the store sends
// (GET, SET, DEL, STRLEN, EVAL and EVALSHA, on keys that begin with the
// prefix). It writes, reads and deletes one key of its own,
// <prefix>:check:{<random>}, which expires within seconds if Check is
// interrupted.
//
// Call it once at start. A Store that cannot work with Redis is otherwise
// silent: every call fails, each replica works alone (users are still
// served), and the fleet never shares. The error names the likely cause
// (address, TLS, credentials, permissions) and wraps go-redis's; it never
// holds a password. ctx bounds the whole check, 5 seconds when it has no
// deadline: Options.Timeout, which bounds each call of a running store,
// does not apply.
func (s *Store) Check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	name := s.names.Prefix + ":check:{" + randomHex() + "}"
	value := randomHex()
	const ttl = 10_000 // milliseconds
	steps := []struct {
		what string
		run  func() error
	}{
		{"EVAL (SET NX)", func() error { return wantInt(setOwnScript.Eval(ctx, s.client, []string{name}, value, ttl), 1) }},
		{"EVALSHA (GET)", func() error { return wantInt(setOwnScript.EvalSha(ctx, s.client, []string{name}, value, ttl), 1) }},
		{"EVAL (STRLEN, GET)", func() error {
			return loadScript.Eval(ctx, s.client, []string{name}, MaxSealedSize).Err()
		}},
		{"SET", func() error { return s.client.Set(ctx, name, value, ttl*time.Millisecond).Err() }},
		{"EVAL (GET, DEL)", func() error { return wantInt(deleteOwnScript.Eval(ctx, s.client, []string{name}, value), 1) }},
		{"DEL", func() error { return s.client.Del(ctx, name).Err() }},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			return s.explain(step.what, err)
		}
	}
	return nil
}

// wantInt returns cmd's error, or an error when its result is not want.
func wantInt(cmd *redis.Cmd, want int64) error {
	n, err := cmd.Int64()
	if err == nil && n != want {
		err = fmt.Errorf("the script returned %d, not %d: this server does not run it as Redis does", n, want)
	}
	return err
}

// explain wraps err, the failure of the step what of Check, with its
// likely cause.
func (s *Store) explain(what string, err error) error {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	usesTLS := s.usesTLS()
	cause := ""
	switch {
	case errors.As(err, &dnsErr):
		cause = "cannot resolve the address of Redis: check its host name"
	case errors.As(err, &recErr):
		cause = "the client uses TLS (TLSConfig is set) and the server at this address does not: remove TLSConfig, or use the server's TLS endpoint"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host):
		cause = "TLS: the server's certificate was not accepted (TLSConfig's RootCAs and ServerName)"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		cause = "cannot connect to Redis: check the address and port, that Redis runs, and that the network lets this host reach it"
	case redis.IsAuthError(err) || redis.HasErrorPrefix(err, "ERR invalid password") || redis.HasErrorPrefix(err, "ERR AUTH"):
		cause = "Redis refused the client's credentials (Username and Password, or CredentialsProvider)"
	case redis.IsPermissionError(err) || strings.Contains(err.Error(), "can't run this command"):
		cause = "the Redis user may not run a command, or use a key, that the store needs: it runs GET, SET, DEL, STRLEN, EVAL and EVALSHA on keys matching " + s.names.Prefix + ":*"
	case redis.HasErrorPrefix(err, "READONLY"):
		cause = "the address is a read-only replica: use the primary endpoint"
	case redis.IsOOMError(err):
		cause = "Redis is out of memory (maxmemory): the store cannot write"
	case errors.Is(err, context.DeadlineExceeded) && usesTLS && s.answersPlain():
		cause = "the client uses TLS (TLSConfig is set) and the server at this address answers without TLS: remove TLSConfig, or use the server's TLS endpoint"
	case errors.Is(err, context.DeadlineExceeded) && usesTLS:
		cause = "no answer from Redis in time: the client uses TLS (TLSConfig is set), and a server without TLS leaves the handshake waiting like this; otherwise the address drops packets, or Redis is overloaded"
	case errors.Is(err, context.DeadlineExceeded):
		cause = "no answer from Redis in time: the address drops packets (a firewall, a security group), or Redis is overloaded"
	case !usesTLS && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		cause = "Redis closed the connection: if it requires TLS (ElastiCache with encryption in transit, serverless caches), set TLSConfig"
	default:
		cause = "Redis refused a command the store needs"
	}
	return fmt.Errorf("redisstore: Check: %s at %s failed: %s: %w", what, s.addrs(), cause, err)
}

// answersPlain reports whether the address of s's client (a single node)
// answers a PING sent without TLS: a Redis without TLS does.
func (s *Store) answersPlain() bool {
	c, ok := s.client.(*redis.Client)
	if !ok {
		return false
	}
	conn, err := net.DialTimeout("tcp", c.Options().Addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return false
	}
	var b [1]byte
	_, err = io.ReadFull(conn, b[:])
	return err == nil && (b[0] == '+' || b[0] == '-') // +PONG, or -NOAUTH...
}

// usesTLS reports whether s's client connects over TLS.
func (s *Store) usesTLS() bool {
	switch c := s.client.(type) {
	case *redis.Client:
		return c.Options().TLSConfig != nil
	case *redis.ClusterClient:
		return c.Options().TLSConfig != nil
	case *redis.Ring:
		return c.Options().TLSConfig != nil
	}
	return false
}

// addrs returns the addresses of s's client.
func (s *Store) addrs() string {
	switch c := s.client.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return strings.Join(c.Options().Addrs, ",")
	case *redis.Ring:
		return strings.Join(slices.Sorted(maps.Values(c.Options().Addrs)), ",")
	}
	return "the client's address"
}

// randomHex returns 16 random bytes in hex.
func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
