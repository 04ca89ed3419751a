package exchange

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// FuzzPeek feeds arbitrary tokens to the unverified claim reader and the
// spent-token bookkeeping: neither may panic, and a token may only be
// claimed once.
func FuzzPeek(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.",
		"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImEiLCJqdGkiOiJqMSIsImV4cCI6MjAwMDAwMDAwMH0.c2ln",
		"x.eyJleHAiOiIxIn0.y", "x.eyJleHAiOjFlMzA4fQ.y", "x.bnVsbA.y",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		info := peek(token)
		if info.key == "" {
			t.Fatal("empty key")
		}
		// A payload over maxPeekSize is not decoded: reading a token costs
		// at most one hash of it, whatever it holds.
		if parts := strings.Split(token, "."); len(parts) > 1 && len(parts[1]) > maxPeekSize && (info.issuer != "" || info.subject != "" || !info.expires.IsZero()) {
			t.Fatalf("a payload over %d bytes was decoded: %+v", maxPeekSize, info)
		}
		_ = idTokenClaims(token)
		var s spentSet
		now := time.Unix(1_700_000_000, 0)
		if !s.claim(info, now) || s.claim(info, now) {
			t.Fatal("a token was claimable twice, or not at all")
		}
	})
}

// cannedTransport answers every request with one fixed response: the
// bytes under test, as if AWS had sent them.
type cannedTransport struct {
	status int
	header http.Header
	body   []byte
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: c.status, Header: c.header.Clone(), Request: r,
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)),
	}, nil
}

// FuzzAWSResponses serves arbitrary bodies and statuses as the answers of
// CreateTokenWithIAM and AssumeRole to the real SDK clients, and checks
// that an exchange never panics, fails only with an *Error, and never puts
// the token or what AWS sent into its message.
func FuzzAWSResponses(f *testing.F) {
	f.Add(200, "application/json", `{"accessToken":"a","expiresIn":3600,"awsAdditionalDetails":{"identityContext":"ctx-value"}}`,
		200, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`)
	f.Add(400, "application/json", `{"error":"invalid_grant","error_description":"no"}`, 200, ``)
	f.Add(200, "application/json", `{"idToken":"a.eyJzdHM6aWRlbnRpdHlfY29udGV4dCI6ImN0eCJ9.b","expiresIn":-5}`,
		403, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>m</Message></Error></ErrorResponse>`)
	f.Add(200, "application/json", `{"awsAdditionalDetails":{"identityContext":"abcd"}}`, 200, `<AssumeRoleResponse><AssumeRoleResult><Credentials/></AssumeRoleResult></AssumeRoleResponse>`)
	f.Add(500, "text/html", `<html>`, 503, `not xml`)
	f.Add(200, "application/json", `{"awsAdditionalDetails":{"identityContext":"abcd"}}`, 400, `<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>`)
	f.Fuzz(func(t *testing.T, oidcStatus int, oidcType, oidcBody string, stsStatus int, stsBody string) {
		if oidcStatus < 100 || oidcStatus > 599 || stsStatus < 100 || stsStatus > 599 {
			t.Skip()
		}
		cfg := aws.Config{
			Region:           "us-east-1",
			Credentials:      credentials.NewStaticCredentialsProvider("AKIAFUZZ", "secret", ""),
			RetryMaxAttempts: 1,
		}
		oidcCfg, stsCfg := cfg.Copy(), cfg.Copy()
		oidcCfg.HTTPClient = &http.Client{Transport: cannedTransport{oidcStatus, http.Header{"Content-Type": {oidcType}}, []byte(oidcBody)}}
		stsCfg.HTTPClient = &http.Client{Transport: cannedTransport{stsStatus, http.Header{"Content-Type": {"text/xml"}}, []byte(stsBody)}}
		x, err := New(Options{
			ApplicationArn: "arn:aws:sso::123456789012:application/ssoins-1/apl-1",
			AccessRoleArn:  "arn:aws:iam::123456789012:role/access",
			SSOOIDCClient:  ssooidc.NewFromConfig(oidcCfg),
			STSClient:      sts.NewFromConfig(stsCfg),
			MaxAttempts:    1,
			Now:            func() time.Time { return time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC) },
		})
		if err != nil {
			t.Fatal(err)
		}
		const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImp0aSI6ImZ1enoifQ.c2lnbmF0dXJl"
		s, err := x.Exchange(context.Background(), token)
		if err == nil {
			if !s.Credentials.HasKeys() || s.IdentityContext == "" {
				t.Fatalf("success without credentials or identity context: %v", s)
			}
			// What a Session keeps of an answer of any size is bounded:
			// the identity context it will send STS again is at most 2 KiB.
			if n := len(s.IdentityContext); n < 4 || n > 2048 {
				t.Fatalf("an identity context of %d bytes accepted", n)
			}
			if s.Credentials.Expires.IsZero() {
				t.Fatalf("credentials without an expiry: %v", s)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.kind < kindConfig || e.kind > kindReauthenticate {
			t.Fatalf("unclassified error %T %v", err, err)
		}
		msg := err.Error()
		if strings.Contains(msg, token) || (len(oidcBody) > 8 && strings.Contains(msg, oidcBody)) || (len(stsBody) > 8 && strings.Contains(msg, stsBody)) {
			t.Fatalf("the error message repeats the token or AWS's answer: %q", msg)
		}
	})
}
