package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// slowKeys is the identity provider's HTTP client as seen from the
// middleware: key set fetches take delay (honouring the request's
// context, as a real fetch does) once armed, and started receives a value
// as each begins.
type slowKeys struct {
	armed   atomic.Bool
	delay   time.Duration
	started chan struct{}
}

func (s *slowKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.armed.Load() && strings.HasSuffix(r.URL.Path, "jwks.json") {
		select {
		case s.started <- struct{}{}:
		default:
		}
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A client that sends a token with a trusted issuer and an unknown kid, then
// drops its connection while the key set fetch it triggered runs, must not
// stop the key set from refreshing: the fetch goes on for everyone, and a
// token signed with the identity provider's new key is accepted.
func TestDroppedClientDoesNotStallKeyRotation(t *testing.T) {
	env := tiptest.New(t)
	slow := &slowKeys{delay: 300 * time.Millisecond, started: make(chan struct{}, 1)}
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Verify.HTTPClient = &http.Client{Transport: slow}
		o.Verify.RefreshRateLimit = time.Hour // one refresh for an unknown kid in the whole test
	})
	h := m.Handler(whoAmI(env))
	keyOf(t, env, get(t, h, env.IdP.Token("alice")), "alice") // first fetch

	env.IdP.RotateKeys()
	slow.armed.Store(true)
	forged := env.IdP.Token("mallory", tiptest.WithHeader(map[string]any{"kid": "attacker"}))
	for round := range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+forged)
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- serve(h, r) }()
		if round == 0 {
			<-slow.started // the attacker's request started the one allowed fetch
		} else {
			time.Sleep(20 * time.Millisecond) // joins the fetch under way, or is refused at once
		}
		cancel() // the client drops the connection
		if w := <-done; w.Code == http.StatusOK {
			t.Fatalf("the forged token was accepted: %s", w.Body.String())
		}
	}
	// A valid token signed with the new key: the fetch the attacker started
	// went through and brought the new key.
	eventually(t, "the detached fetch to finish", func() bool { return env.IdP.JWKSRequests() >= 2 })
	keyOf(t, env, get(t, h, env.IdP.Token("bob")), "bob")
}

// A token that can never be exchanged (expired within the leeway, or
// already spent with nothing left to renew) is refused before it takes a
// place among the exchanges in flight or a token of the rate limit: a new
// user's first exchange does not wait behind it.
func TestDoomedTokensDoNotHoldTheExchangeQueue(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Cache.RateLimit = 0.001 // one exchange, then none for 16 minutes
		o.Cache.MaxInFlight = 1
		o.Cache.Timeout = time.Second
	})
	h := m.Handler(whoAmI(env))

	doomed := make([]string, 4)
	for i := range doomed {
		doomed[i] = env.IdP.Token(fmt.Sprintf("doomed%d", i), tiptest.WithLifetime(10*time.Second))
	}
	env.Clock.Advance(20 * time.Second) // expired, but within the 30 s leeway of verification
	var wg sync.WaitGroup
	for range 3 {
		for _, tok := range doomed {
			wg.Go(func() {
				b := refusal(t, get(t, h, tok), http.StatusUnauthorized, "invalid_token")
				if !strings.Contains(b.Description, "fresh token") {
					t.Errorf("description %q does not ask for a fresh token", b.Description)
				}
			})
		}
	}
	wg.Wait()
	if s := m.Stats(); s.Exchanges != 0 || s.InFlight != 0 {
		t.Fatalf("doomed tokens reached the exchange: %+v", s)
	}
	// The one exchange the rate limit allows is the new user's.
	alice := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	keyOf(t, env, get(t, h, alice), "alice")

	// alice's token is spent; once her credentials and identity context
	// expire, it is refused locally too, never queued.
	env.Clock.Advance(pastIDCtxt)
	before := awsCalls(env)
	for range 5 {
		refusal(t, get(t, h, alice), http.StatusUnauthorized, "invalid_token")
	}
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a spent token made AWS calls: %v then %v", before, after)
	}
	if s := m.Stats(); s.Exchanges != 1 || s.Renewals != 0 {
		t.Fatalf("a spent token reached the exchange: %+v", s)
	}
}

