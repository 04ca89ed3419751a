package tiptest_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	ssooidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tipkit/tipkit/tiptest"
)

// oidcClaims decodes the claims of a JWT without verifying it.
func oidcClaims(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("idToken: %v", err)
	}
	return claims
}

// oidcRefresh calls CreateTokenWithIAM with the refresh_token grant.
func oidcRefresh(env *tiptest.Env, refreshToken string) (*ssooidc.CreateTokenWithIAMOutput, error) {
	return awsOIDC(env, nil).CreateTokenWithIAM(context.Background(), &ssooidc.CreateTokenWithIAMInput{
		ClientId:     aws.String(env.ApplicationArn),
		GrantType:    aws.String("refresh_token"),
		RefreshToken: aws.String(refreshToken),
	})
}

func TestCreateTokenWithIAM(t *testing.T) {
	env := tiptest.New(t)
	out, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	ic := aws.ToString(out.AwsAdditionalDetails.IdentityContext)
	if len(ic) < 4 || len(ic) > 2048 {
		t.Fatalf("identity context of %d chars", len(ic))
	}
	if aws.ToString(out.AccessToken) == "" || aws.ToString(out.TokenType) != "Bearer" || out.ExpiresIn != 3600 {
		t.Fatalf("access token %q type %q expires in %d", aws.ToString(out.AccessToken), aws.ToString(out.TokenType), out.ExpiresIn)
	}
	if out.RefreshToken != nil || out.IssuedTokenType != nil {
		t.Fatalf("refresh token %v / issued type %v without the refresh grant", out.RefreshToken, out.IssuedTokenType)
	}
	if !slices.Contains(out.Scope, "openid") || !slices.Contains(out.Scope, "aws") {
		t.Fatalf("scope %v", out.Scope)
	}
	claims := oidcClaims(t, aws.ToString(out.IdToken))
	if claims["iss"] != "https://identitycenter.amazonaws.com/ssoins-7223a5f0e0c6f1b2" || claims["aud"] != env.ApplicationArn ||
		claims["sts:identity_context"] != ic || claims["sub"] == "" || claims["sts:audit_context"] == "" {
		t.Fatalf("idToken claims %v", claims)
	}
	// The sub is the user's ID in the identity store, stable per user,
	// beside the identity store's ID.
	if claims["sub"] != env.AWS.UserID("alice") || !uuidPattern.MatchString(env.AWS.UserID("alice")) ||
		claims["aws:identity_store_id"] != env.AWS.IdentityStoreID() || !regexp.MustCompile(`^d-[0-9a-f]{10}$`).MatchString(env.AWS.IdentityStoreID()) {
		t.Fatalf("idToken sub %v, identity store %v; UserID %s, IdentityStoreID %s",
			claims["sub"], claims["aws:identity_store_id"], env.AWS.UserID("alice"), env.AWS.IdentityStoreID())
	}
	if env.AWS.UserID("bob") == env.AWS.UserID("alice") {
		t.Fatal("two users share a user ID")
	}
	again, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if oidcClaims(t, aws.ToString(again.IdToken))["sub"] != claims["sub"] {
		t.Fatal("the idToken sub of one user changed")
	}
}

func TestCreateTokenWithIAMOptions(t *testing.T) {
	env := tiptest.New(t, tiptest.WithoutIdentityContextField(), tiptest.WithTokenTTL(15*time.Minute),
		tiptest.WithAudience("my-app"), tiptest.WithRegion("eu-west-1"))
	out, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice@corp.example"))
	if err != nil {
		t.Fatal(err)
	}
	if out.AwsAdditionalDetails != nil || out.ExpiresIn != 900 {
		t.Fatalf("awsAdditionalDetails %v, expiresIn %d", out.AwsAdditionalDetails, out.ExpiresIn)
	}
	ic, _ := oidcClaims(t, aws.ToString(out.IdToken))["sts:identity_context"].(string)
	assumed, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(ic, 1))
	if err != nil {
		t.Fatalf("AssumeRole with the context of the idToken: %v", err)
	}
	if user, _ := env.AWS.UserFor(aws.ToString(assumed.Credentials.AccessKeyId)); user != "alice" {
		t.Fatalf("UserFor = %q, want alice", user)
	}
}

