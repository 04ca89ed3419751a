package tiptest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssoadmintypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/tiptest"
)

// icAdmin returns an sso-admin client of env signed with creds (the
// server user's when nil).
func icAdmin(env *tiptest.Env, creds *aws.Credentials) *ssoadmin.Client {
	return ssoadmin.NewFromConfig(awsConfig(env, creds))
}

// icIAM returns an IAM client of env signed with creds (the server user's
// when nil), for IAM's signing region.
func icIAM(env *tiptest.Env, creds *aws.Credentials) *iam.Client {
	return iam.NewFromConfig(awsConfig(env, creds), func(o *iam.Options) { o.Region = "us-east-1" })
}

// icTrust returns the decoded trust policy of role name.
func icTrust(t *testing.T, env *tiptest.Env, name string) map[string]any {
	t.Helper()
	out, err := icIAM(env, nil).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetRole %s: %v", name, err)
	}
	raw := aws.ToString(out.Role.AssumeRolePolicyDocument)
	if strings.ContainsAny(raw, `{}":`) {
		t.Fatalf("trust policy %q is not URL-encoded", raw)
	}
	doc, err := url.PathUnescape(raw)
	if err != nil {
		t.Fatal(err)
	}
	var policy map[string]any
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		t.Fatalf("trust policy %s: %v", doc, err)
	}
	return policy
}

