package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/tiptest"
)

// noAWS is a system whose AWS configuration must not be loaded.
func noAWS(stdin string) (system, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return system{
		stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" },
		loadAWS: func(context.Context, string) (aws.Config, error) {
			return aws.Config{}, errors.New("no AWS in this test")
		},
		now: time.Now,
	}, &stdout, &stderr
}

func TestHelp(t *testing.T) {
	sys, stdout, stderr := noAWS("")
	if code := run(context.Background(), []string{"-h"}, sys); code != 0 {
		t.Fatalf("-h exits %d", code)
	}
	help := stderr.String()
	for _, want := range []string{
		"-token ", "-token-file", "-issuer", "-audience", "-application-arn", "-access-role-arn", "-application-role-arn",
		"-region", "-user-claim", "-exchange", "-follow-token-issuer", "-json", "-timeout", "TIPKIT_ISSUER", "TIPKIT_AUDIENCE", "TIPKIT_APPLICATION_ARN",
		"TIPKIT_ACCESS_ROLE_ARN", "TIPKIT_APPLICATION_ROLE_ARN", "AWS_REGION", "AWS_ENDPOINT_URL", "sso:DescribeApplication",
		"sso:GetApplicationGrant", "sso:DescribeTrustedTokenIssuer", "iam:GetRole", "sts:SetContext", "Exit status",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("-h wrote to stdout: %q", stdout)
	}
	// Every check the doctor runs is explained.
	for _, tc := range []string{"token.format", "token.claims", "token.expiry", "token.jti", "token.user-claim", "issuer.config",
		"issuer.discovery", "issuer.keys", "issuer.signature", "audience", "aws.config", "aws.identity", "aws.application-role",
		"identitycenter.application", "identitycenter.grant", "identitycenter.issuer", "identitycenter.audience", "iam.access-role",
		"exchange", "exchange.identity"} {
		if !strings.Contains(help, "\n  "+tc+" ") {
			t.Errorf("-h does not explain %s", tc)
		}
	}
}

func TestBadUsage(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), maxTokenInput+1), 0o600); err != nil {
		t.Fatal(err)
	}
	const app = "arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-0a1b2c3d4e5f6a7b"
	const role = "arn:aws:iam::123456789012:role/access"
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"-no-such-flag"}, "a.b.c", "flag provided but not defined"},
		{[]string{"extra"}, "a.b.c", "unexpected argument"},
		{[]string{"-token", "a.b.c", "-token-file", big}, "", "not both"},
		{nil, "  \n", "no token"},
		{[]string{"-token", "Bearer "}, "", "no token"},
		{[]string{"-token-file", filepath.Join(dir, "missing")}, "", "reading -token-file"},
		{[]string{"-token-file", big}, "", "longer than"},
		{nil, strings.Repeat("a", maxTokenInput+1), "longer than"},
		{[]string{"-application-arn", "arn:aws:iam::123456789012:role/x"}, "a.b.c", "not an IAM Identity Center application ARN"},
		{[]string{"-access-role-arn", "role/x"}, "a.b.c", "not an IAM role ARN"},
		{[]string{"-application-role-arn", "arn:aws:sso::123456789012:application/x"}, "a.b.c", "not an IAM role ARN"},
		{[]string{"-access-role-arn", role, "-application-role-arn", role}, "a.b.c", "must be different roles"},
		{[]string{"-exchange", "-application-arn", app}, "a.b.c", "-exchange needs"},
		{[]string{"-exchange", "-access-role-arn", role}, "a.b.c", "-exchange needs"},
		{[]string{"-user-claim", " "}, "a.b.c", "-user-claim"},
		{[]string{"-timeout", "0s"}, "a.b.c", "-timeout"},
	}
	for _, tc := range cases {
		sys, stdout, stderr := noAWS(tc.stdin)
		if code := run(context.Background(), tc.args, sys); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%q: stderr %q, stdout %q; want %q on stderr only", tc.args, stderr, stdout, tc.want)
		}
	}
}