func TestCreateTokenWithIAMRefusals(t *testing.T) {
	env := tiptest.New(t)
	other, err := tiptest.NewIdP(tiptest.IdPOptions{Clock: env.Clock})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	valid := env.IdP.Token("alice")
	tampered := valid[:len(valid)-4] + "AAAA"
	grant := func(token string) *ssooidc.CreateTokenWithIAMInput {
		return &ssooidc.CreateTokenWithIAMInput{
			ClientId: aws.String(env.ApplicationArn), GrantType: aws.String(jwtBearer), Assertion: aws.String(token),
		}
	}
	withClaims := func(c map[string]any) *ssooidc.CreateTokenWithIAMInput {
		return grant(env.IdP.Token("alice", tiptest.WithClaims(c)))
	}
	cases := []struct {
		name   string
		in     *ssooidc.CreateTokenWithIAMInput
		code   string
		status int
	}{
		{"another issuer", grant(other.Token("alice")), "InvalidGrantException", 400},
		{"another audience", withClaims(map[string]any{"aud": []string{"x", "y"}}), "InvalidGrantException", 400},
		{"expired", grant(env.IdP.Token("alice", tiptest.WithLifetime(-time.Second))), "InvalidGrantException", 400},
		{"no exp", withClaims(map[string]any{"exp": nil}), "InvalidGrantException", 400},
		{"no jti", withClaims(map[string]any{"jti": nil}), "InvalidGrantException", 400},
		{"no email", withClaims(map[string]any{"email": nil}), "InvalidGrantException", 400},
		{"email without @", withClaims(map[string]any{"email": "alice"}), "InvalidGrantException", 400},
		{"bad signature", grant(tampered), "InvalidGrantException", 400},
		{"no assertion", grant(""), "InvalidRequestException", 400},
		{"unknown client", &ssooidc.CreateTokenWithIAMInput{
			ClientId: aws.String(env.ApplicationArn + "x"), GrantType: aws.String(jwtBearer), Assertion: aws.String(valid),
		}, "InvalidClientException", 401},
		{"unsupported grant", &ssooidc.CreateTokenWithIAMInput{
			ClientId: aws.String(env.ApplicationArn), GrantType: aws.String("authorization_code"), Code: aws.String("c"),
		}, "UnsupportedGrantTypeException", 400},
		{"refresh grant not enabled", &ssooidc.CreateTokenWithIAMInput{
			ClientId: aws.String(env.ApplicationArn), GrantType: aws.String("refresh_token"), RefreshToken: aws.String("aor"),
		}, "UnauthorizedClientException", 400},
		{"unknown scope", &ssooidc.CreateTokenWithIAMInput{
			ClientId: aws.String(env.ApplicationArn), GrantType: aws.String(jwtBearer), Assertion: aws.String(valid),
			Scope: []string{"openid", "admin"},
		}, "InvalidScopeException", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := awsOIDC(env, nil).CreateTokenWithIAM(context.Background(), tc.in)
			awsWantCode(t, err, tc.code, tc.status)
		})
	}
	// The token refused above for its scope was not consumed.
	if _, err := awsExchange(awsOIDC(env, nil), env, valid); err != nil {
		t.Fatalf("valid token after refusals: %v", err)
	}
	_, err = awsExchange(awsOIDC(env, nil), env, valid)
	ige := awsWantType[*ssooidctypes.InvalidGrantException](t, err)
	if aws.ToString(ige.Error_) != "invalid_grant" || aws.ToString(ige.Error_description) == "" {
		t.Fatalf("error %q description %q", aws.ToString(ige.Error_), aws.ToString(ige.Error_description))
	}
	_, err = awsOIDC(env, nil).CreateTokenWithIAM(context.Background(), &ssooidc.CreateTokenWithIAMInput{
		ClientId: aws.String("arn:aws:sso::123456789012:application/x/y"), GrantType: aws.String(jwtBearer), Assertion: aws.String(valid),
	})
	ice := awsWantType[*ssooidctypes.InvalidClientException](t, err)
	if aws.ToString(ice.Error_) != "invalid_client" {
		t.Fatalf("error %q", aws.ToString(ice.Error_))
	}
}

func TestCreateTokenWithIAMJTIMemory(t *testing.T) {
	env := tiptest.New(t)
	token := env.IdP.Token("alice", tiptest.WithLifetime(48*time.Hour))
	c := awsOIDC(env, nil)
	if _, err := awsExchange(c, env, token); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(24*time.Hour - time.Second)
	_, err := awsExchange(c, env, token)
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)
	env.Clock.Advance(time.Second)
	if _, err := awsExchange(c, env, token); err != nil {
		t.Fatalf("a jti is remembered for 24 h only: %v", err)
	}
}

func TestCreateTokenWithIAMRemovedUser(t *testing.T) {
	env := tiptest.New(t)
	c := awsOIDC(env, nil)
	env.AWS.RemoveUser("bob")
	_, err := awsExchange(c, env, env.IdP.Token("bob"))
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)
	_, err = awsExchange(c, env, env.IdP.Token("bob@other.example"))
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)
	if _, err := awsExchange(c, env, env.IdP.Token("alice")); err != nil {
		t.Fatalf("another user: %v", err)
	}
	env.AWS.AddUser("bob")
	if _, err := awsExchange(c, env, env.IdP.Token("bob")); err != nil {
		t.Fatalf("after AddUser: %v", err)
	}
}

