package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	ssooidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

// Both ways to sign the exchange: the server's own clients, or the
// application role assumed with the user's token.
var modes = []struct {
	name    string
	appRole bool
}{{"server clients", false}, {"application role", true}}

// options returns exchange options for env in the given mode, with the
// exchange's clock following env's.
func options(env *tiptest.Env, appRole bool) exchange.Options {
	o := exchange.Options{
		ApplicationArn: env.ApplicationArn,
		AccessRoleArn:  env.AccessRoleArn,
		Config:         env.Config(),
		Now:            env.Clock.Now,
	}
	if appRole {
		o.ApplicationRoleArn = env.ApplicationRoleArn
		o.Config.Credentials = nil // the application role signs; the server has no keys
	} else {
		o.SSOOIDCClient = ssooidc.NewFromConfig(env.Config())
		o.STSClient = sts.NewFromConfig(env.Config())
	}
	return o
}

func newExchanger(t *testing.T, env *tiptest.Env, appRole bool, edit ...func(*exchange.Options)) *exchange.Exchanger {
	t.Helper()
	o := options(env, appRole)
	for _, f := range edit {
		f(&o)
	}
	x, err := exchange.New(o)
	if err != nil {
		t.Fatalf("exchange.New: %v", err)
	}
	return x
}

// calls returns the counters of the exchange's operations.
func calls(env *tiptest.Env) map[string]int {
	m := map[string]int{}
	for _, op := range []string{"AssumeRoleWithWebIdentity", "CreateTokenWithIAM", "AssumeRole"} {
		m[op] = env.AWS.Calls(op)
	}
	return m
}

func wantCalls(t *testing.T, env *tiptest.Env, web, create, assume int) {
	t.Helper()
	got := calls(env)
	want := map[string]int{"AssumeRoleWithWebIdentity": web, "CreateTokenWithIAM": create, "AssumeRole": assume}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s called %d times, want %d (all: %v)", op, got[op], n, got)
		}
	}
}

// wantUser checks that tiptest issued creds for user and that they are
// not expired by env's clock.
func wantUser(t *testing.T, env *tiptest.Env, creds aws.Credentials, user string) {
	t.Helper()
	got, ok := env.AWS.UserFor(creds.AccessKeyID)
	if !ok || got != user {
		t.Fatalf("credentials belong to %q (known: %v), want %q", got, ok, user)
	}
	if !creds.CanExpire || !env.Clock.Now().Before(creds.Expires) {
		t.Fatalf("credentials expire at %v, now %v", creds.Expires, env.Clock.Now())
	}
}

// wantIDs checks that s names user by the IDs of IAM Identity Center, as
// its idToken told them.
func wantIDs(t *testing.T, env *tiptest.Env, s *exchange.Session, user string) {
	t.Helper()
	if s.UserID != env.AWS.UserID(user) || s.IdentityStoreID != env.AWS.IdentityStoreID() {
		t.Fatalf("session of Identity Center user %q of %q, want %q of %q", s.UserID, s.IdentityStoreID, env.AWS.UserID(user), env.AWS.IdentityStoreID())
	}
}

func TestExchangeTwoUsers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := tiptest.New(t)
			x := newExchanger(t, env, m.appRole)
			ctx := context.Background()
			alice, err := x.Exchange(ctx, env.IdP.Token("alice"))
			if err != nil {
				t.Fatalf("Exchange(alice): %v", err)
			}
			bob, err := x.Exchange(ctx, env.IdP.Token("bob"))
			if err != nil {
				t.Fatalf("Exchange(bob): %v", err)
			}
			wantUser(t, env, alice.Credentials, "alice")
			wantUser(t, env, bob.Credentials, "bob")
			if alice.Subject != "alice" || alice.Issuer != env.IdP.Issuer() {
				t.Errorf("session names %q of %q", alice.Subject, alice.Issuer)
			}
			wantIDs(t, env, alice, "alice")
			wantIDs(t, env, bob, "bob")
			if got := alice.Expires().Sub(env.Clock.Now()); got > exchange.DefaultDuration || got < exchange.DefaultDuration-time.Minute {
				t.Errorf("credentials last %v, want about %v", got, exchange.DefaultDuration)
			}
			boot := 0
			if m.appRole {
				boot = 1 // one application-role session serves both users
			}
			wantCalls(t, env, boot, 2, 2)
			if ua := env.AWS.LastUserAgent("AssumeRole"); !strings.Contains(ua, "p/tipkit#") {
				t.Errorf("AssumeRole user agent %q lacks %q", ua, "p/tipkit#")
			}
			if ua := env.AWS.LastUserAgent("CreateTokenWithIAM"); !strings.Contains(ua, "p/tipkit#") {
				t.Errorf("CreateTokenWithIAM user agent %q lacks %q", ua, "p/tipkit#")
			}
		})
	}
}

