package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/tiptest"
)

// testSystem is the surroundings of a run against env, with the server's
// configuration in the environment variables, and the token on stdin.
func testSystem(env *tiptest.Env, token string, getenv map[string]string) (system, *bytes.Buffer, *bytes.Buffer) {
	vars := map[string]string{
		envIssuer:         env.IdP.Issuer(),
		envAudience:       env.IdP.Audience(),
		envApplicationArn: env.ApplicationArn,
		envAccessRoleArn:  env.AccessRoleArn,
	}
	for k, v := range getenv {
		vars[k] = v
	}
	var stdout, stderr bytes.Buffer
	return system{
		stdin:  strings.NewReader(token),
		stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return vars[k] },
		loadAWS: func(_ context.Context, region string) (aws.Config, error) {
			cfg := env.Config()
			if region != "" {
				cfg.Region = region
			}
			return cfg, nil
		},
		now:        env.Clock.Now,
		httpClient: &http.Client{Timeout: 10 * time.Second},
	}, &stdout, &stderr
}

// runJSON runs the doctor with -json and returns its exit status and
// results.
func runJSON(t *testing.T, sys system, stdout, stderr *bytes.Buffer, args ...string) (int, []result) {
	t.Helper()
	code := run(context.Background(), append([]string{"-json"}, args...), sys)
	var results []result
	dec := json.NewDecoder(stdout)
	dec.DisallowUnknownFields()
	for dec.More() {
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("output is not JSON lines: %v", err)
		}
		results = append(results, r)
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr)
	}
	return code, results
}

// failures returns the failed results.
func failures(results []result) []result {
	var out []result
	for _, r := range results {
		if r.Status == statusFail {
			out = append(out, r)
		}
	}
	return out
}

