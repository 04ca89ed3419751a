package redisstore_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/redisstore"
)

// checkOf returns the error of Check of a store on a client with o, after
// the client options README recommends.
func checkOf(t *testing.T, o redis.UniversalOptions) error {
	t.Helper()
	o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
	c := redis.NewUniversalClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return newStore(t, c, redisstore.Options{}).Check(ctx)
}

// wantCheckError fails t unless err names the cause (every one of words)
// and holds none of secrets.
func wantCheckError(t *testing.T, what string, err error, words []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: Check passed", what)
	}
	t.Logf("%s: %v", what, err)
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: Check's error %q does not say %q", what, err, w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s: Check's error %q holds a secret", what, err)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.store.Check(context.Background()); err != nil {
		t.Fatalf("Check of a working store: %v", err)
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("Check left keys %q", keys)
	}
	if st := f.store.Stats(); st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

// A closed port: the error names the connection and the address.
func TestCheckClosedPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	wantCheckError(t, "a closed port", checkOf(t, redis.UniversalOptions{Addrs: []string{addr}}), []string{"cannot connect", addr})
}

// README's client (TLSConfig set) against a Redis without TLS.
func TestCheckTLSMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	err := checkOf(t, redis.UniversalOptions{Addrs: []string{f.server.Addr()}, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	wantCheckError(t, "a TLS client against a server without TLS", err, []string{"TLS", f.server.Addr()})
}

// Wrong or missing credentials: the error says so, without the password.
func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const password, wrong = "the-right-password", "a-wrong-password"
	if err := f.client.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	addr := []string{f.server.Addr()}
	wantCheckError(t, "a wrong password", checkOf(t, redis.UniversalOptions{Addrs: addr, Password: wrong}), []string{"credentials"}, wrong, password)
	wantCheckError(t, "no password", checkOf(t, redis.UniversalOptions{Addrs: addr}), []string{"credentials"}, password)
	wantCheckError(t, "an unknown user", checkOf(t, redis.UniversalOptions{Addrs: addr, Username: "nobody", Password: password}), []string{"credentials"}, password)
	if err := checkOf(t, redis.UniversalOptions{Addrs: addr, Password: password}); err != nil {
		t.Fatalf("the right password: %v", err)
	}
}

// An ACL user: the permissions SECURITY.md recommends pass; without one
// of the commands, or limited to other keys, the error says what the
// store needs.
func TestCheckPermissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	user := func(name string, rules ...string) {
		t.Helper()
		args := []any{"ACL", "SETUSER", name, "on", ">pw-" + name}
		for _, r := range rules {
			args = append(args, r)
		}
		if err := f.client.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("ACL SETUSER: %v", err)
		}
	}
	user("tipkit", "~tipkit:*", "+get", "+set", "+del", "+strlen", "+evalsha", "+eval")
	user("nostrlen", "~tipkit:*", "+get", "+set", "+del", "+evalsha", "+eval")
	user("nosha", "~tipkit:*", "+get", "+set", "+del", "+strlen", "+eval")
	user("otherkeys", "~other:*", "+get", "+set", "+del", "+strlen", "+evalsha", "+eval")
	addr := []string{f.server.Addr()}
	if err := checkOf(t, redis.UniversalOptions{Addrs: addr, Username: "tipkit", Password: "pw-tipkit"}); err != nil {
		t.Fatalf("the recommended ACL: %v", err)
	}
	for _, name := range []string{"nostrlen", "nosha", "otherkeys"} {
		err := checkOf(t, redis.UniversalOptions{Addrs: addr, Username: name, Password: "pw-" + name})
		wantCheckError(t, name, err, []string{"may not run", "STRLEN", "tipkit:*"}, "pw-"+name)
	}
}