func TestCredentialsWorkAsTheUser(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, true)
	s, err := x.Exchange(context.Background(), env.IdP.Token("carol"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.Config()
	cfg.Credentials = aws.NewCredentialsCache(staticProvider(s.Credentials))
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the user's credentials: %v", err)
	}
	if !strings.Contains(aws.ToString(out.Arn), "assumed-role/") {
		t.Fatalf("caller %q is not a role session", aws.ToString(out.Arn))
	}
}

type staticProvider aws.Credentials

func (p staticProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(p), nil
}

func TestTokenIsNeverExchangedTwice(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, false)
	tok := env.IdP.Token("alice")
	if _, err := x.Exchange(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	_, err := x.Exchange(context.Background(), tok)
	if !errors.Is(err, exchange.ErrReauthenticate) {
		t.Fatalf("second exchange of one token = %v, want ErrReauthenticate", err)
	}
	wantCalls(t, env, 0, 1, 1) // refused locally: Identity Center never saw it twice

	// A second Exchanger (another server) has no memory of it: Identity
	// Center itself refuses the jti it has seen.
	y := newExchanger(t, env, false)
	_, err = y.Exchange(context.Background(), tok)
	var grant *ssooidctypes.InvalidGrantException
	if !errors.Is(err, exchange.ErrRefused) || !errors.As(err, &grant) {
		t.Fatalf("replay at Identity Center = %v, want ErrRefused wrapping InvalidGrantException", err)
	}
}

func TestRenewReusesIdentityContext(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := tiptest.New(t)
			x := newExchanger(t, env, m.appRole)
			s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
			if err != nil {
				t.Fatal(err)
			}
			env.Clock.Advance(14 * time.Minute)
			before := calls(env)
			ns, err := x.Renew(context.Background(), s, "")
			if err != nil {
				t.Fatalf("Renew: %v", err)
			}
			wantUser(t, env, ns.Credentials, "alice")
			if ns.Credentials.AccessKeyID == s.Credentials.AccessKeyID {
				t.Fatal("Renew returned the same credentials")
			}
			wantCalls(t, env, before["AssumeRoleWithWebIdentity"], before["CreateTokenWithIAM"], before["AssumeRole"]+1)
			if ns.IdentityContext != s.IdentityContext {
				t.Fatal("the identity context changed without an exchange")
			}
			wantIDs(t, env, ns, "alice")
		})
	}
}

func TestRenewWithRefreshToken(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	x := newExchanger(t, env, false)
	s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if s.RefreshToken == "" {
		t.Fatal("no refresh token from an application with the refresh grant")
	}
	env.Clock.Advance(2 * time.Hour) // identity context and user token expired
	ns, err := x.Renew(context.Background(), s, "")
	if err != nil {
		t.Fatalf("Renew with the refresh grant: %v", err)
	}
	wantUser(t, env, ns.Credentials, "alice")
	wantCalls(t, env, 0, 2, 2)
	if ns.RefreshToken == "" || ns.RefreshToken == s.RefreshToken {
		t.Fatal("the rotated refresh token was not kept")
	}
	if !ns.ContextExpires.After(env.Clock.Now()) {
		t.Fatal("the new identity context is already expired")
	}
	wantIDs(t, env, ns, "alice")
	// The spent refresh token is refused; the current one still works.
	if _, err := x.Renew(context.Background(), &exchange.Session{RefreshToken: s.RefreshToken}, ""); !errors.Is(err, exchange.ErrReauthenticate) {
		t.Fatalf("renewal with a rotated-out refresh token = %v, want ErrReauthenticate", err)
	}
	env.Clock.Advance(2 * time.Hour)
	if _, err := x.Renew(context.Background(), ns, ""); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
}