// find returns the result of check.
func find(t *testing.T, results []result, check string) result {
	t.Helper()
	for _, r := range results {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", check, results)
	return result{}
}

// doctorCase is one setup the doctor is run on.
type doctorCase struct {
	name  string
	setup func(s *tiptest.Setup)
	prep  func(env *tiptest.Env)
	token func(env *tiptest.Env) string
	vars  func(env *tiptest.Env) map[string]string
	args  func(env *tiptest.Env) []string
	// wantFail is the one check that fails, "" for none; wantCause a part
	// of its cause (or of its first open cause).
	wantFail, wantCause string
	// check, when set, looks further at the results.
	check func(t *testing.T, env *tiptest.Env, results []result)
}

func alice(env *tiptest.Env) string { return env.IdP.Token("alice") }

func withArgs(args ...string) func(*tiptest.Env) []string {
	return func(*tiptest.Env) []string { return args }
}

// allOK fails t unless every check passed.
func allOK(t *testing.T, _ *tiptest.Env, results []result) {
	t.Helper()
	for _, r := range results {
		if r.Status != statusOK {
			t.Errorf("%s: %s %s%s", r.Check, r.Status, r.Detail, r.Cause)
		}
	}
}

// skipped fails t unless check was skipped with a reason holding want.
func skipped(check, want string) func(t *testing.T, env *tiptest.Env, results []result) {
	return func(t *testing.T, _ *tiptest.Env, results []result) {
		t.Helper()
		if r := find(t, results, check); r.Status != statusSkip || !strings.Contains(r.Detail, want) {
			t.Errorf("%s: %s %q, want a skip saying %q", check, r.Status, r.Detail, want)
		}
	}
}

var denyReads = func(s *tiptest.Setup) {
	s.DeniedActions = []string{"sso:DescribeApplication", "sso:GetApplicationGrant", "sso:DescribeTrustedTokenIssuer", "iam:GetRole"}
}

func doctorCases() []doctorCase {
	return []doctorCase{
		{name: "good setup", token: alice, check: func(t *testing.T, env *tiptest.Env, results []result) {
			allOK(t, env, results)
			if len(results) != 17 {
				t.Errorf("%d checks, want 17", len(results))
			}
			if env.AWS.Calls("CreateTokenWithIAM") != 0 {
				t.Error("the token was sent to CreateTokenWithIAM without -exchange")
			}
		}},
		{name: "good setup, exchanged", token: alice, args: withArgs("-exchange"), check: func(t *testing.T, env *tiptest.Env, results []result) {
			allOK(t, env, results)
			if r := find(t, results, "exchange.identity"); !strings.Contains(r.Detail, "assumed-role/tipkit-access/") {
				t.Errorf("exchange.identity: %s", r.Detail)
			}
			if env.AWS.Calls("CreateTokenWithIAM") != 1 {
				t.Errorf("%d CreateTokenWithIAM, want 1", env.AWS.Calls("CreateTokenWithIAM"))
			}
		}},
		{name: "good setup with an application role, exchanged", token: alice,
			args: func(env *tiptest.Env) []string {
				return []string{"-exchange", "-application-role-arn", env.ApplicationRoleArn}
			},
			check: func(t *testing.T, env *tiptest.Env, results []result) {
				allOK(t, env, results)
				if r := find(t, results, "iam.access-role"); !strings.Contains(r.Detail, "allows "+env.ApplicationRoleArn) {
					t.Errorf("the trust policy was not checked for the application role: %s", r.Detail)
				}
				if env.AWS.Calls("AssumeRoleWithWebIdentity") != 2 {
					t.Errorf("%d AssumeRoleWithWebIdentity, want 2 (the check and the exchange)", env.AWS.Calls("AssumeRoleWithWebIdentity"))
				}
			}},
		{name: "TIPKIT_ISSUER ends with a slash", token: alice,
			vars:     func(env *tiptest.Env) map[string]string { return map[string]string{envIssuer: env.IdP.Issuer() + "/"} },
			wantFail: "issuer.config", wantCause: "TIPKIT_ISSUER ends with a slash and the token's iss does not"},
		{name: "trusted token issuer URL ends with a slash", token: alice,
			setup:    func(s *tiptest.Setup) { s.IssuerURL += "/" },
			wantFail: "identitycenter.issuer", wantCause: "the trusted token issuer's URL ends with a slash and the token's iss does not"},
		{name: "trusted token issuer of another identity provider", token: alice,
			setup:    func(s *tiptest.Setup) { s.IssuerURL = "https://idp.example.com" },
			wantFail: "identitycenter.issuer", wantCause: `has the issuer URL "https://idp.example.com"`},
		{name: "audience not authorized", token: alice,
			setup:    func(s *tiptest.Setup) { s.Audiences = []string{"another-app"} },
			wantFail: "identitycenter.audience", wantCause: `authorizes the audiences ["another-app"]`},
		{name: "no JWT bearer grant", token: alice,
			setup:    func(s *tiptest.Setup) { s.JWTBearerGrant = false },
			wantFail: "identitycenter.grant", wantCause: "no JWT bearer grant",
			check: skipped("identitycenter.audience", "needs identitycenter.issuer")},
		{name: "trust policy without sts:SetContext", token: alice,
			setup:    func(s *tiptest.Setup) { s.AccessRoleSetContext = false },
			wantFail: "iam.access-role", wantCause: "does not allow sts:SetContext to arn:aws:iam::123456789012:user/tipkit-server"},
		{name: "token without jti",
			token: func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"jti": nil}))
			},
			wantFail: "token.jti", wantCause: "no token id (jti)"},
		{name: "expired token",
			token: func(env *tiptest.Env) string {
				tok := env.IdP.Token("alice") // valid for an hour
				env.Clock.Advance(65 * time.Minute)
				return tok
			},
			wantFail: "token.expiry", wantCause: "the token expired 5m",
			check: func(t *testing.T, _ *tiptest.Env, results []result) {
				if r := find(t, results, "issuer.signature"); r.Status != statusOK {
					t.Errorf("the signature of an expired token is still judged: %+v", r)
				}
			}},
		{name: "token that expires before it is issued",
			token:    func(env *tiptest.Env) string { return env.IdP.Token("alice", tiptest.WithLifetime(-5*time.Minute)) },
			wantFail: "token.expiry", wantCause: "is not after its iat",
			check: skipped("issuer.signature", "valid at no time")},
		{name: "user claim absent",
			token: func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"email": nil}))
			},
			wantFail: "token.user-claim", wantCause: "no email claim"},
		{name: "user unknown to Identity Center", token: alice, args: withArgs("-exchange"),
			prep:     func(env *tiptest.Env) { env.AWS.RemoveUser("alice") },
			wantFail: "exchange", wantCause: `no user of IAM Identity Center has emails.value equal to the token's email "alice@example.com"`,
			check: func(t *testing.T, _ *tiptest.Env, results []result) {
				r := find(t, results, "exchange")
				if len(r.Causes) != 2 || !strings.Contains(r.Causes[1], "exchanged before") {
					t.Errorf("causes %q: want the user, then a spent token", r.Causes)
				}
				if s := find(t, results, "exchange.identity"); s.Status != statusSkip {
					t.Errorf("exchange.identity %s", s.Status)
				}
			}},
		{name: "application that does not exist", token: alice,
			setup:    func(s *tiptest.Setup) { s.Application = false },
			wantFail: "identitycenter.application", wantCause: "has no application arn:aws:sso::123456789012:application/"},
		{name: "TIPKIT_APPLICATION_ARN of another application", token: alice,
			args:     withArgs("-application-arn", "arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-ffffffffffffffff"),
			wantFail: "identitycenter.application", wantCause: "has no application arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-ffffffffffffffff"},
		{name: "access role that does not exist", token: alice,
			setup:    func(s *tiptest.Setup) { s.AccessRole = false },
			wantFail: "iam.access-role", wantCause: "there is no role tipkit-access in account 123456789012"},
		{name: "TIPKIT_ACCESS_ROLE_ARN of another role", token: alice,
			args:     withArgs("-access-role-arn", "arn:aws:iam::123456789012:role/nobody"),
			wantFail: "iam.access-role", wantCause: "there is no role nobody"},
		{name: "TIPKIT_AUDIENCE is not the token's", token: alice,
			vars:     func(*tiptest.Env) map[string]string { return map[string]string{envAudience: "api://other, another"} },
			wantFail: "audience", wantCause: `the token's aud ["tipkit-test"] holds none of TIPKIT_AUDIENCE ["api://other", "another"]`},
		{name: "trusted token issuer maps another claim", token: alice,
			setup:    func(s *tiptest.Setup) { s.ClaimAttributePath = "upn" },
			wantFail: "identitycenter.issuer", wantCause: "maps users by the claim upn, which the token lacks"},
		{name: "tampered token",
			token: func(env *tiptest.Env) string {
				tok := env.IdP.Token("alice")
				return tok[:len(tok)-4] + "AAAA"
			},
			wantFail: "issuer.signature", wantCause: "signature is invalid"},
		{name: "unknown key",
			token: func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithHeader(map[string]any{"kid": "retired-key"}))
			},
			wantFail: "issuer.keys", wantCause: `has no key "retired-key"`},
		{name: "not a JWT", token: func(*tiptest.Env) string { return "opaque-access-token" },
			wantFail: "token.format", wantCause: "not a JWT",
			check: skipped("issuer.discovery", "needs token.claims")},
		{name: "reads refused", token: alice, setup: denyReads,
			check: func(t *testing.T, env *tiptest.Env, results []result) {
				skipped("identitycenter.application", "needs sso:DescribeApplication on "+env.ApplicationArn)(t, env, results)
				skipped("iam.access-role", "needs iam:GetRole on "+env.AccessRoleArn)(t, env, results)
				skipped("identitycenter.issuer", "needs identitycenter.grant")(t, env, results)
			}},
		{name: "reads refused, exchange refused for the audience", token: alice, args: withArgs("-exchange"),
			setup:    func(s *tiptest.Setup) { denyReads(s); s.Audiences = []string{"another-app"} },
			wantFail: "exchange", wantCause: "no trusted token issuer of the application's JWT bearer grant has exactly the token's iss",
			check: func(t *testing.T, _ *tiptest.Env, results []result) {
				r := find(t, results, "exchange")
				if len(r.Causes) != 4 || !strings.Contains(r.Causes[1], "does not authorize the token's aud") {
					t.Errorf("causes %q: want issuer, audience, user, spent token", r.Causes)
				}
			}},
		{name: "reads refused, AssumeRole refused without sts:SetContext", token: alice, args: withArgs("-exchange"),
			setup:    func(s *tiptest.Setup) { denyReads(s); s.AccessRoleSetContext = false },
			wantFail: "exchange", wantCause: "does not allow arn:aws:iam::123456789012:user/tipkit-server sts:AssumeRole and sts:SetContext"},
		{name: "misconfigured, exchange not attempted", token: alice, args: withArgs("-exchange"),
			setup:    func(s *tiptest.Setup) { s.Audiences = []string{"another-app"} },
			wantFail: "identitycenter.audience", wantCause: "authorizes the audiences",
			check: func(t *testing.T, env *tiptest.Env, results []result) {
				skipped("exchange", "not attempted: identitycenter.audience failed")(t, env, results)
				if env.AWS.Calls("CreateTokenWithIAM") != 0 {
					t.Error("the token was spent on a known failure")
				}
			}},
	}
}

