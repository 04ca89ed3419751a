package tiptest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/tipkit/tipkit/tiptest"
)

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	env := tiptest.New(t)
	token := env.IdP.Token("app")
	out, err := awsWebIdentity(env, token, 1800)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SessionToken) == "" {
		t.Fatalf("credentials %+v", c)
	}
	if d := c.Expiration.Sub(env.Clock.Now()); d < 1790*time.Second || d > 1800*time.Second {
		t.Fatalf("expires in %v, want 1800 s", d)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::123456789012:assumed-role/tipkit-application/app" {
		t.Fatalf("assumed role arn %q", got)
	}
	if !strings.HasPrefix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), "AROA") ||
		!strings.HasSuffix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":app") {
		t.Fatalf("assumed role id %q", aws.ToString(out.AssumedRoleUser.AssumedRoleId))
	}
	if aws.ToString(out.SubjectFromWebIdentityToken) != "app" || aws.ToString(out.Audience) != env.IdP.Audience() ||
		aws.ToString(out.Provider) != env.IdP.Issuer() {
		t.Fatalf("subject %q audience %q provider %q", aws.ToString(out.SubjectFromWebIdentityToken),
			aws.ToString(out.Audience), aws.ToString(out.Provider))
	}
	if _, ok := env.AWS.UserFor(aws.ToString(c.AccessKeyId)); ok {
		t.Fatal("an application role session carries no user")
	}
	// STS does not consume the jti: the same token works again.
	if _, err := awsWebIdentity(env, token, 0); err != nil {
		t.Fatalf("second use of the token: %v", err)
	}
	creds := awsCredsOf(c)
	id, err := awsSTS(env, &creds).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != aws.ToString(out.AssumedRoleUser.Arn) || aws.ToString(id.UserId) != aws.ToString(out.AssumedRoleUser.AssumedRoleId) ||
		aws.ToString(id.Account) != "123456789012" {
		t.Fatalf("caller identity %+v", id)
	}
}

func TestAssumeRoleWithWebIdentityRefusals(t *testing.T) {
	env := tiptest.New(t)
	other, err := tiptest.NewIdP(tiptest.IdPOptions{Clock: env.Clock})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	valid := env.IdP.Token("app")
	tampered := valid[:strings.LastIndex(valid, ".")+1] + strings.Repeat("A", len(valid)-strings.LastIndex(valid, ".")-1)
	cases := []struct {
		name   string
		in     func(in *sts.AssumeRoleWithWebIdentityInput)
		code   string
		status int
	}{
		{"wrong role", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleArn = aws.String(env.AccessRoleArn) }, "AccessDenied", 403},
		{"session name too short", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("a") }, "ValidationError", 400},
		{"session name too long", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 65)) }, "ValidationError", 400},
		{"session name bad character", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("a b") }, "ValidationError", 400},
		{"duration below 900", func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(899) }, "ValidationError", 400},
		{"duration above role max", func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(3601) }, "ValidationError", 400},
		{"another issuer", func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String(other.Token("app")) }, "InvalidIdentityToken", 400},
		{"issuer with trailing slash", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithClaims(map[string]any{"iss": env.IdP.Issuer() + "/"})))
		}, "InvalidIdentityToken", 400},
		{"another audience", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithClaims(map[string]any{"aud": "other"})))
		}, "InvalidIdentityToken", 400},
		{"expired", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithLifetime(-time.Minute)))
		}, "ExpiredTokenException", 400},
		{"no exp", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithClaims(map[string]any{"exp": nil})))
		}, "InvalidIdentityToken", 400},
		{"no sub", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithClaims(map[string]any{"sub": nil})))
		}, "InvalidIdentityToken", 400},
		{"not yet valid", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithClaims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})))
		}, "InvalidIdentityToken", 400},
		{"bad signature", func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String(tampered) }, "InvalidIdentityToken", 400},
		{"unknown kid", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithHeader(map[string]any{"kid": "nope"})))
		}, "InvalidIdentityToken", 400},
		{"alg none", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithHeader(map[string]any{"alg": "none"})))
		}, "InvalidIdentityToken", 400},
		{"crit header", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.WebIdentityToken = aws.String(env.IdP.Token("app", tiptest.WithHeader(map[string]any{"crit": []string{"exp"}})))
		}, "InvalidIdentityToken", 400},
		{"garbage", func(in *sts.AssumeRoleWithWebIdentityInput) { in.WebIdentityToken = aws.String("a.b.c") }, "InvalidIdentityToken", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &sts.AssumeRoleWithWebIdentityInput{
				RoleArn:          aws.String(env.ApplicationRoleArn),
				RoleSessionName:  aws.String("app"),
				WebIdentityToken: aws.String(valid),
			}
			tc.in(in)
			_, err := awsSTS(env, nil).AssumeRoleWithWebIdentity(context.Background(), in)
			awsWantCode(t, err, tc.code, tc.status)
		})
	}
	_, err = awsWebIdentity(env, "not a token", 0)
	awsWantType[*ststypes.InvalidIdentityTokenException](t, err)
	_, err = awsWebIdentity(env, env.IdP.Token("app", tiptest.WithLifetime(-time.Second)), 0)
	awsWantType[*ststypes.ExpiredTokenException](t, err)
}