func TestRenewExpiredRefreshTokenFallsBackToNewToken(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	x := newExchanger(t, env, false)
	s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(25 * time.Hour) // past the refresh token's life too
	if _, err := x.Renew(context.Background(), s, ""); !errors.Is(err, exchange.ErrReauthenticate) {
		t.Fatalf("Renew with everything expired = %v, want ErrReauthenticate", err)
	}
	ns, err := x.Renew(context.Background(), s, env.IdP.Token("alice"))
	if err != nil {
		t.Fatalf("Renew with a fresh token: %v", err)
	}
	wantUser(t, env, ns.Credentials, "alice")
}

func TestRenewNeedsAnUnspentToken(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, false)
	tok := env.IdP.Token("alice")
	s, err := x.Exchange(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(61 * time.Minute) // identity context expired, no refresh grant
	before := calls(env)
	_, err = x.Renew(context.Background(), s, tok)
	if !errors.Is(err, exchange.ErrReauthenticate) {
		t.Fatalf("Renew with the spent token = %v, want ErrReauthenticate", err)
	}
	wantCalls(t, env, 0, before["CreateTokenWithIAM"], before["AssumeRole"])
	if strings.Contains(err.Error(), tok) {
		t.Fatal("the error shows the token")
	}
	ns, err := x.Renew(context.Background(), s, env.IdP.Token("alice"))
	if err != nil {
		t.Fatalf("Renew with a new token: %v", err)
	}
	wantUser(t, env, ns.Credentials, "alice")
}

func TestRenewUsesWebTokenProvider(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, true, func(o *exchange.Options) {
		o.WebTokenProvider = func(context.Context) (string, error) { return env.IdP.Token("dave"), nil }
	})
	s, err := x.Exchange(context.Background(), env.IdP.Token("dave"))
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(3 * time.Hour) // everything expired, application role session included
	ns, err := x.Renew(context.Background(), s, "")
	if err != nil {
		t.Fatalf("Renew through WebTokenProvider: %v", err)
	}
	wantUser(t, env, ns.Credentials, "dave")
	wantCalls(t, env, 2, 2, 2)
}

