package tiptest_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	ssooidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/tiptest"
)

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// awsStaticCreds is a credentials provider of fixed credentials.
func awsStaticCreds(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// awsCredsOf converts STS credentials.
func awsCredsOf(c *ststypes.Credentials) aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
	}
}

// awsConfig returns env's config signed with creds (the server user's when
// nil), without retries.
func awsConfig(env *tiptest.Env, creds *aws.Credentials) aws.Config {
	cfg := env.Config()
	cfg.RetryMaxAttempts = 1
	if creds != nil {
		cfg.Credentials = awsStaticCreds(*creds)
	}
	return cfg
}

func awsSTS(env *tiptest.Env, creds *aws.Credentials) *sts.Client {
	return sts.NewFromConfig(awsConfig(env, creds))
}

func awsOIDC(env *tiptest.Env, creds *aws.Credentials) *ssooidc.Client {
	return ssooidc.NewFromConfig(awsConfig(env, creds))
}

// awsWebIdentity calls AssumeRoleWithWebIdentity for the application role.
func awsWebIdentity(env *tiptest.Env, token string, duration int32) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(env.ApplicationRoleArn),
		RoleSessionName:  aws.String("app"),
		WebIdentityToken: aws.String(token),
	}
	if duration > 0 {
		in.DurationSeconds = aws.Int32(duration)
	}
	return awsSTS(env, nil).AssumeRoleWithWebIdentity(context.Background(), in)
}

// awsExchange calls CreateTokenWithIAM with the jwt-bearer grant.
func awsExchange(c *ssooidc.Client, env *tiptest.Env, token string) (*ssooidc.CreateTokenWithIAMOutput, error) {
	return c.CreateTokenWithIAM(context.Background(), &ssooidc.CreateTokenWithIAMInput{
		ClientId:  aws.String(env.ApplicationArn),
		GrantType: aws.String(jwtBearer),
		Assertion: aws.String(token),
	})
}

// awsIdentityContext exchanges a token of user and returns the identity
// context.
func awsIdentityContext(t *testing.T, env *tiptest.Env, user string) string {
	t.Helper()
	out, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token(user))
	if err != nil {
		t.Fatalf("CreateTokenWithIAM: %v", err)
	}
	return aws.ToString(out.AwsAdditionalDetails.IdentityContext)
}

// awsContexts returns n Identity Center provided contexts of assertion.
func awsContexts(assertion string, n int) []ststypes.ProvidedContext {
	out := make([]ststypes.ProvidedContext, n)
	for i := range out {
		out[i] = ststypes.ProvidedContext{
			ProviderArn:      aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"),
			ContextAssertion: aws.String(assertion),
		}
	}
	return out
}

// awsAssumeAccess calls AssumeRole on the access role.
func awsAssumeAccess(c *sts.Client, env *tiptest.Env, duration int32, contexts []ststypes.ProvidedContext) (*sts.AssumeRoleOutput, error) {
	return c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:          aws.String(env.AccessRoleArn),
		RoleSessionName:  aws.String("alice"),
		DurationSeconds:  aws.Int32(duration),
		ProvidedContexts: contexts,
	})
}

// awsWantCode fails t unless err is an API error with code and HTTP
// status.
func awsWantCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not a smithy.APIError, want %s", err, err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("error code %q (%v), want %q", apiErr.ErrorCode(), err, code)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != status {
		t.Fatalf("HTTP status of %v is not %d", err, status)
	}
}

// awsWantType fails t unless err wraps a T.
func awsWantType[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}