// icActions returns the actions of the first statement of policy.
func icActions(policy map[string]any) []string {
	st := policy["Statement"].([]any)[0].(map[string]any)
	switch a := st["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, s := range a {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

// icJWTGrant returns the jwt-bearer grant's authorised token issuers.
func icJWTGrant(env *tiptest.Env) ([]ssoadmintypes.AuthorizedTokenIssuer, error) {
	out, err := icAdmin(env, nil).GetApplicationGrant(context.Background(), &ssoadmin.GetApplicationGrantInput{
		ApplicationArn: aws.String(env.ApplicationArn),
		GrantType:      ssoadmintypes.GrantTypeJwtBearer,
	})
	if err != nil {
		return nil, err
	}
	g, ok := out.Grant.(*ssoadmintypes.GrantMemberJwtBearer)
	if !ok {
		return nil, nil
	}
	return g.Value.AuthorizedTokenIssuers, nil
}

func TestIdentityCenterReads(t *testing.T) {
	env := tiptest.New(t)
	ctx := context.Background()
	admin := icAdmin(env, nil)

	app, err := admin.DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(env.ApplicationArn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(app.ApplicationArn) != env.ApplicationArn || app.Status != ssoadmintypes.ApplicationStatusEnabled ||
		aws.ToString(app.ApplicationAccount) != env.AWS.AccountID() || aws.ToString(app.InstanceArn) != env.AWS.InstanceArn() ||
		aws.ToString(app.ApplicationProviderArn) != "arn:aws:sso::aws:applicationProvider/custom" || app.CreatedDate == nil {
		t.Fatalf("DescribeApplication %+v", app)
	}

	issuers, err := icJWTGrant(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(issuers) != 1 || aws.ToString(issuers[0].TrustedTokenIssuerArn) != env.AWS.TrustedTokenIssuerArn() ||
		!slices.Equal(issuers[0].AuthorizedAudiences, []string{env.IdP.Audience()}) {
		t.Fatalf("jwt-bearer grant %+v", issuers)
	}
	// No refresh grant unless asked for.
	_, err = admin.GetApplicationGrant(ctx, &ssoadmin.GetApplicationGrantInput{
		ApplicationArn: aws.String(env.ApplicationArn), GrantType: ssoadmintypes.GrantTypeRefreshToken,
	})
	awsWantType[*ssoadmintypes.ResourceNotFoundException](t, err)
	awsWantCode(t, err, "ResourceNotFoundException", http.StatusNotFound)

	tti, err := admin.DescribeTrustedTokenIssuer(ctx, &ssoadmin.DescribeTrustedTokenIssuerInput{
		TrustedTokenIssuerArn: aws.String(env.AWS.TrustedTokenIssuerArn()),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, ok := tti.TrustedTokenIssuerConfiguration.(*ssoadmintypes.TrustedTokenIssuerConfigurationMemberOidcJwtConfiguration)
	if !ok || tti.TrustedTokenIssuerType != ssoadmintypes.TrustedTokenIssuerTypeOidcJwt {
		t.Fatalf("DescribeTrustedTokenIssuer %+v", tti)
	}
	if aws.ToString(cfg.Value.IssuerUrl) != env.IdP.Issuer() || aws.ToString(cfg.Value.ClaimAttributePath) != "email" ||
		aws.ToString(cfg.Value.IdentityStoreAttributePath) != "emails.value" ||
		cfg.Value.JwksRetrievalOption != ssoadmintypes.JwksRetrievalOptionOpenIdDiscovery {
		t.Fatalf("OIDC JWT configuration %+v", cfg.Value)
	}

	access := icTrust(t, env, "tipkit-access")
	if got := icActions(access); !slices.Equal(got, []string{"sts:AssumeRole", "sts:SetContext", "sts:TagSession", "sts:SetSourceIdentity"}) {
		t.Fatalf("access role trust actions %v", got)
	}
	principals := access["Statement"].([]any)[0].(map[string]any)["Principal"].(map[string]any)["AWS"].([]any)
	if len(principals) != 2 || principals[0] != env.AWS.ServerUserArn() || principals[1] != env.ApplicationRoleArn {
		t.Fatalf("access role trusts %v", principals)
	}
	app2 := icTrust(t, env, "tipkit-application")
	if got := icActions(app2); !slices.Equal(got, []string{"sts:AssumeRoleWithWebIdentity"}) {
		t.Fatalf("application role trust actions %v", got)
	}
	role, err := icIAM(env, nil).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("tipkit-access")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(role.Role.Arn) != env.AccessRoleArn || aws.ToInt32(role.Role.MaxSessionDuration) != 43200 ||
		!strings.HasPrefix(aws.ToString(role.Role.RoleId), "AROA") || role.Role.CreateDate == nil {
		t.Fatalf("GetRole %+v", role.Role)
	}
	for _, op := range []string{"DescribeApplication", "GetApplicationGrant", "DescribeTrustedTokenIssuer", "GetRole"} {
		if env.AWS.Calls(op) == 0 {
			t.Errorf("Calls(%q) = 0", op)
		}
	}
}

// TestSetupHonouredByExchange checks that each misconfiguration shows in
// the reads and fails the exchange as AWS does.
func TestSetupHonouredByExchange(t *testing.T) {
	cases := []struct {
		name   string
		change func(s *tiptest.Setup)
		read   func(t *testing.T, env *tiptest.Env)
		// exchange fails with this code (CreateTokenWithIAM, else
		// AssumeRole when assume is set).
		code   string
		status int
		assume bool
	}{
		{"issuer URL with a trailing slash", func(s *tiptest.Setup) { s.IssuerURL += "/" }, func(t *testing.T, env *tiptest.Env) {
			out, err := icAdmin(env, nil).DescribeTrustedTokenIssuer(context.Background(), &ssoadmin.DescribeTrustedTokenIssuerInput{
				TrustedTokenIssuerArn: aws.String(env.AWS.TrustedTokenIssuerArn()),
			})
			if err != nil {
				t.Fatal(err)
			}
			cfg := out.TrustedTokenIssuerConfiguration.(*ssoadmintypes.TrustedTokenIssuerConfigurationMemberOidcJwtConfiguration)
			if aws.ToString(cfg.Value.IssuerUrl) != env.IdP.Issuer()+"/" {
				t.Fatalf("issuer URL %q", aws.ToString(cfg.Value.IssuerUrl))
			}
		}, "InvalidGrantException", 400, false},
		{"audience not authorised", func(s *tiptest.Setup) { s.Audiences = []string{"someone-else"} }, func(t *testing.T, env *tiptest.Env) {
			issuers, err := icJWTGrant(env)
			if err != nil || len(issuers) != 1 || !slices.Equal(issuers[0].AuthorizedAudiences, []string{"someone-else"}) {
				t.Fatalf("grant %+v, %v", issuers, err)
			}
		}, "InvalidGrantException", 400, false},
		{"no jwt-bearer grant", func(s *tiptest.Setup) { s.JWTBearerGrant = false }, func(t *testing.T, env *tiptest.Env) {
			_, err := icJWTGrant(env)
			awsWantCode(t, err, "ResourceNotFoundException", http.StatusNotFound)
		}, "UnauthorizedClientException", 400, false},
		{"no application", func(s *tiptest.Setup) { s.Application = false }, func(t *testing.T, env *tiptest.Env) {
			_, err := icAdmin(env, nil).DescribeApplication(context.Background(), &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(env.ApplicationArn)})
			awsWantType[*ssoadmintypes.ResourceNotFoundException](t, err)
			_, err = icJWTGrant(env)
			awsWantCode(t, err, "ResourceNotFoundException", http.StatusNotFound)
		}, "InvalidClientException", 401, false},
		{"claim mapped is upn", func(s *tiptest.Setup) { s.ClaimAttributePath = "upn" }, func(t *testing.T, env *tiptest.Env) {
			out, err := icAdmin(env, nil).DescribeTrustedTokenIssuer(context.Background(), &ssoadmin.DescribeTrustedTokenIssuerInput{
				TrustedTokenIssuerArn: aws.String(env.AWS.TrustedTokenIssuerArn()),
			})
			if err != nil {
				t.Fatal(err)
			}
			cfg := out.TrustedTokenIssuerConfiguration.(*ssoadmintypes.TrustedTokenIssuerConfigurationMemberOidcJwtConfiguration)
			if aws.ToString(cfg.Value.ClaimAttributePath) != "upn" {
				t.Fatalf("claim %q", aws.ToString(cfg.Value.ClaimAttributePath))
			}
		}, "InvalidGrantException", 400, false},
		{"trust without sts:SetContext", func(s *tiptest.Setup) { s.AccessRoleSetContext = false }, func(t *testing.T, env *tiptest.Env) {
			if got := icActions(icTrust(t, env, "tipkit-access")); !slices.Equal(got, []string{"sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"}) {
				t.Fatalf("actions %v", got)
			}
		}, "AccessDenied", 403, true},
		{"no access role", func(s *tiptest.Setup) { s.AccessRole = false }, func(t *testing.T, env *tiptest.Env) {
			_, err := icIAM(env, nil).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("tipkit-access")})
			awsWantCode(t, err, "NoSuchEntity", http.StatusNotFound)
		}, "AccessDenied", 403, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := tiptest.New(t)
			// The identity context is obtained before the change, so that
			// AssumeRole is judged on the role alone.
			ic := awsIdentityContext(t, env, "bob")
			if err := env.AWS.Configure(tc.change); err != nil {
				t.Fatal(err)
			}
			tc.read(t, env)
			if tc.assume {
				_, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(ic, 1))
				awsWantCode(t, err, tc.code, tc.status)
				return
			}
			_, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
			awsWantCode(t, err, tc.code, tc.status)
			// Undone, the setup works again with a new token.
			if err := env.AWS.Configure(func(s *tiptest.Setup) {
				*s = tiptest.Setup{Application: true, JWTBearerGrant: true, IssuerURL: env.IdP.Issuer(), ClaimAttributePath: "email",
					Audiences: []string{env.IdP.Audience()}, AccessRole: true, AccessRoleSetContext: true}
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice")); err != nil {
				t.Fatalf("after the setup was mended: %v", err)
			}
		})
	}
}

func TestSetupClaimAttributePath(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.ClaimAttributePath = "upn" }); err != nil {
		t.Fatal(err)
	}
	out, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("x", tiptest.WithClaims(map[string]any{"upn": "carol@corp.example"})))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(aws.ToString(out.AwsAdditionalDetails.IdentityContext), 1))
	if err != nil {
		t.Fatal(err)
	}
	if user, _ := env.AWS.UserFor(aws.ToString(creds.Credentials.AccessKeyId)); user != "carol" {
		t.Fatalf("user %q, want carol", user)
	}
}