func TestIdentityContextFromIDToken(t *testing.T) {
	env := tiptest.New(t, tiptest.WithoutIdentityContextField())
	x := newExchanger(t, env, false)
	s, err := x.Exchange(context.Background(), env.IdP.Token("erin"))
	if err != nil {
		t.Fatalf("Exchange without awsAdditionalDetails: %v", err)
	}
	wantUser(t, env, s.Credentials, "erin")
	wantIDs(t, env, s, "erin")
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(env *tiptest.Env, o *exchange.Options)
		token    func(env *tiptest.Env) string
		want     error
		wantCode string
	}{
		{
			name:  "user unknown to Identity Center",
			setup: func(env *tiptest.Env, _ *exchange.Options) { env.AWS.RemoveUser("mallory") },
			token: func(env *tiptest.Env) string { return env.IdP.Token("mallory") },
			want:  exchange.ErrRefused, wantCode: "InvalidGrantException",
		},
		{
			name: "STS refuses the user",
			setup: func(env *tiptest.Env, _ *exchange.Options) {
				env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "AccessDenied"})
			},
			want: exchange.ErrRefused, wantCode: "AccessDenied",
		},
		{
			name: "Identity Center refuses the user",
			setup: func(env *tiptest.Env, _ *exchange.Options) {
				env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "AccessDeniedException"})
			},
			want: exchange.ErrRefused, wantCode: "AccessDeniedException",
		},
		{
			name: "token of another audience",
			token: func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"aud": "someone-else"}))
			},
			want: exchange.ErrRefused, wantCode: "InvalidGrantException",
		},
		{
			name:  "expired token, refused before any call",
			token: func(env *tiptest.Env) string { return env.IdP.Token("alice", tiptest.WithLifetime(-time.Minute)) },
			want:  exchange.ErrReauthenticate, wantCode: "TokenExpired",
		},
		{
			name: "persistent throttling",
			setup: func(env *tiptest.Env, o *exchange.Options) {
				o.MaxAttempts = 2
				env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "Throttling"})
			},
			want: exchange.ErrUnavailable, wantCode: "Throttling",
		},
		{
			name: "Identity Center failing",
			setup: func(env *tiptest.Env, _ *exchange.Options) {
				env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "InternalServerException"})
			},
			want: exchange.ErrUnavailable, wantCode: "InternalServerException",
		},
		{
			name: "wrong application",
			setup: func(env *tiptest.Env, o *exchange.Options) {
				o.ApplicationArn = "arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-ffffffffffffffff"
			},
			want: exchange.ErrConfig, wantCode: "InvalidClientException",
		},
		{
			name: "wrong region for Identity Center",
			setup: func(env *tiptest.Env, o *exchange.Options) {
				cfg := env.Config()
				cfg.Region = "eu-west-3"
				o.SSOOIDCClient = ssooidc.NewFromConfig(cfg)
			},
			want: exchange.ErrConfig, wantCode: "InvalidRequestRegionException",
		},
		{
			name:  "empty token",
			token: func(*tiptest.Env) string { return "" },
			want:  exchange.ErrReauthenticate, wantCode: "NoToken",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tiptest.New(t)
			o := options(env, false)
			if tt.setup != nil {
				tt.setup(env, &o)
			}
			x, err := exchange.New(o)
			if err != nil {
				t.Fatal(err)
			}
			tok := env.IdP.Token("alice")
			if tt.token != nil {
				tok = tt.token(env)
			}
			s, err := x.Exchange(context.Background(), tok)
			var e *exchange.Error
			if s != nil || !errors.Is(err, tt.want) || !errors.As(err, &e) || e.Code != tt.wantCode {
				t.Fatalf("Exchange = %v, %v; want %v with code %s", s, err, tt.want, tt.wantCode)
			}
			if tok != "" && strings.Contains(err.Error(), tok) {
				t.Fatal("the error message shows the token")
			}
			var api smithy.APIError
			if e.Op != "Exchange" && !errors.As(err, &api) {
				t.Fatalf("%v does not unwrap to the SDK's API error", err)
			}
		})
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	for _, op := range []struct{ name, code string }{{"CreateTokenWithIAM", "SlowDownException"}, {"AssumeRole", "Throttling"}} {
		t.Run(op.code, func(t *testing.T) {
			env := tiptest.New(t)
			env.AWS.SetFault(op.name, tiptest.Fault{Code: op.code, Times: 2})
			x := newExchanger(t, env, false)
			s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
			if err != nil {
				t.Fatalf("Exchange through two throttled answers: %v", err)
			}
			wantUser(t, env, s.Credentials, "alice")
			if n := env.AWS.Calls(op.name); n != 3 {
				t.Fatalf("%s called %d times, want 3 (two throttled, one served)", op.name, n)
			}
		})
	}
}

func TestThrottlingStopsAtDeadline(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "SlowDownException"})
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.MaxAttempts = 100 })
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	_, err := x.Exchange(ctx, env.IdP.Token("alice"))
	if !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("Exchange under constant throttling = %v, want ErrUnavailable", err)
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n >= 100 || n < 1 {
		t.Fatalf("%d attempts within a 250 ms deadline", n)
	}
}

func TestDurationAboveRoleMaximum(t *testing.T) {
	env := tiptest.New(t)
	// 12 h passes local validation (no role chaining) and is within the
	// access role's maximum in tiptest, so the call succeeds...
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.Duration = 12 * time.Hour })
	s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	if err != nil {
		t.Fatalf("12 h session: %v", err)
	}
	if d := s.Expires().Sub(env.Clock.Now()); d < 11*time.Hour {
		t.Fatalf("asked 12 h, got %v", d)
	}
}

