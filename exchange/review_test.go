package exchange_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

// A Cache renews every user with that user's own tokens: an Exchanger
// with a WebTokenProvider (one identity's tokens) is refused, and a
// session that names another user than the key it was asked for is never
// handed out under that key.
func TestCacheNeverServesAnotherIdentity(t *testing.T) {
	env := tiptest.New(t)
	carol := func(context.Context) (string, error) { return env.IdP.Token("carol"), nil }
	x := newExchanger(t, env, true, func(o *exchange.Options) { o.WebTokenProvider = carol })
	if _, err := exchange.NewCache(x, exchange.CacheOptions{}); !errors.Is(err, exchange.ErrConfig) || !strings.Contains(err.Error(), "WebTokenProvider") {
		t.Fatalf("NewCache with a WebTokenProvider: %v, want ErrConfig naming WebTokenProvider", err)
	}

	c := newCache(t, env, newExchanger(t, env, true))
	p, _, err := c.Credentials(context.Background(), key(env, "bob"), env.IdP.Token("alice"))
	if err == nil {
		user, _ := owner(t, env, p)
		t.Fatalf("bob's key was handed the credentials of %q", user)
	}
	if !errors.Is(err, exchange.ErrConfig) {
		t.Fatalf("bob's key with alice's token: %v, want ErrConfig", err)
	}
	// Bob's own token then serves bob.
	p, _, err = c.Credentials(context.Background(), key(env, "bob"), env.IdP.Token("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if user, _ := owner(t, env, p); user != "bob" {
		t.Fatalf("bob was handed the credentials of %q", user)
	}
}

// A throttled call is sent at most MaxAttempts times in all: the SDK's
// retryer is the one retry layer, and it retries SlowDownException.
func TestThrottledCallsMakeAtMostMaxAttempts(t *testing.T) {
	for _, tc := range []struct{ op, code string }{
		{"AssumeRole", "Throttling"},
		{"CreateTokenWithIAM", "SlowDownException"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			env := tiptest.New(t)
			x := newExchanger(t, env, false)
			env.AWS.SetFault(tc.op, tiptest.Fault{Code: tc.code})
			_, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
			if !errors.Is(err, exchange.ErrUnavailable) {
				t.Fatalf("Exchange: %v, want ErrUnavailable", err)
			}
			const maxAttempts = 4 // the default of exchange.Options.MaxAttempts
			if n := env.AWS.Calls(tc.op); n != maxAttempts {
				t.Fatalf("%d %s calls for one throttled exchange, want MaxAttempts (%d)", n, tc.op, maxAttempts)
			}
		})
	}
}

// After Close returns, nothing runs: a flight that a request led and gave
// up on has ended, and no flight starts.
func TestCacheCloseIsFinal(t *testing.T) {
	env := tiptest.New(t)
	c, err := exchange.NewCache(newExchanger(t, env, true), exchange.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Credentials(ctx, key(env, "alice"), env.IdP.Token("alice"))
		done <- err
	}()
	eventually(t, "alice's flight", func() bool { return c.Stats().InFlight != 0 })
	cancel() // the request gives up; its flight goes on
	if err := <-done; !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("the request that gave up: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().InFlight; n != 0 {
		t.Fatalf("%d flights still under way after Close returned", n)
	}
	before := calls(env)
	if _, _, err := c.Credentials(context.Background(), key(env, "bob"), env.IdP.Token("bob")); !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("a miss after Close: %v, want ErrUnavailable", err)
	}
	if after := calls(env); after["CreateTokenWithIAM"] != before["CreateTokenWithIAM"] || after["AssumeRole"] != before["AssumeRole"] {
		t.Fatalf("AWS calls after Close: %v, then %v", before, after)
	}
	// Alice's flight finished before Close returned: her credentials serve.
	if _, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice")); err != nil {
		t.Fatalf("alice's credentials after Close: %v", err)
	}
}