func TestDoctor(t *testing.T) {
	for _, tc := range doctorCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tiptest.New(t)
			if tc.setup != nil {
				if err := env.AWS.Configure(tc.setup); err != nil {
					t.Fatal(err)
				}
			}
			if tc.prep != nil {
				tc.prep(env)
			}
			token := tc.token(env)
			var vars map[string]string
			if tc.vars != nil {
				vars = tc.vars(env)
			}
			var args []string
			if tc.args != nil {
				args = tc.args(env)
			}
			sys, stdout, stderr := testSystem(env, token, vars)
			code, results := runJSON(t, sys, stdout, stderr, args...)
			if strings.Contains(stdout.String(), token) {
				t.Fatal("the token was printed")
			}
			failed := failures(results)
			switch {
			case tc.wantFail == "" && (code != 0 || len(failed) > 0):
				t.Fatalf("exit %d, failures %+v; want none", code, failed)
			case tc.wantFail != "" && (code != 1 || len(failed) != 1 || failed[0].Check != tc.wantFail):
				t.Fatalf("exit %d, failures %+v; want exactly %s", code, failed, tc.wantFail)
			case tc.wantFail != "":
				text := failed[0].Cause + " " + strings.Join(failed[0].Causes, " ")
				if !strings.Contains(text, tc.wantCause) || failed[0].Fix == "" {
					t.Fatalf("%s: cause %q, fix %q; want a cause with %q and a fix", tc.wantFail, text, failed[0].Fix, tc.wantCause)
				}
			}
			if tc.check != nil {
				tc.check(t, env, results)
			}
		})
	}
}