func TestProvider(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := tiptest.New(t)
			o := options(env, m.appRole)
			var tokens int
			var mu sync.Mutex
			o.WebTokenProvider = func(context.Context) (string, error) {
				mu.Lock()
				tokens++
				mu.Unlock()
				return env.IdP.Token("frank"), nil
			}
			p, err := exchange.NewProvider(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			// Many goroutines at once share one exchange.
			var wg sync.WaitGroup
			keys := make([]string, 20)
			for i := range keys {
				wg.Go(func() {
					c, err := p.Retrieve(ctx)
					if err != nil {
						t.Errorf("Retrieve: %v", err)
						return
					}
					keys[i] = c.AccessKeyID
				})
			}
			wg.Wait()
			for _, k := range keys {
				if k != keys[0] {
					t.Fatal("concurrent callers got different credentials")
				}
			}
			first, _ := p.Retrieve(ctx)
			wantUser(t, env, first, "frank")
			created := env.AWS.Calls("CreateTokenWithIAM")
			if created != 1 {
				t.Fatalf("%d exchanges for 20 concurrent callers", created)
			}

			// Near expiry: renewed with the identity context, no new token.
			env.Clock.Advance(14 * time.Minute)
			next, err := p.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if next.AccessKeyID == first.AccessKeyID {
				t.Fatal("credentials within the expiry window were not renewed")
			}
			wantUser(t, env, next, "frank")
			if n := env.AWS.Calls("CreateTokenWithIAM"); n != 1 || tokens != 1 {
				t.Fatalf("renewal spent a token: %d exchanges, %d tokens fetched", n, tokens)
			}

			// Everything expired: a new token from the provider.
			env.Clock.Advance(2 * time.Hour)
			last, err := p.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantUser(t, env, last, "frank")
			if tokens != 2 {
				t.Fatalf("%d tokens fetched, want 2", tokens)
			}

			// Use it in a real client.
			cfg := env.Config()
			cfg.Credentials = p
			if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
				t.Fatalf("GetCallerIdentity through the provider: %v", err)
			}
		})
	}
}

func TestProviderNeverServesExpired(t *testing.T) {
	env := tiptest.New(t)
	o := options(env, false)
	o.WebTokenProvider = func(context.Context) (string, error) { return env.IdP.Token("gina"), nil }
	p, err := exchange.NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "InternalError"})
	env.Clock.Advance(14 * time.Minute) // inside the window: renewal fails, still valid
	still, err := p.Retrieve(ctx)
	if err != nil || still.AccessKeyID != first.AccessKeyID {
		t.Fatalf("inside the window with AWS failing: %v, %v; want the still-valid credentials", still.AccessKeyID, err)
	}
	env.Clock.Advance(2 * time.Minute) // expired
	if c, err := p.Retrieve(ctx); err == nil || !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("expired with AWS failing: %v, %v; want ErrUnavailable", c.AccessKeyID, err)
	}
	env.AWS.ClearFaults()
	c, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatalf("after the fault cleared: %v", err)
	}
	wantUser(t, env, c, "gina")
}

func TestProviderCallerGivingUpDoesNotFailOthers(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	o := options(env, false)
	o.WebTokenProvider = func(context.Context) (string, error) { return env.IdP.Token("hal"), nil }
	p, err := exchange.NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := p.Retrieve(impatient); errc <- err }()
	eventually(t, "the impatient caller's exchange", func() bool { return env.AWS.Calls("CreateTokenWithIAM") != 0 })
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("the patient caller failed: %v", err)
	}
	wantUser(t, env, c, "hal")
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the impatient caller got %v, want its deadline", err)
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
}

func ssooidcClient(env *tiptest.Env) *ssooidc.Client { return ssooidc.NewFromConfig(env.Config()) }

// TestSessionPrintsNoSecret: however a Session reaches fmt (value,
// pointer, nil, inside another struct, any verb), no secret appears.
func TestSessionPrintsNoSecret(t *testing.T) {
	s := exchange.Session{
		Credentials:     aws.Credentials{AccessKeyID: "ASIAKEYID", SecretAccessKey: "SECRETKEY", SessionToken: "SESSIONTOKEN", Expires: time.Unix(1e9, 0)},
		IdentityContext: "IDENTITYCONTEXT", RefreshToken: "REFRESHTOKEN", Issuer: "https://idp.example.com", Subject: "alice",
	}
	holder := struct {
		Name string
		S    exchange.Session
		P    *exchange.Session
	}{"x", s, &s}
	var none *exchange.Session
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{s, &s, holder, &holder, none} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{"SECRETKEY", "SESSIONTOKEN", "IDENTITYCONTEXT", "REFRESHTOKEN"} {
				if strings.Contains(out, secret) {
					t.Errorf("fmt %s of %T printed a secret: %s", verb, v, out)
				}
			}
		}
	}
	if got := s.String(); !strings.Contains(got, "refresh token: true") {
		t.Errorf("String() = %q, want a description", got)
	}
}