func TestTokenSources(t *testing.T) {
	env := tiptest.New(t)
	token := env.IdP.Token("alice")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("Bearer "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args  []string
		stdin string
	}{
		"flag":              {[]string{"-token", token}, ""},
		"file with Bearer":  {[]string{"-token-file", file}, ""},
		"file - is stdin":   {[]string{"-token-file", "-"}, token},
		"stdin with spaces": {nil, "\n  bearer " + token + "  \n"},
	} {
		sys, stdout, stderr := testSystem(env, tc.stdin, nil)
		code, results := runJSON(t, sys, stdout, stderr, tc.args...)
		if code != 0 || find(t, results, "issuer.signature").Status != statusOK {
			t.Errorf("%s: exit %d, %+v", name, code, results)
		}
	}
}

func TestTextReport(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.IssuerURL += "/" }); err != nil {
		t.Fatal(err)
	}
	token := env.IdP.Token("alice")
	sys, stdout, _ := testSystem(env, token, nil)
	if code := run(context.Background(), nil, sys); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	fails := 0
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "ok    "), strings.HasPrefix(l, "skip  "):
		case strings.HasPrefix(l, "FAIL  identitycenter.issuer "):
			fails++
			if !strings.Contains(strings.Join(lines[i+1:], "\n"), "fix: ") {
				t.Errorf("no fix after %q", l)
			}
		case strings.HasPrefix(l, strings.Repeat(" ", 6+nameWidth+1)):
			// a fix, or a continued line
		default:
			t.Errorf("line %q", l)
		}
		if strings.HasPrefix(l, " ") && len(l) > lineWidth && strings.Contains(strings.TrimSpace(l), " ") {
			t.Errorf("line of %d bytes: %q", len(l), l)
		}
	}
	if fails != 1 || strings.Contains(stdout.String(), token) {
		t.Fatalf("report:\n%s", stdout)
	}
}

func TestMissingSettings(t *testing.T) {
	env := tiptest.New(t)
	sys, stdout, stderr := testSystem(env, env.IdP.Token("alice"), map[string]string{
		envIssuer: "", envAudience: "", envApplicationArn: "", envAccessRoleArn: "",
	})
	code, results := runJSON(t, sys, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %+v", code, failures(results))
	}
	for check, want := range map[string]string{
		"issuer.config":              "TIPKIT_ISSUER (-issuer) is not set",
		"audience":                   "TIPKIT_AUDIENCE (-audience) is not set",
		"identitycenter.application": "TIPKIT_APPLICATION_ARN (-application-arn) is not set",
		"iam.access-role":            "TIPKIT_ACCESS_ROLE_ARN (-access-role-arn) is not set",
	} {
		skipped(check, want)(t, env, results)
	}
}

func TestAWSConfigProblems(t *testing.T) {
	env := tiptest.New(t)
	token := env.IdP.Token("alice")

	// No region.
	sys, stdout, stderr := testSystem(env, token, nil)
	sys.loadAWS = func(context.Context, string) (aws.Config, error) { c := env.Config(); c.Region = ""; return c, nil }
	code, results := runJSON(t, sys, stdout, stderr)
	if f := failures(results); code != 1 || len(f) != 1 || f[0].Check != "aws.config" || !strings.Contains(f[0].Fix, "AWS_REGION") {
		t.Fatalf("no region: exit %d, %+v", code, f)
	}

	// No configuration at all.
	sys, stdout, stderr = testSystem(env, token, nil)
	sys.loadAWS = func(context.Context, string) (aws.Config, error) { return aws.Config{}, errors.New("bad profile") }
	code, results = runJSON(t, sys, stdout, stderr)
	if f := failures(results); code != 1 || len(f) != 1 || f[0].Check != "aws.config" || !strings.Contains(f[0].Cause, "bad profile") {
		t.Fatalf("no configuration: exit %d, %+v", code, f)
	}

	// No credentials: the server's own sign the exchange without an
	// application role.
	noCreds := func(context.Context, string) (aws.Config, error) {
		c := env.Config()
		c.Credentials = nil
		return c, nil
	}
	sys, stdout, stderr = testSystem(env, token, nil)
	sys.loadAWS = noCreds
	code, results = runJSON(t, sys, stdout, stderr)
	if f := failures(results); code != 1 || len(f) != 1 || f[0].Check != "aws.identity" {
		t.Fatalf("no credentials: exit %d, %+v", code, f)
	}
	skipped("identitycenter.application", "needs aws.identity")(t, env, results)

	// With an application role they are not needed.
	sys, stdout, stderr = testSystem(env, token, map[string]string{envApplicationRoleArn: env.ApplicationRoleArn})
	sys.loadAWS = noCreds
	code, results = runJSON(t, sys, stdout, stderr)
	if code != 0 || find(t, results, "aws.application-role").Status != statusOK {
		t.Fatalf("application role without credentials: exit %d, %+v", code, results)
	}
	skipped("aws.identity", "a server with an application role needs none")(t, env, results)

	// Wrong secret key.
	sys, stdout, stderr = testSystem(env, token, nil)
	sys.loadAWS = func(context.Context, string) (aws.Config, error) {
		c := env.Config()
		keys := env.AWS.ServerCredentials()
		keys.SecretAccessKey = strings.Repeat("x", 40)
		c.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return keys, nil })
		return c, nil
	}
	code, results = runJSON(t, sys, stdout, stderr)
	if f := failures(results); code != 1 || len(f) != 1 || !strings.Contains(f[0].Cause, "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: exit %d, %+v", code, f)
	}
}

