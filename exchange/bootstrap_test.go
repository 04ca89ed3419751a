package exchange_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

// tokenShapeClaims are claims through which an identity provider passes
// session tags (a transitive one among them) and a source identity to
// AssumeRoleWithWebIdentity.
var tokenShapeClaims = map[string]map[string]any{
	"session tags": {"https://aws.amazon.com/tags": map[string]any{
		"principal_tags":      map[string]any{"clearance": []string{"alice-clearance"}, "dept": []string{"alice-dept"}},
		"transitive_tag_keys": []string{"clearance"},
	}},
	"source identity": {"https://aws.amazon.com/source_identity": "alice-source"},
}

// allowTokenShape makes env's application role trust policy allow
// sts:TagSession and sts:SetSourceIdentity for web identities, so that a
// token's claims shape the role's session.
func allowTokenShape(t *testing.T, env *tiptest.Env) {
	t.Helper()
	if err := env.AWS.Configure(func(s *tiptest.Setup) {
		s.ApplicationRoleTagSession, s.ApplicationRoleSetSourceIdentity = true, true
	}); err != nil {
		t.Fatal(err)
	}
}

// The application role's session signs every user's exchange, so it must
// not carry what one user's token gave it. Without the check, alice's
// transitive tag reached bob's access role session through it (role
// chaining passes transitive tags on), and her source identity made any
// source identity of bob's refused. Now the exchange that would assume
// the role with her token fails with ErrConfig, telling what to change,
// naming none of her values, and making no call with that session; bob's
// plain token then assumes the role and exchanges as before, and no
// session of bob's (nor a later one of alice's) carries her tags.
func TestApplicationRoleSessionShapedByTokenRefused(t *testing.T) {
	for name, claims := range tokenShapeClaims {
		t.Run(name, func(t *testing.T) {
			env := tiptest.New(t)
			allowTokenShape(t, env)
			x := newExchanger(t, env, true)
			ctx := context.Background()

			aliceToken := env.IdP.Token("alice", tiptest.WithClaims(claims))
			s, err := x.Exchange(ctx, aliceToken)
			var xe *exchange.Error
			if s != nil || !errors.Is(err, exchange.ErrConfig) || !errors.As(err, &xe) || xe.Op != "AssumeRoleWithWebIdentity" {
				t.Fatalf("Exchange(alice with %s) = %v, %v; want an *Error of AssumeRoleWithWebIdentity matching ErrConfig", name, s, err)
			}
			msg := err.Error()
			want := map[string]string{"session tags": "sts:TagSession", "source identity": "sts:SetSourceIdentity"}[name]
			if !strings.Contains(msg, want) || !strings.Contains(msg, "identity provider") {
				t.Errorf("error %q does not say what to change (%s, or the identity provider's claims)", msg, want)
			}
			for _, secret := range []string{"alice-clearance", "alice-dept", "alice-source", aliceToken} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows %q", msg, secret)
				}
			}
			// The session was refused before it signed anything.
			wantCalls(t, env, 1, 0, 0)

			bob, err := x.Exchange(ctx, env.IdP.Token("bob"))
			if err != nil {
				t.Fatalf("Exchange(bob): %v", err)
			}
			wantUser(t, env, bob.Credentials, "bob")
			wantCalls(t, env, 2, 1, 1)
			alice, err := x.Exchange(ctx, env.IdP.Token("alice", tiptest.WithClaims(claims)))
			if err != nil {
				t.Fatalf("Exchange(alice) signed by the session bob's token assumed: %v", err)
			}
			for user, creds := range map[string]string{"bob": bob.Credentials.AccessKeyID, "alice": alice.Credentials.AccessKeyID} {
				info, ok := env.AWS.Session(creds)
				if !ok || info.User != user || info.Tags != nil || info.TransitiveTagKeys != nil || info.SourceIdentity != "" {
					t.Errorf("%s's access role session carries %+v (known: %v), want no tags and no source identity", user, info, ok)
				}
			}
		})
	}
}

// With a trust policy that allows sts:AssumeRoleWithWebIdentity alone (as
// tipkit needs), STS itself refuses a token whose claims pass tags: the
// user is refused, and nothing reaches a session.
func TestApplicationRoleTrustRefusesTokenShape(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, true)
	_, err := x.Exchange(context.Background(), env.IdP.Token("alice", tiptest.WithClaims(tokenShapeClaims["session tags"])))
	var xe *exchange.Error
	if !errors.Is(err, exchange.ErrRefused) || !errors.As(err, &xe) || xe.Op != "AssumeRoleWithWebIdentity" || xe.Code != "AccessDenied" {
		t.Fatalf("Exchange = %v, want AccessDenied of AssumeRoleWithWebIdentity matching ErrRefused", err)
	}
	wantCalls(t, env, 1, 0, 0)
}

// A Provider serves one identity: the application role session its token
// assumed signs that identity's exchange alone, so the tags and source
// identity its token passes are that identity's own, and reach its
// access role session as STS passes them on.
func TestProviderKeepsItsOwnTokenShape(t *testing.T) {
	env := tiptest.New(t)
	allowTokenShape(t, env)
	o := options(env, true)
	claims := map[string]any{}
	for _, c := range tokenShapeClaims {
		maps.Copy(claims, c)
	}
	o.WebTokenProvider = func(context.Context) (string, error) {
		return env.IdP.Token("frank", tiptest.WithClaims(claims)), nil
	}
	p, err := exchange.NewProvider(o)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	info, ok := env.AWS.Session(creds.AccessKeyID)
	if !ok || info.User != "frank" || !maps.Equal(info.Tags, map[string]string{"clearance": "alice-clearance"}) || info.SourceIdentity != "alice-source" {
		t.Fatalf("the provider's session carries %+v (known: %v), want its token's transitive tag and source identity", info, ok)
	}
}