func TestAssumeRoleWithWebIdentityEveryAlg(t *testing.T) {
	env := tiptest.New(t)
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		if _, err := awsWebIdentity(env, env.IdP.Token("app", tiptest.WithAlg(alg)), 0); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		noKid := env.IdP.Token("app", tiptest.WithAlg(alg), tiptest.WithHeader(map[string]any{"kid": nil}))
		if _, err := awsWebIdentity(env, noKid, 0); err != nil {
			t.Errorf("%s without kid: %v", alg, err)
		}
	}
}

func TestIssuerKeysRotationAndOutage(t *testing.T) {
	env := tiptest.New(t)
	if _, err := awsWebIdentity(env, env.IdP.Token("app"), 0); err != nil {
		t.Fatal(err)
	}
	fetches := env.IdP.JWKSRequests()
	env.IdP.RotateKeys()
	if _, err := awsWebIdentity(env, env.IdP.Token("app"), 0); err != nil {
		t.Fatalf("token of a rotated key: %v", err)
	}
	if env.IdP.JWKSRequests() != fetches+1 {
		t.Fatalf("JWKS fetched %d times after a rotation, want 1", env.IdP.JWKSRequests()-fetches)
	}
	// Unknown kids do not make it fetch again at once.
	for range 5 {
		bad := env.IdP.Token("app", tiptest.WithHeader(map[string]any{"kid": "unknown"}))
		_, err := awsWebIdentity(env, bad, 0)
		awsWantCode(t, err, "InvalidIdentityToken", http.StatusBadRequest)
	}
	if env.IdP.JWKSRequests() != fetches+1 {
		t.Fatalf("unknown kids caused %d fetches", env.IdP.JWKSRequests()-fetches-1)
	}
	// Cached keys survive an outage of the IdP.
	env.IdP.SetDown(true)
	if _, err := awsWebIdentity(env, env.IdP.Token("app"), 0); err != nil {
		t.Fatalf("with cached keys while the IdP is down: %v", err)
	}

	fresh := tiptest.New(t)
	fresh.IdP.SetDown(true)
	_, err := awsWebIdentity(fresh, fresh.IdP.Token("app"), 0)
	awsWantType[*ststypes.IDPCommunicationErrorException](t, err)
	_, err = awsExchange(awsOIDC(fresh, nil), fresh, fresh.IdP.Token("alice"))
	awsWantCode(t, err, "InternalServerException", http.StatusInternalServerError)
}

