package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

func newCache(t *testing.T, env *tiptest.Env, x *exchange.Exchanger, edit ...func(*exchange.CacheOptions)) *exchange.Cache {
	t.Helper()
	o := exchange.CacheOptions{}
	for _, f := range edit {
		f(&o)
	}
	c, err := exchange.NewCache(x, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// owner returns the user tiptest issued p's current credentials for.
func owner(t *testing.T, env *tiptest.Env, p aws.CredentialsProvider) (string, aws.Credentials) {
	t.Helper()
	creds, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	user, _ := env.AWS.UserFor(creds.AccessKeyID)
	return user, creds
}

func key(env *tiptest.Env, user string) exchange.UserKey {
	return exchange.UserKey{Issuer: env.IdP.Issuer(), Subject: user}
}

func TestCacheHerd(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, true)
	c := newCache(t, env, x)
	const users, perUser = 100, 10
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = env.IdP.Token(fmt.Sprintf("user%03d", i))
	}
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for i := range users * perUser {
		u := i % users
		wg.Go(func() {
			name := fmt.Sprintf("user%03d", u)
			cfg, _, err := c.Credentials(context.Background(), key(env, name), tokens[u])
			if err != nil {
				t.Errorf("Get(%s): %v", name, err)
				return
			}
			if got, _ := owner(t, env, cfg); got != name {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d requests received another user's credentials", wrong.Load())
	}
	wantCalls(t, env, 1, users, users)
	st := c.Stats()
	if st.Exchanges != users || st.Requests != users*perUser {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheCancelledCallerDoesNotFailOthers(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	c := newCache(t, env, newExchanger(t, env, false))
	tok := env.IdP.Token("alice")
	impatient, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := c.Credentials(impatient, key(env, "alice"), tok); errc <- err }()
	eventually(t, "the impatient caller's AssumeRole", func() bool { return env.AWS.Calls("AssumeRole") != 0 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("the cancelled caller got %v", err)
	}
	cfg, _, err := c.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatalf("the other caller failed: %v", err)
	}
	if got, _ := owner(t, env, cfg); got != "alice" {
		t.Fatalf("credentials of %q", got)
	}
	wantCalls(t, env, 0, 1, 1)
}

func TestCacheRefreshesAheadInBackground(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	tok := env.IdP.Token("alice")
	cfg, _, err := c.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, first := owner(t, env, cfg)

	env.Clock.Advance(11 * time.Minute) // inside the 5-minute window of 15-minute credentials
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 200 * time.Millisecond, Times: 1})
	cfg, info, err := c.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Expires.Equal(first.Expires) {
		t.Fatal("the request inside the window waited for the renewal instead of being served the valid credentials")
	}
	settle(t, c) // the background renewal ends
	_, renewed := owner(t, env, cfg)
	if renewed.AccessKeyID == first.AccessKeyID || !renewed.Expires.After(first.Expires) {
		t.Fatal("the background renewal did not replace the credentials")
	}
	// The renewed session is still the same Identity Center user's.
	_, info, err = c.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil || !info.Expires.Equal(renewed.Expires) ||
		info.UserID != env.AWS.UserID("alice") || info.IdentityStoreID != env.AWS.IdentityStoreID() {
		t.Fatalf("after the renewal: %+v, %v; want the credentials of user %s of %s", info, err, env.AWS.UserID("alice"), env.AWS.IdentityStoreID())
	}
	if st := c.Stats(); st.BackgroundRefreshes != 1 || st.Renewals != 1 {
		t.Fatalf("stats %+v", st)
	}
	wantCalls(t, env, 0, 1, 2) // renewed with the identity context: no new exchange
}

func TestCacheIdleUsersAreNotRefreshed(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	if _, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice")); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(11 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	wantCalls(t, env, 0, 1, 1)
}

func TestCacheLRUBound(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false), func(o *exchange.CacheOptions) { o.MaxUsers = 10 })
	for i := range 25 {
		name := fmt.Sprintf("u%d", i)
		if _, _, err := c.Credentials(context.Background(), key(env, name), env.IdP.Token(name)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Stats().Users != 10 || c.Stats().Evictions != 15 {
		t.Fatalf("%d users held, %d evictions; want 10 and 15", c.Stats().Users, c.Stats().Evictions)
	}
}

func TestCacheRemembersRefusal(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.RemoveUser("mallory")
	c := newCache(t, env, newExchanger(t, env, false))
	tok := env.IdP.Token("mallory")
	for range 5 {
		_, _, err := c.Credentials(context.Background(), key(env, "mallory"), tok)
		if !errors.Is(err, exchange.ErrRefused) {
			t.Fatalf("Get for a refused user = %v", err)
		}
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 1 {
		t.Fatalf("%d calls for a refused token within the negative TTL, want 1", n)
	}
	env.AWS.AddUser("mallory")
	env.Clock.Advance(30*time.Second /* RefusedTTL default */ + time.Second)
	if _, _, err := c.Credentials(context.Background(), key(env, "mallory"), env.IdP.Token("mallory")); err != nil {
		t.Fatalf("after the TTL, with the user restored: %v", err)
	}
}

func TestCacheExpiredWithNothingToRenew(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	if _, _, err := c.Credentials(context.Background(), key(env, "alice"), tok); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(2 * time.Hour) // credentials and identity context expired; the token is spent
	_, _, err := c.Credentials(context.Background(), key(env, "alice"), tok)
	if !errors.Is(err, exchange.ErrReauthenticate) {
		t.Fatalf("Get with only a spent token = %v, want ErrReauthenticate", err)
	}
	cfg, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice"))
	if err != nil {
		t.Fatalf("with a fresh token: %v", err)
	}
	if got, _ := owner(t, env, cfg); got != "alice" {
		t.Fatalf("credentials of %q", got)
	}
}

func TestCacheConfigWorksInLongHandler(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	creds, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.Config()
	cfg.Credentials = creds
	client := sts.NewFromConfig(cfg)
	for range 3 { // a handler streaming for 45 minutes
		env.Clock.Advance(15 * time.Minute)
		if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("GetCallerIdentity after %v: %v", env.Clock.Now(), err)
		}
	}
	wantCalls(t, env, 0, 1, 4)
}

// countingSTS wraps a real STS client and records the most AssumeRole calls
// in flight at once.
type countingSTS struct {
	exchange.STSClient
	now, peak atomic.Int32
}

func (c *countingSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, opts ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return c.STSClient.AssumeRole(ctx, in, opts...)
}

func TestCacheBoundsExchangesInFlight(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 20 * time.Millisecond})
	counting := &countingSTS{STSClient: sts.NewFromConfig(env.Config())}
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.STSClient = counting })
	c := newCache(t, env, x, func(o *exchange.CacheOptions) { o.MaxInFlight = 3 })
	var wg sync.WaitGroup
	for i := range 12 {
		name := fmt.Sprintf("u%d", i)
		tok := env.IdP.Token(name)
		wg.Go(func() {
			if _, _, err := c.Credentials(context.Background(), key(env, name), tok); err != nil {
				t.Errorf("Get: %v", err)
			}
		})
	}
	wg.Wait()
	if p := counting.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("%d AssumeRole calls in flight at once, bound 3", p)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	k, tok := key(env, "alice"), env.IdP.Token("alice")
	if _, _, err := c.Credentials(context.Background(), k, tok); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _, _ = c.Credentials(ctx, k, tok) }); n != 0 {
		t.Fatalf("a cache hit allocates %v times", n)
	}
}