func TestNewAWSValidatesOptions(t *testing.T) {
	ok := tiptest.AWSOptions{Issuer: "http://127.0.0.1:1", Audiences: []string{"a"}}
	cases := map[string]func(o *tiptest.AWSOptions){
		"no issuer":        func(o *tiptest.AWSOptions) { o.Issuer = "" },
		"no audience":      func(o *tiptest.AWSOptions) { o.Audiences = nil },
		"11 audiences":     func(o *tiptest.AWSOptions) { o.Audiences = make([]string, 11) },
		"empty audience":   func(o *tiptest.AWSOptions) { o.Audiences = []string{""} },
		"bad region":       func(o *tiptest.AWSOptions) { o.Region = "mars" },
		"bad account":      func(o *tiptest.AWSOptions) { o.AccountID = "12" },
		"negative ttl":     func(o *tiptest.AWSOptions) { o.TokenTTL = -time.Second },
		"negative refresh": func(o *tiptest.AWSOptions) { o.RefreshTokenTTL = -time.Second },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := ok
			mutate(&o)
			if a, err := tiptest.NewAWS(o); err == nil {
				a.Close()
				t.Fatal("NewAWS accepted invalid options")
			}
		})
	}
	a, err := tiptest.NewAWS(ok)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	creds := a.ServerCredentials()
	if !strings.HasPrefix(creds.AccessKeyID, "AKIA") || len(creds.AccessKeyID) != 20 || len(creds.SecretAccessKey) != 40 {
		t.Fatalf("server credentials %q / %d chars", creds.AccessKeyID, len(creds.SecretAccessKey))
	}
	if creds.CanExpire || a.Region() != "us-east-1" || !strings.HasPrefix(a.URL(), "http://127.0.0.1:") {
		t.Fatalf("creds %+v region %q url %q", creds, a.Region(), a.URL())
	}
	if a.ServerUserArn() != "arn:aws:iam::123456789012:user/tipkit-server" || a.AccountID() != "123456789012" {
		t.Fatalf("server user %q account %q", a.ServerUserArn(), a.AccountID())
	}
	a.Close() // twice is fine
}

func TestCallsAndUserAgent(t *testing.T) {
	env := tiptest.New(t)
	c := awsSTS(env, nil)
	for range 3 {
		if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := awsWebIdentity(env, "not a token", 0) // refused, still counted
	awsWantCode(t, err, "InvalidIdentityToken", http.StatusBadRequest)
	if _, err := awsExchange(awsOIDC(env, nil), env, env.IdP.Token("bob")); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"GetCallerIdentity": 3, "AssumeRoleWithWebIdentity": 1, "CreateTokenWithIAM": 1, "AssumeRole": 0}
	for op, n := range want {
		if got := env.AWS.Calls(op); got != n {
			t.Errorf("Calls(%s) = %d, want %d", op, got, n)
		}
	}
	for _, op := range []string{"GetCallerIdentity", "CreateTokenWithIAM"} {
		if ua := env.AWS.LastUserAgent(op); !strings.Contains(ua, "aws-sdk-go-v2") {
			t.Errorf("LastUserAgent(%s) = %q", op, ua)
		}
	}
	if ua := env.AWS.LastUserAgent("AssumeRole"); ua != "" {
		t.Errorf("LastUserAgent(AssumeRole) = %q, want empty", ua)
	}
}

func TestCallCounts(t *testing.T) {
	env := tiptest.New(t)
	if got := env.AWS.CallCounts(); len(got) != 0 {
		t.Fatalf("CallCounts before any call = %v", got)
	}
	c := awsSTS(env, nil)
	for range 2 {
		if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := awsWebIdentity(env, "not a token", 0)
	awsWantCode(t, err, "InvalidIdentityToken", http.StatusBadRequest)
	got := env.AWS.CallCounts()
	if len(got) != 2 || got["GetCallerIdentity"] != 2 || got["AssumeRoleWithWebIdentity"] != 1 {
		t.Fatalf("CallCounts = %v", got)
	}
	got["GetCallerIdentity"] = 99 // a copy
	if n := env.AWS.Calls("GetCallerIdentity"); n != 2 {
		t.Fatalf("Calls after changing the copy = %d", n)
	}
}

func TestHandleControl(t *testing.T) {
	env := tiptest.New(t)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(env.AWS.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Control")
	}
	// Without a handler, the path is what AWS makes of it: an anonymous S3
	// request, refused.
	if status, mark := get(tiptest.ControlPath + "calls"); status == http.StatusOK || mark != "" {
		t.Fatalf("without a handler: %d %q", status, mark)
	}
	env.AWS.HandleControl(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Control", r.URL.Path)
	}))
	if status, mark := get(tiptest.ControlPath + "calls"); status != http.StatusOK || mark != "/_tiptest/calls" {
		t.Fatalf("with a handler: %d %q", status, mark)
	}
	if _, err := awsSTS(env, nil).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS beside the handler: %v", err)
	}
	if status, mark := get("/tiptest/calls"); mark != "" {
		t.Fatalf("a path outside ControlPath reached the handler: %d", status)
	}
	env.AWS.HandleControl(nil)
	if status, mark := get(tiptest.ControlPath + "calls"); status == http.StatusOK || mark != "" {
		t.Fatalf("after HandleControl(nil): %d %q", status, mark)
	}
}