// TestSetupIssuerKeepsWebIdentity checks that the trusted token issuer and
// the application's audiences are not the IAM OIDC identity provider.
func TestSetupIssuerKeepsWebIdentity(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) {
		s.IssuerURL = "https://idp.example.com"
		s.Audiences = []string{"other"}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := awsWebIdentity(env, env.IdP.Token("app"), 0); err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	_, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	awsWantCode(t, err, "InvalidGrantException", http.StatusBadRequest)
}

func TestSetupRefreshGrant(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.RefreshGrant = true }); err != nil {
		t.Fatal(err)
	}
	out, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("alice"))
	if err != nil || aws.ToString(out.RefreshToken) == "" {
		t.Fatalf("refresh token %q, %v", aws.ToString(out.RefreshToken), err)
	}
	g, err := icAdmin(env, nil).GetApplicationGrant(context.Background(), &ssoadmin.GetApplicationGrantInput{
		ApplicationArn: aws.String(env.ApplicationArn), GrantType: ssoadmintypes.GrantTypeRefreshToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Grant.(*ssoadmintypes.GrantMemberRefreshToken); !ok {
		t.Fatalf("grant %T", g.Grant)
	}
}

func TestSetupValidation(t *testing.T) {
	env := tiptest.New(t)
	for name, change := range map[string]func(*tiptest.Setup){
		"no issuer":       func(s *tiptest.Setup) { s.IssuerURL = "" },
		"no claim":        func(s *tiptest.Setup) { s.ClaimAttributePath = "" },
		"no audience":     func(s *tiptest.Setup) { s.Audiences = nil },
		"empty audience":  func(s *tiptest.Setup) { s.Audiences = []string{"a", ""} },
		"eleven audience": func(s *tiptest.Setup) { s.Audiences = strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",") },
	} {
		if err := env.AWS.Configure(change); err == nil {
			t.Errorf("%s: Configure accepted it", name)
		}
	}
	if got := env.AWS.Setup(); got.IssuerURL != env.IdP.Issuer() || len(got.Audiences) != 1 {
		t.Fatalf("a refused change was kept: %+v", got)
	}
	// The copy returned by Setup is the caller's own.
	s := env.AWS.Setup()
	s.Audiences[0] = "changed"
	if env.AWS.Setup().Audiences[0] == "changed" {
		t.Fatal("Setup shares its audiences")
	}
}