func TestCreateTokenWithIAMCallers(t *testing.T) {
	env := tiptest.New(t)
	app, err := awsWebIdentity(env, env.IdP.Token("app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	appCreds := awsCredsOf(app.Credentials)
	if _, err := awsExchange(awsOIDC(env, &appCreds), env, env.IdP.Token("alice")); err != nil {
		t.Fatalf("application role session: %v", err)
	}
	access, err := awsAssumeAccess(awsSTS(env, nil), env, 900, nil)
	if err != nil {
		t.Fatal(err)
	}
	accessCreds := awsCredsOf(access.Credentials)
	_, err = awsExchange(awsOIDC(env, &accessCreds), env, env.IdP.Token("alice"))
	awsWantType[*ssooidctypes.AccessDeniedException](t, err)
	awsWantCode(t, err, "AccessDeniedException", http.StatusBadRequest)

	unknown := aws.Credentials{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: strings.Repeat("s", 40)}
	_, err = awsExchange(awsOIDC(env, &unknown), env, env.IdP.Token("alice"))
	awsWantCode(t, err, "UnrecognizedClientException", http.StatusForbidden)
}

func TestCreateTokenWithIAMWrongRegion(t *testing.T) {
	env := tiptest.New(t)
	cfg := awsConfig(env, nil)
	cfg.Region = "eu-west-1"
	_, err := awsExchange(ssooidc.NewFromConfig(cfg), env, env.IdP.Token("alice"))
	e := awsWantType[*ssooidctypes.InvalidRequestRegionException](t, err)
	if aws.ToString(e.Region) != "us-east-1" || aws.ToString(e.Endpoint) != env.AWS.URL() {
		t.Fatalf("region %q endpoint %q", aws.ToString(e.Region), aws.ToString(e.Endpoint))
	}
	awsWantCode(t, err, "InvalidRequestRegionException", http.StatusBadRequest)
}

func TestRefreshTokenRotation(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	first, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.RefreshToken) == "" || aws.ToString(first.IssuedTokenType) != "urn:ietf:params:oauth:token-type:refresh_token" {
		t.Fatalf("refresh token %q issued type %q", aws.ToString(first.RefreshToken), aws.ToString(first.IssuedTokenType))
	}
	second, err := oidcRefresh(env, aws.ToString(first.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(second.RefreshToken) == aws.ToString(first.RefreshToken) || second.AwsAdditionalDetails == nil {
		t.Fatal("a refresh must return a new refresh token and an identity context")
	}
	assumed, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(aws.ToString(second.AwsAdditionalDetails.IdentityContext), 1))
	if err != nil {
		t.Fatal(err)
	}
	if user, _ := env.AWS.UserFor(aws.ToString(assumed.Credentials.AccessKeyId)); user != "alice" {
		t.Fatalf("UserFor after a refresh = %q", user)
	}
	_, err = oidcRefresh(env, aws.ToString(first.RefreshToken))
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)
	_, err = oidcRefresh(env, "aor-made-up")
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)

	env.Clock.Advance(24 * time.Hour)
	_, err = oidcRefresh(env, aws.ToString(second.RefreshToken))
	awsWantType[*ssooidctypes.ExpiredTokenException](t, err)
	awsWantCode(t, err, "ExpiredTokenException", http.StatusBadRequest)

	third, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	env.AWS.RemoveUser("alice")
	_, err = oidcRefresh(env, aws.ToString(third.RefreshToken))
	awsWantType[*ssooidctypes.InvalidGrantException](t, err)
}

func TestOIDCProtocolErrors(t *testing.T) {
	env := tiptest.New(t)
	for _, path := range []string{"/token", "/token?aws_iam=f", "/client/register"} {
		r, _ := http.NewRequest(http.MethodPost, env.AWS.URL()+path, strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		if status, code := sigDo(t, r); status < 400 || status >= 500 || code == "" {
			t.Fatalf("%s: answer %d %q", path, status, code)
		}
	}
	// A body that is not JSON, correctly signed.
	status, code := sigSend(t, env, sigRequest{path: "/token?aws_iam=t", body: "{not json", creds: env.AWS.ServerCredentials(),
		service: "sso-oauth", region: env.AWS.Region(), signedAt: time.Now()})
	if status != http.StatusBadRequest || code != "InvalidRequestException" {
		t.Fatalf("answer %d %q", status, code)
	}
}