// The user hash of RoleSessionName (and logs) is keyed by HashKey: the same
// on two Exchangers with the same key, and not the unkeyed SHA-256 that a
// list of candidate users would reverse.
func TestUserHashIsKeyed(t *testing.T) {
	env := tiptest.New(t)
	key1 := []byte(strings.Repeat("k", 32))
	sessionName := func(hashKey []byte) string {
		t.Helper()
		x := newExchanger(t, env, true, func(o *exchange.Options) { o.HashKey = hashKey })
		s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := env.Config()
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return s.Credentials, nil })
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		arn := aws.ToString(out.Arn)
		name := arn[strings.LastIndexByte(arn, '/')+1:]
		if want := "tipkit-" + x.UserHash(exchange.UserKey{Issuer: env.IdP.Issuer(), Subject: "alice"}); name != want {
			t.Fatalf("session name %q, want %q", name, want)
		}
		return name
	}
	iss := env.IdP.Issuer()
	n := len(iss)
	sum := sha256.Sum256([]byte(string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}) + iss + "alice"))
	unkeyed := "tipkit-" + hex.EncodeToString(sum[:12])

	if got := sessionName(nil); got != unkeyed {
		t.Fatalf("without HashKey: %q, want the unkeyed pseudonym %q", got, unkeyed)
	}
	a, b := sessionName(key1), sessionName(key1)
	if a != b {
		t.Fatalf("two replicas with one HashKey name alice %q and %q", a, b)
	}
	if a == unkeyed {
		t.Fatal("with HashKey the session name is still the unkeyed hash")
	}
	if c := sessionName([]byte(strings.Repeat("j", 32))); c == a {
		t.Fatal("two HashKeys give one name")
	}
	if _, err := exchange.New(func() exchange.Options {
		o := options(env, true)
		o.HashKey = []byte("short")
		return o
	}()); !errors.Is(err, exchange.ErrConfig) {
		t.Fatalf("a short HashKey: %v, want ErrConfig", err)
	}
}

// stuckOIDC is an SSO OIDC client whose calls ignore their context until
// released, as a call on a connection that went dead while a Lambda
// instance was frozen may.
type stuckOIDC struct {
	exchange.SSOOIDCClient
	entered chan struct{}
	release chan struct{}
}

func (s *stuckOIDC) CreateTokenWithIAM(ctx context.Context, in *ssooidc.CreateTokenWithIAMInput, optFns ...func(*ssooidc.Options)) (*ssooidc.CreateTokenWithIAMOutput, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.SSOOIDCClient.CreateTokenWithIAM(ctx, in, optFns...)
}

// Close waits for a flight stuck in a call that ignores its context no
// longer than the flight's callers do: it returns, and the stuck flight's
// later AWS calls are not sent once its context is past its deadline.
func TestCacheCloseLeavesAStuckFlight(t *testing.T) {
	env := tiptest.New(t)
	stuck := &stuckOIDC{SSOOIDCClient: ssooidc.NewFromConfig(env.Config()), entered: make(chan struct{}, 1), release: make(chan struct{})}
	var once sync.Once
	unstick := func() { once.Do(func() { close(stuck.release) }) }
	t.Cleanup(unstick)
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.SSOOIDCClient = stuck })
	c, err := exchange.NewCache(x, exchange.CacheOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice"))
		answered <- err
	}()
	<-stuck.entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close still waiting for a stuck flight after a minute (Timeout 200ms)")
	}
	if err := <-answered; !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("the request behind the stuck flight: %v, want ErrUnavailable", err)
	}
	if c.Stats().InFlight != 1 {
		t.Fatalf("%d flights under way, want the stuck one", c.Stats().InFlight)
	}
	// Released after its deadline, the flight sends nothing more: the
	// CreateTokenWithIAM it was stuck in goes out on a context past its
	// deadline, and no AssumeRole follows.
	unstick()
	eventually(t, "the stuck flight to end", func() bool { return c.Stats().InFlight == 0 })
	if n := env.AWS.Calls("AssumeRole"); n != 0 {
		t.Fatalf("%d AssumeRole calls after Close, want 0", n)
	}
}