func TestNewCacheValidation(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, false)
	for name, o := range map[string]exchange.CacheOptions{
		"negative bound":          {MaxUsers: -1},
		"window as long as creds": {BackgroundRefreshWindow: exchange.DefaultDuration},
		"negative refused TTL":    {RefusedTTL: -time.Second},
	} {
		if _, err := exchange.NewCache(x, o); !errors.Is(err, exchange.ErrConfig) {
			t.Errorf("%s: NewCache = %v, want ErrConfig", name, err)
		}
	}
	if _, err := exchange.NewCache(nil, exchange.CacheOptions{}); !errors.Is(err, exchange.ErrConfig) {
		t.Errorf("NewCache(nil) = %v", err)
	}
}

// IAM Identity Center's refusal is remembered for the token it refused: the
// same token is answered from memory, a fresh token of the user is tried
// at once. STS's refusal of the user stays per user.
func TestCacheRefusalIsPerToken(t *testing.T) {
	env := tiptest.New(t)
	c := newCache(t, env, newExchanger(t, env, false))
	env.AWS.RemoveUser("alice")
	spent := env.IdP.Token("alice")
	for range 3 {
		if _, _, err := c.Credentials(context.Background(), key(env, "alice"), spent); !errors.Is(err, exchange.ErrRefused) {
			t.Fatalf("a refused token: %v", err)
		}
	}
	wantCalls(t, env, 0, 1, 0)
	env.AWS.AddUser("alice") // the user is set up now; her client brings a fresh token
	creds, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice"))
	if err != nil {
		t.Fatalf("a fresh token after a refusal: %v", err)
	}
	if got, _ := owner(t, env, creds); got != "alice" {
		t.Fatalf("credentials of %q", got)
	}

	env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "AccessDenied"})
	for _, tok := range []string{env.IdP.Token("bob"), env.IdP.Token("bob")} {
		if _, _, err := c.Credentials(context.Background(), key(env, "bob"), tok); !errors.Is(err, exchange.ErrRefused) {
			t.Fatalf("STS refusing bob: %v", err)
		}
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 3 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 3: STS's refusal of bob is remembered for bob, not per token", n)
	}
}

// settle waits until c has no exchange or renewal under way.
func settle(t testing.TB, c *exchange.Cache) {
	t.Helper()
	eventually(t, "no exchange or renewal under way", func() bool { return c.Stats().InFlight == 0 })
}

// eventually polls cond until it holds, failing t after 10 s: the one
// wait of these tests for what the code under test does on goroutines of
// its own.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