func TestApplicationRoleRefused(t *testing.T) {
	env := tiptest.New(t)
	// A token of another audience: the IAM OIDC provider does not list it.
	token := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"aud": "other"}))
	sys, stdout, stderr := testSystem(env, token, map[string]string{envApplicationRoleArn: env.ApplicationRoleArn, envAudience: "other"})
	code, results := runJSON(t, sys, stdout, stderr)
	f := failures(results)
	if code != 1 || len(f) != 2 || f[0].Check != "aws.application-role" || !strings.Contains(f[0].Cause, "InvalidIdentityToken") ||
		f[1].Check != "identitycenter.audience" {
		t.Fatalf("exit %d, %+v", code, f)
	}
}

// A token whose claims tag the application role's session, and a trust
// policy that lets them, fail the check: the server refuses such a session.
func TestApplicationRoleTaggedByToken(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.ApplicationRoleTagSession = true }); err != nil {
		t.Fatal(err)
	}
	token := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"https://aws.amazon.com/tags": map[string]any{
		"principal_tags": map[string]any{"department": []any{"finance"}}, "transitive_tag_keys": []any{"department"},
	}}))
	sys, stdout, stderr := testSystem(env, token, map[string]string{envApplicationRoleArn: env.ApplicationRoleArn})
	code, results := runJSON(t, sys, stdout, stderr)
	r := find(t, results, "aws.application-role")
	if code != 1 || r.Status == statusOK || !strings.Contains(r.Cause, "session tags") || strings.Contains(r.Cause+r.Fix, "finance") {
		t.Fatalf("exit %d, %+v", code, r)
	}
}

// TestOddTokens runs the doctor on malformed tokens: it must refuse them
// with a FAIL, never panic, never print them.
func TestOddTokens(t *testing.T) {
	env := tiptest.New(t)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := b64(`{"alg":"RS256","kid":"k"}`)
	for _, tok := range []string{
		"a.b.c", "....", "x.y.z.w.v", hdr + "." + b64(`[]`) + ".c2ln", b64(`null`) + "." + b64(`{}`) + ".c2ln",
		hdr + "." + b64(`{"iss":1,"sub":[],"aud":{},"exp":"soon","iat":-1,"nbf":1e300,"jti":5,"email":{}}`) + ".c2ln",
		hdr + "." + b64(`{"iss":"http://127.0.0.1:1","sub":"a","aud":["a",2],"exp":99999999999999}`) + ".c2ln",
		hdr + "." + b64(`{"iss":"ftp://x","sub":"a","aud":"a","exp":1,"iat":2}`) + ".c2ln",
		b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".",
		b64(`{"alg":"HS256","kid":"k","typ":"text","crit":["x"]}`) + "." + b64(`{}`) + ".c2ln",
		hdr + "." + b64(`{"iss":"http://127.0.0.1:1/","sub":"a","aud":"a","exp":4102444800,"iat":1,"jti":"j","email":"e"}`) + ".c2ln",
	} {
		sys, stdout, stderr := testSystem(env, tok, nil)
		code, results := runJSON(t, sys, stdout, stderr, "-timeout", "20s")
		if code != 1 || len(failures(results)) == 0 {
			t.Errorf("%q: exit %d, %+v", tok, code, results)
		}
		if strings.Contains(stdout.String(), tok) {
			t.Errorf("%q was printed", tok)
		}
	}
}