func TestAssumeRole(t *testing.T) {
	env := tiptest.New(t)
	ic := awsIdentityContext(t, env, "alice")
	c := awsSTS(env, nil)
	out, err := awsAssumeAccess(c, env, 43200, awsContexts(ic, 1))
	if err != nil {
		t.Fatal(err)
	}
	if d := out.Credentials.Expiration.Sub(env.Clock.Now()); d < 43190*time.Second || d > 43200*time.Second {
		t.Fatalf("expires in %v, want 12 h (the context does not cap it)", d)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/tipkit-access/alice" ||
		aws.ToString(out.SourceIdentity) != "" {
		t.Fatalf("assumed role user %+v source identity %q", out.AssumedRoleUser, aws.ToString(out.SourceIdentity))
	}
	if user, ok := env.AWS.UserFor(aws.ToString(out.Credentials.AccessKeyId)); !ok || user != "alice" {
		t.Fatalf("UserFor = %q, %v", user, ok)
	}
	plain, err := awsAssumeAccess(c, env, 900, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := env.AWS.UserFor(aws.ToString(plain.Credentials.AccessKeyId)); ok {
		t.Fatal("a session without a context carries a user")
	}
	if _, ok := env.AWS.UserFor("ASIAUNKNOWN"); ok {
		t.Fatal("UserFor of an unknown key")
	}
	// The same identity context can be used again while it is valid.
	if _, err := awsAssumeAccess(c, env, 900, awsContexts(ic, 1)); err != nil {
		t.Fatalf("reusing the identity context: %v", err)
	}
}

func TestAssumeRoleRefusals(t *testing.T) {
	env := tiptest.New(t)
	ic := awsIdentityContext(t, env, "alice")
	app, err := awsWebIdentity(env, env.IdP.Token("app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	appCreds := awsCredsOf(app.Credentials)
	access, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(ic, 1))
	if err != nil {
		t.Fatal(err)
	}
	accessCreds := awsCredsOf(access.Credentials)
	tampered := []byte(ic)
	tampered[3] ^= 1
	cases := []struct {
		name     string
		creds    *aws.Credentials
		duration int32
		contexts []ststypes.ProvidedContext
		roleArn  string
		code     string
		status   int
	}{
		{"server user above 43200", nil, 43201, nil, "", "ValidationError", 400},
		{"below 900", nil, 899, nil, "", "ValidationError", 400},
		{"role chaining above 3600", &appCreds, 3601, awsContexts(ic, 1), "", "ValidationError", 400},
		{"wrong role", nil, 900, nil, env.ApplicationRoleArn, "AccessDenied", 403},
		{"caller not trusted", &accessCreds, 900, nil, "", "AccessDenied", 403},
		{"six contexts", nil, 900, awsContexts(ic, 6), "", "ValidationError", 400},
		{"tampered context", nil, 900, awsContexts(string(tampered), 1), "", "InvalidIdentityToken", 400},
		{"forged context", nil, 900, awsContexts("eyJ1IjoiZXZlIn0.AAAA", 1), "", "InvalidIdentityToken", 400},
		{"context too short", nil, 900, awsContexts("abc", 1), "", "ValidationError", 400},
		{"context too long", nil, 900, awsContexts(strings.Repeat("a", 2049), 1), "", "ValidationError", 400},
		{"unknown provider", nil, 900, []ststypes.ProvidedContext{{
			ProviderArn: aws.String("arn:aws:iam::aws:contextProvider/Other"), ContextAssertion: aws.String(ic)}}, "", "ValidationError", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			roleArn := env.AccessRoleArn
			if tc.roleArn != "" {
				roleArn = tc.roleArn
			}
			_, err := awsSTS(env, tc.creds).AssumeRole(context.Background(), &sts.AssumeRoleInput{
				RoleArn:          aws.String(roleArn),
				RoleSessionName:  aws.String("alice"),
				DurationSeconds:  aws.Int32(tc.duration),
				ProvidedContexts: tc.contexts,
			})
			awsWantCode(t, err, tc.code, tc.status)
		})
	}
	if _, err := awsAssumeAccess(awsSTS(env, &appCreds), env, 3600, awsContexts(ic, 1)); err != nil {
		t.Fatalf("role chaining at 3600 s: %v", err)
	}
	_, err = awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(string(tampered), 1))
	awsWantType[*ststypes.InvalidIdentityTokenException](t, err)
}

func TestIdentityContextExpires(t *testing.T) {
	env := tiptest.New(t, tiptest.WithTokenTTL(30*time.Minute))
	ic := awsIdentityContext(t, env, "alice")
	c := awsSTS(env, nil)
	env.Clock.Advance(29 * time.Minute)
	if _, err := awsAssumeAccess(c, env, 900, awsContexts(ic, 1)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	env.Clock.Advance(time.Minute)
	_, err := awsAssumeAccess(c, env, 900, awsContexts(ic, 1))
	awsWantType[*ststypes.ExpiredTokenException](t, err)
	awsWantCode(t, err, "ExpiredTokenException", http.StatusBadRequest)

	// A context of another local AWS is not authentic here.
	other := tiptest.New(t)
	_, err = awsAssumeAccess(c, env, 900, awsContexts(awsIdentityContext(t, other, "alice"), 1))
	awsWantCode(t, err, "InvalidIdentityToken", http.StatusBadRequest)
}

func TestSTSWrongRegion(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRegion("eu-central-1"))
	cfg := awsConfig(env, nil)
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("in the right region: %v", err)
	}
	cfg.Region = "us-west-2"
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	awsWantCode(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
}

func TestSTSProtocolErrors(t *testing.T) {
	env := tiptest.New(t)
	cases := []struct {
		name, method, contentType, body, code string
	}{
		{"unknown action", http.MethodPost, "application/x-www-form-urlencoded", "Action=GetSessionToken&Version=2011-06-15", "InvalidAction"},
		{"wrong version", http.MethodPost, "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Version=2012-01-01", "InvalidAction"},
		{"no action", http.MethodPost, "application/x-www-form-urlencoded", "Version=2011-06-15", "MissingAction"},
		{"get", http.MethodGet, "", "", "InvalidAction"},
		{"json body", http.MethodPost, "application/json", "{}", "InvalidAction"},
		{"missing parameter", http.MethodPost, "application/x-www-form-urlencoded",
			"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x&RoleSessionName=abc", "MissingParameter"},
		{"contexts on web identity", http.MethodPost, "application/x-www-form-urlencoded",
			"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x&RoleSessionName=abc&WebIdentityToken=abcd&ProvidedContexts.member.1.ProviderArn=x", "ValidationError"},
		{"duration not a number", http.MethodPost, "application/x-www-form-urlencoded",
			"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x&RoleSessionName=abc&WebIdentityToken=abcd&DurationSeconds=1h", "ValidationError"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, env.AWS.URL()+"/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if status, code := sigDo(t, r); status != http.StatusBadRequest || code != tc.code {
				t.Fatalf("answer %d %q, want 400 %q", status, code, tc.code)
			}
		})
	}
}

