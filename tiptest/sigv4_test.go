package tiptest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/tiptest"
)

const sigGetCallerIdentity = "Action=GetCallerIdentity&Version=2011-06-15"

// sigRequest describes one hand-signed request.
type sigRequest struct {
	path     string
	body     string
	creds    aws.Credentials
	service  string
	region   string
	signedAt time.Time
	// before changes the request before it is signed, after changes it
	// once signed.
	before, after func(r *http.Request)
}

// sigSend signs and sends req with the SDK signer and returns the status
// and the error code of the answer ("" on success).
func sigSend(t *testing.T, env *tiptest.Env, req sigRequest) (int, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, env.AWS.URL()+req.path, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.before != nil {
		req.before(r)
	}
	sum := sha256.Sum256([]byte(req.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), req.creds, r, hex.EncodeToString(sum[:]),
		req.service, req.region, req.signedAt); err != nil {
		t.Fatal(err)
	}
	if req.after != nil {
		req.after(r)
	}
	return sigDo(t, r)
}

// sigDo sends r and returns the status and error code of the answer.
func sigDo(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	if code := resp.Header.Get("X-Amzn-ErrorType"); code != "" {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || doc["__type"] != code {
			t.Fatalf("restJson1 error body %s does not match X-Amzn-ErrorType %s", body, code)
		}
		return resp.StatusCode, code
	}
	var doc struct {
		Type      string `xml:"Error>Type"`
		Code      string `xml:"Error>Code"`
		Message   string `xml:"Error>Message"`
		RequestID string `xml:"RequestId"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || doc.Type == "" || doc.Message == "" || doc.RequestID == "" {
		t.Fatalf("awsQuery error body %s: %v", body, err)
	}
	return resp.StatusCode, doc.Code
}

// sigBase is a valid GetCallerIdentity request of the server user.
func sigBase(env *tiptest.Env) sigRequest {
	return sigRequest{
		path: "/", body: sigGetCallerIdentity, creds: env.AWS.ServerCredentials(),
		service: "sts", region: env.AWS.Region(), signedAt: time.Now(),
	}
}

func TestSigV4(t *testing.T) {
	env := tiptest.New(t)
	app, err := awsWebIdentity(env, env.IdP.Token("app"), 0)
	if err != nil {
		t.Fatal(err)
	}
	temp := awsCredsOf(app.Credentials)
	cases := []struct {
		name   string
		change func(r *sigRequest)
		status int
		code   string
	}{
		{"valid", func(r *sigRequest) {}, 200, ""},
		{"valid temporary credentials", func(r *sigRequest) { r.creds = temp }, 200, ""},
		{"valid with query and odd headers", func(r *sigRequest) {
			r.path = "/?b=2&a=x%20y&a=1&c=~-._"
			r.before = func(r *http.Request) { r.Header.Add("X-Custom", "  two   spaces ") }
		}, 200, ""},
		{"valid with x-amz-content-sha256", func(r *sigRequest) {
			r.before = func(r *http.Request) {
				sum := sha256.Sum256([]byte(sigGetCallerIdentity))
				r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}
		}, 200, ""},
		{"wrong secret", func(r *sigRequest) { r.creds.SecretAccessKey = strings.Repeat("x", 40) }, 403, "SignatureDoesNotMatch"},
		{"unknown key", func(r *sigRequest) { r.creds.AccessKeyID = "AKIAAAAAAAAAAAAAAAAA" }, 403, "InvalidClientTokenId"},
		{"temporary credentials without token", func(r *sigRequest) { r.creds = temp; r.creds.SessionToken = "" }, 403, "InvalidClientTokenId"},
		{"temporary credentials with wrong token", func(r *sigRequest) { r.creds = temp; r.creds.SessionToken += "x" }, 403, "InvalidClientTokenId"},
		{"long-term key with a token", func(r *sigRequest) { r.creds.SessionToken = "token" }, 403, "InvalidClientTokenId"},
		{"altered body", func(r *sigRequest) {
			r.after = func(req *http.Request) {
				body := sigGetCallerIdentity + "&X=1"
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			}
		}, 403, "SignatureDoesNotMatch"},
		{"altered signed header", func(r *sigRequest) {
			r.after = func(req *http.Request) {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			}
		}, 403, "SignatureDoesNotMatch"},
		{"altered query", func(r *sigRequest) {
			r.path = "/?a=1"
			r.after = func(req *http.Request) { req.URL.RawQuery = "a=2" }
		}, 403, "SignatureDoesNotMatch"},
		{"wrong content hash header", func(r *sigRequest) {
			r.before = func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64)) }
		}, 403, "SignatureDoesNotMatch"},
		{"signed 10 minutes ago", func(r *sigRequest) { r.signedAt = time.Now().Add(-10 * time.Minute) }, 403, "SignatureDoesNotMatch"},
		{"signed 10 minutes ahead", func(r *sigRequest) { r.signedAt = time.Now().Add(10 * time.Minute) }, 403, "SignatureDoesNotMatch"},
		{"wrong service", func(r *sigRequest) { r.service = "iam" }, 403, "SignatureDoesNotMatch"},
		{"wrong region", func(r *sigRequest) { r.region = "eu-west-1" }, 403, "SignatureDoesNotMatch"},
		{"no authorization", func(r *sigRequest) {
			r.after = func(req *http.Request) { req.Header.Del("Authorization") }
		}, 403, "MissingAuthenticationToken"},
		{"other algorithm", func(r *sigRequest) {
			r.after = func(req *http.Request) {
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1))
			}
		}, 400, "IncompleteSignature"},
		{"no signature", func(r *sigRequest) {
			r.after = func(req *http.Request) {
				h := req.Header.Get("Authorization")
				req.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
			}
		}, 400, "IncompleteSignature"},
		{"host not signed", func(r *sigRequest) {
			r.after = func(req *http.Request) {
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;", 1))
			}
		}, 403, "SignatureDoesNotMatch"},
		{"no x-amz-date", func(r *sigRequest) {
			r.after = func(req *http.Request) { req.Header.Del("X-Amz-Date") }
		}, 400, "IncompleteSignature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := sigBase(env)
			tc.change(&req)
			status, code := sigSend(t, env, req)
			if status != tc.status || code != tc.code {
				t.Fatalf("answer %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestSigV4SSOOAuthShape(t *testing.T) {
	env := tiptest.New(t)
	body := `{"clientId":"` + env.ApplicationArn + `","grantType":"` + jwtBearer + `","assertion":"` + env.IdP.Token("alice") + `"}`
	base := func() sigRequest {
		return sigRequest{path: "/token?aws_iam=t", body: body, creds: env.AWS.ServerCredentials(),
			service: "sso-oauth", region: env.AWS.Region(), signedAt: time.Now()}
	}
	cases := []struct {
		name   string
		change func(r *sigRequest)
		status int
		code   string
	}{
		{"wrong secret", func(r *sigRequest) { r.creds.SecretAccessKey = strings.Repeat("y", 40) }, 403, "InvalidSignatureException"},
		{"unknown key", func(r *sigRequest) { r.creds.AccessKeyID = "AKIAAAAAAAAAAAAAAAAA" }, 403, "UnrecognizedClientException"},
		{"signed for sts", func(r *sigRequest) { r.service = "sts" }, 403, "InvalidSignatureException"},
		{"other region", func(r *sigRequest) { r.region = "eu-west-1" }, 400, "InvalidRequestRegionException"},
		{"no authorization", func(r *sigRequest) {
			r.after = func(req *http.Request) { req.Header.Del("Authorization") }
		}, 403, "MissingAuthenticationTokenException"},
		{"valid", func(r *sigRequest) {}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := base()
			tc.change(&req)
			status, code := sigSend(t, env, req)
			if status != tc.status || code != tc.code {
				t.Fatalf("answer %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestSigV4ExpiredCredentials(t *testing.T) {
	env := tiptest.New(t)
	app, err := awsWebIdentity(env, env.IdP.Token("app"), 900)
	if err != nil {
		t.Fatal(err)
	}
	creds := awsCredsOf(app.Credentials)
	c := awsSTS(env, &creds)
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(899 * time.Second)
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("1 s before expiry: %v", err)
	}
	env.Clock.Advance(time.Second)
	_, err = c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	awsWantCode(t, err, "ExpiredToken", http.StatusBadRequest)
	_, err = awsExchange(awsOIDC(env, &creds), env, env.IdP.Token("alice"))
	awsWantCode(t, err, "ExpiredTokenException", http.StatusForbidden)
}

// TestSigV4Garbage sends malformed requests: each must get an error in the
// protocol's shape, never a crash.
func TestSigV4Garbage(t *testing.T) {
	env := tiptest.New(t)
	auths := []string{
		"", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential=",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;x-amz-date, Signature=zz",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
		"AWS4-HMAC-SHA256 Credential=AKIA/20200101/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date;host, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=AKIA/20200101/us-east-1/sts/aws4_request, Credential=x, SignedHeaders=host, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 ,,,=,=", "AWS4-HMAC-SHA256 Credential=\u00e9/\u00e9/\u00e9/\u00e9/\u00e9, SignedHeaders=\u00e9, Signature=\u00e9",
	}
	for _, path := range []string{"/", "/token?aws_iam=t", "/nothing"} {
		for _, auth := range auths {
			for _, body := range []string{sigGetCallerIdentity, "%zz", "{", ""} {
				r, _ := http.NewRequest(http.MethodPost, env.AWS.URL()+path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Authorization", auth)
				r.Header.Set("X-Amz-Date", "20200101T000000Z")
				if status, code := sigDo(t, r); status < 400 || status >= 500 || code == "" {
					t.Fatalf("%s %q %q: answer %d %q", path, auth, body, status, code)
				}
			}
		}
	}
}