func TestIdentityCenterReadRefusals(t *testing.T) {
	env := tiptest.New(t)
	ctx := context.Background()
	if err := env.AWS.Configure(func(s *tiptest.Setup) {
		s.DeniedActions = []string{"sso:DescribeApplication", "sso:GetApplicationGrant", "sso:DescribeTrustedTokenIssuer", "iam:GetRole"}
	}); err != nil {
		t.Fatal(err)
	}
	admin := icAdmin(env, nil)
	_, err := admin.DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(env.ApplicationArn)})
	denied := awsWantType[*ssoadmintypes.AccessDeniedException](t, err)
	if !strings.Contains(denied.ErrorMessage(), "sso:DescribeApplication") {
		t.Fatalf("message %q", denied.ErrorMessage())
	}
	awsWantCode(t, err, "AccessDeniedException", http.StatusForbidden)
	_, err = icJWTGrant(env)
	awsWantCode(t, err, "AccessDeniedException", http.StatusForbidden)
	_, err = admin.DescribeTrustedTokenIssuer(ctx, &ssoadmin.DescribeTrustedTokenIssuerInput{TrustedTokenIssuerArn: aws.String(env.AWS.TrustedTokenIssuerArn())})
	awsWantCode(t, err, "AccessDeniedException", http.StatusForbidden)
	_, err = icIAM(env, nil).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("tipkit-access")})
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Sessions of the roles read nothing.
	env2 := tiptest.New(t)
	app, err := awsWebIdentity(env2, env2.IdP.Token("app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	creds := awsCredsOf(app.Credentials)
	_, err = icAdmin(env2, &creds).DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(env2.ApplicationArn)})
	awsWantCode(t, err, "AccessDeniedException", http.StatusForbidden)
	_, err = icIAM(env2, &creds).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("tipkit-access")})
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Unknown resources and malformed input.
	admin2 := icAdmin(env2, nil)
	other := strings.Replace(env2.ApplicationArn, "apl-", "apl-f", 1)[:len(env2.ApplicationArn)]
	_, err = admin2.DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(other)})
	awsWantCode(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = admin2.DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String("arn:aws:sso::123456789012:application/x")})
	awsWantCode(t, err, "ValidationException", http.StatusBadRequest)
	_, err = admin2.GetApplicationGrant(ctx, &ssoadmin.GetApplicationGrantInput{ApplicationArn: aws.String(env2.ApplicationArn), GrantType: "password"})
	awsWantCode(t, err, "ValidationException", http.StatusBadRequest)
	otherTTI := env2.AWS.TrustedTokenIssuerArn()[:len(env2.AWS.TrustedTokenIssuerArn())-12] + "000000000000"
	_, err = admin2.DescribeTrustedTokenIssuer(ctx, &ssoadmin.DescribeTrustedTokenIssuerInput{TrustedTokenIssuerArn: aws.String(otherTTI)})
	awsWantCode(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = icIAM(env2, nil).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("nobody")})
	awsWantCode(t, err, "NoSuchEntity", http.StatusNotFound)
	_, err = icIAM(env2, nil).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("a b")})
	awsWantCode(t, err, "ValidationError", http.StatusBadRequest)
}