func TestProvidedContextsNumbering(t *testing.T) {
	env := tiptest.New(t)
	ic := awsIdentityContext(t, env, "alice")
	base := "Action=AssumeRole&Version=2011-06-15&RoleArn=" + env.AccessRoleArn + "&RoleSessionName=alice"
	member := func(n, field, value string) string {
		return "&ProvidedContexts.member." + n + "." + field + "=" + value
	}
	provider := "arn:aws:iam::aws:contextProvider/IdentityCenter"
	cases := map[string]struct {
		body   string
		status int
		code   string
	}{
		"one context":    {base + member("1", "ProviderArn", provider) + member("1", "ContextAssertion", ic), 200, ""},
		"gap":            {base + member("2", "ProviderArn", provider) + member("2", "ContextAssertion", ic), 400, "ValidationError"},
		"unknown member": {base + member("1", "Provider", provider), 400, "ValidationError"},
		"index zero":     {base + member("0", "ProviderArn", provider), 400, "ValidationError"},
		"no assertion":   {base + member("1", "ProviderArn", provider), 400, "ValidationError"},
		"two contexts": {base + member("1", "ProviderArn", provider) + member("1", "ContextAssertion", ic) +
			member("2", "ProviderArn", provider) + member("2", "ContextAssertion", ic), 400, "ValidationError"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := sigBase(env)
			req.body = tc.body
			if status, code := sigSend(t, env, req); status != tc.status || code != tc.code {
				t.Fatalf("answer %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}