func TestFaultCodes(t *testing.T) {
	env := tiptest.New(t)
	ctx := context.Background()
	stsClient, oidcClient := awsSTS(env, nil), awsOIDC(env, nil)
	callSTS := func() error { _, err := stsClient.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); return err }
	callOIDC := func() error { _, err := awsExchange(oidcClient, env, env.IdP.Token("carol")); return err }
	cases := []struct {
		op, code string
		status   int
		call     func() error
	}{
		{"GetCallerIdentity", "Throttling", 400, callSTS},
		{"GetCallerIdentity", "InternalError", 500, callSTS},
		{"GetCallerIdentity", "ServiceUnavailable", 503, callSTS},
		{"GetCallerIdentity", "AccessDenied", 403, callSTS},
		{"CreateTokenWithIAM", "SlowDownException", 400, callOIDC},
		{"CreateTokenWithIAM", "InternalServerException", 500, callOIDC},
		{"CreateTokenWithIAM", "AccessDeniedException", 400, callOIDC},
		{"CreateTokenWithIAM", "InvalidClientException", 401, callOIDC},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			env.AWS.SetFault(tc.op, tiptest.Fault{Code: tc.code, Times: 1})
			awsWantCode(t, tc.call(), tc.code, tc.status)
			if err := tc.call(); err != nil {
				t.Fatalf("after Times=1: %v", err)
			}
		})
	}
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "SlowDownException"})
	awsWantType[*ssooidctypes.SlowDownException](t, callOIDC())
	awsWantType[*ssooidctypes.SlowDownException](t, callOIDC()) // Times 0: until cleared
	env.AWS.ClearFaults()
	if err := callOIDC(); err != nil {
		t.Fatal(err)
	}
}

func TestFaultTimesWithRetries(t *testing.T) {
	env := tiptest.New(t)
	c := sts.NewFromConfig(env.Config()) // 3 attempts
	env.AWS.SetFault("GetCallerIdentity", tiptest.Fault{Code: "Throttling", Times: 2})
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	if n := env.AWS.Calls("GetCallerIdentity"); n != 3 {
		t.Fatalf("Calls = %d, want 3", n)
	}
}

func TestFaultFraction(t *testing.T) {
	env := tiptest.New(t)
	c := awsSTS(env, nil)
	env.AWS.SetFault("GetCallerIdentity", tiptest.Fault{Code: "Throttling", Fraction: 0.5})
	const n = 200
	failed := 0
	for range n {
		if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			failed++
		}
	}
	// Binomial(200, 0.5): 6 standard deviations either side.
	if sd := math.Sqrt(n * 0.25); math.Abs(float64(failed)-n/2) > 6*sd {
		t.Fatalf("%d of %d calls failed with Fraction 0.5", failed, n)
	}
}

func TestFaultLatency(t *testing.T) {
	env := tiptest.New(t)
	c := awsSTS(env, nil)
	env.AWS.SetFault("GetCallerIdentity", tiptest.Fault{Latency: 100 * time.Millisecond, Times: 1})
	start := time.Now()
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("answered after %v, want at least 100ms", d)
	}

	env.AWS.SetFault("GetCallerIdentity", tiptest.Fault{Latency: time.Minute, Code: "Throttling"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancelled call took %v", d)
	}
}

func TestCloseEndsLatency(t *testing.T) {
	env, err := tiptest.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	env.AWS.SetFault("GetCallerIdentity", tiptest.Fault{Latency: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := awsSTS(env, nil).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		done <- err
	}()
	for env.AWS.Calls("GetCallerIdentity") == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_ = env.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-done; err == nil {
		t.Fatal("call answered although the AWS was closed")
	}
}

// TestFullFlowConcurrent runs the whole exchange for several users at
// once, as a server does: application role, token exchange, identity-
// enhanced session.
func TestFullFlowConcurrent(t *testing.T) {
	env := tiptest.New(t)
	app, err := awsWebIdentity(env, env.IdP.Token("app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	appCreds := awsCredsOf(app.Credentials)
	oidcClient, stsClient := awsOIDC(env, &appCreds), awsSTS(env, &appCreds)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	var wg sync.WaitGroup
	errs := make(chan error, len(users))
	for _, user := range users {
		wg.Go(func() {
			tok, err := awsExchange(oidcClient, env, env.IdP.Token(user))
			if err != nil {
				errs <- err
				return
			}
			out, err := awsAssumeAccess(stsClient, env, 900, awsContexts(aws.ToString(tok.AwsAdditionalDetails.IdentityContext), 1))
			if err != nil {
				errs <- err
				return
			}
			if got, _ := env.AWS.UserFor(aws.ToString(out.Credentials.AccessKeyId)); got != user {
				errs <- errors.New("UserFor = " + got + ", want " + user)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