func TestIdentityCenterReadSignatures(t *testing.T) {
	env := tiptest.New(t)
	getRole := "Action=GetRole&RoleName=tipkit-access&Version=2010-05-08"
	cases := []struct {
		name   string
		req    sigRequest
		status int
		code   string
	}{
		{"GetRole", sigRequest{body: getRole, service: "iam", region: "us-east-1"}, 200, ""},
		{"GetRole signed for the instance's region", sigRequest{body: getRole, service: "iam", region: "eu-west-1"}, 403, "SignatureDoesNotMatch"},
		{"GetRole signed for sts", sigRequest{body: getRole, service: "sts", region: "us-east-1"}, 403, "SignatureDoesNotMatch"},
		{"GetCallerIdentity signed for iam", sigRequest{body: sigGetCallerIdentity, service: "iam", region: "us-east-1"}, 403, "SignatureDoesNotMatch"},
		{"GetRole with a wrong secret", sigRequest{body: getRole, service: "iam", region: "us-east-1",
			creds: aws.Credentials{AccessKeyID: env.AWS.ServerCredentials().AccessKeyID, SecretAccessKey: strings.Repeat("z", 40)}}, 403, "SignatureDoesNotMatch"},
		{"other IAM action", sigRequest{body: "Action=ListRoles&Version=2010-05-08", service: "iam", region: "us-east-1"}, 400, "InvalidAction"},
		{"DescribeApplication", sigRequest{body: `{"ApplicationArn":"` + env.ApplicationArn + `"}`, service: "sso", region: env.AWS.Region(),
			before: icTarget("DescribeApplication")}, 200, ""},
		{"DescribeApplication signed for sso-oauth", sigRequest{body: `{"ApplicationArn":"` + env.ApplicationArn + `"}`, service: "sso-oauth",
			region: env.AWS.Region(), before: icTarget("DescribeApplication")}, 403, "InvalidSignatureException"},
		{"DescribeApplication unsigned", sigRequest{body: `{"ApplicationArn":"` + env.ApplicationArn + `"}`, service: "sso", region: env.AWS.Region(),
			before: icTarget("DescribeApplication"), after: func(r *http.Request) { r.Header.Del("Authorization") }}, 403, "MissingAuthenticationTokenException"},
		{"unknown sso-admin operation", sigRequest{body: `{}`, service: "sso", region: env.AWS.Region(), before: icTarget("DeleteApplication")},
			400, "UnknownOperationException"},
		{"sso-admin without its content type", sigRequest{body: `{}`, service: "sso", region: env.AWS.Region(), before: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "SWBExternalService.DescribeApplication")
		}}, 400, "SerializationException"},
		{"sso-admin body not JSON", sigRequest{body: `{`, service: "sso", region: env.AWS.Region(), before: icTarget("DescribeApplication")},
			400, "SerializationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.path = "/"
			req.signedAt = time.Now()
			if req.creds.AccessKeyID == "" {
				req.creds = env.AWS.ServerCredentials()
			}
			status, code := sigSend(t, env, req)
			if status != tc.status || code != tc.code {
				t.Fatalf("answer %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

// icTarget sets the headers of an sso-admin operation.
func icTarget(op string) func(r *http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "SWBExternalService."+op)
	}
}

func TestIdentityCenterReadFaults(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.SetFault("DescribeApplication", tiptest.Fault{Code: "ThrottlingException", Times: 1})
	env.AWS.SetFault("GetRole", tiptest.Fault{Code: "Throttling", Times: 1})
	cfg := awsConfig(env, nil)
	_, err := ssoadmin.NewFromConfig(cfg).DescribeApplication(context.Background(), &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(env.ApplicationArn)})
	awsWantCode(t, err, "ThrottlingException", http.StatusTooManyRequests)
	_, err = icIAM(env, nil).GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("tipkit-access")})
	awsWantCode(t, err, "Throttling", http.StatusBadRequest)
	// STS is unaffected by IAM's routing.
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
}