// Identities that IAM Identity Center refuses never obtain credentials:
// they must not evict the users who hold some.
func TestRefusedIdentitiesDoNotEvictUsers(t *testing.T) {
	env := tiptest.New(t)
	const maxUsers, held, attackers = 6, 5, 30
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.MaxUsers = maxUsers })
	h := m.Handler(whoAmI(env))
	tokens := make([]string, held)
	for i := range tokens {
		u := fmt.Sprintf("user%d", i)
		tokens[i] = env.IdP.Token(u)
		keyOf(t, env, get(t, h, tokens[i]), u)
	}
	var wg sync.WaitGroup
	for i := range attackers {
		u := fmt.Sprintf("unknown%02d", i)
		env.AWS.RemoveUser(u)
		tok := env.IdP.Token(u)
		wg.Go(func() { refusal(t, get(t, h, tok), http.StatusForbidden, "access_denied") })
	}
	wg.Wait()
	before := awsCalls(env)
	for i, tok := range tokens {
		keyOf(t, env, get(t, h, tok), fmt.Sprintf("user%d", i))
	}
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("users held before the refusals needed AWS calls: %v then %v", before, after)
	}
	if s := m.Stats(); s.Evictions != 0 || s.Users != held {
		t.Fatalf("%d evictions and %d users held, want 0 and %d", s.Evictions, s.Users, held)
	}
}

// An issuer that is not a URL (for instance one holding a NUL, which once
// made two users share an exchange) is refused at New.
func TestIssuerMustBeAURL(t *testing.T) {
	env := tiptest.New(t)
	newMiddleware(t, env, func(o *middleware.Options) {
		o.Issuer, o.Audience = "", nil
		o.Verify.Issuers = []verify.Issuer{{Issuer: env.IdP.Issuer() + "/tenant", JWKSURL: env.IdP.JWKSURL(), Audience: []string{"app"}}}
	})
	for _, iss := range []string{"X\x00p", "tenant-1", "https://idp.example/?t=1", " https://idp.example"} {
		_, err := middleware.New(context.Background(), middleware.Options{
			Verify: verify.Options{Issuers: []verify.Issuer{{Issuer: iss, JWKSURL: env.IdP.JWKSURL(), Audience: []string{"app"}}}},
			Exchange: exchange.Options{ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn,
				ApplicationRoleArn: env.ApplicationRoleArn, Config: env.Config()},
		})
		if !errors.Is(err, verify.ErrConfig) {
			t.Errorf("New with the issuer %q: %v, want verify.ErrConfig", iss, err)
		}
	}
}

// A configuration without a region fails at New, not in every handler.
func TestRegionRequired(t *testing.T) {
	env := tiptest.New(t)
	xo := exchange.Options{ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn, Config: env.Config()}
	xo.Config.Region = ""
	_, err := middleware.New(context.Background(), middleware.Options{Issuer: env.IdP.Issuer(), Audience: []string{"app"}, Exchange: xo})
	if !errors.Is(err, middleware.ErrConfig) {
		t.Fatalf("New without any region: %v, want ErrConfig", err)
	}
	// The region of IAM Identity Center serves the handlers too.
	m := newMiddleware(t, env, func(o *middleware.Options) { o.AWSConfig = aws.Config{} })
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, _ := ctxcreds.Config(r.Context())
		_, _ = io.WriteString(w, cfg.Region)
	}))
	if w := get(t, h, env.IdP.Token("alice")); w.Code != http.StatusOK || w.Body.String() != env.Config().Region {
		t.Fatalf("%d %q, want the region of Exchange.Config", w.Code, w.Body.String())
	}
}
