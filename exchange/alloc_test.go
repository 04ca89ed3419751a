package exchange

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The fuzz targets check that no answer of AWS makes an exchange panic or
// fail unclassified; they cannot measure memory (a fuzz function runs in
// parallel workers, where testing.AllocsPerRun and runtime.MemStats do
// not measure one call). These tests bound the memory of the inputs that
// could be large: AWS's answers and the user's token.
//
// What is not bounded: the SDK reads an AWS answer whole, and tipkit sets
// no limit on its size; the cost of an answer is linear in its size
// (TestLargeAnswerCostIsLinear), and what a Session keeps of it is only
// the fields it needs (TestLargeAnswerIsNotPinned).

const (
	testAppArn  = "arn:aws:sso::123456789012:application/ssoins-1/apl-1"
	testRoleArn = "arn:aws:iam::123456789012:role/access"
	testToken   = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImp0aSI6ImZ1enoifQ.c2lnbmF0dXJl"
	stsAnswer   = `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey>` +
		`<SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`
)

// cannedExchanger returns an Exchanger whose CreateTokenWithIAM answers
// oidcBody (200, JSON) and whose AssumeRole answers stsBody (200, XML).
func cannedExchanger(t testing.TB, oidcBody, stsBody string) *Exchanger {
	t.Helper()
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIAFUZZ", "secret", ""),
		RetryMaxAttempts: 1,
	}
	oidcCfg, stsCfg := cfg.Copy(), cfg.Copy()
	oidcCfg.HTTPClient = &http.Client{Transport: cannedTransport{200, http.Header{"Content-Type": {"application/json"}}, []byte(oidcBody)}}
	stsCfg.HTTPClient = &http.Client{Transport: cannedTransport{200, http.Header{"Content-Type": {"text/xml"}}, []byte(stsBody)}}
	x, err := New(Options{
		ApplicationArn: testAppArn, AccessRoleArn: testRoleArn,
		SSOOIDCClient: ssooidc.NewFromConfig(oidcCfg), STSClient: sts.NewFromConfig(stsCfg),
		MaxAttempts: 1,
		Now:         func() time.Time { return time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// paddedAnswer is a CreateTokenWithIAM answer with a short identity
// context and access and ID tokens of n bytes each.
func paddedAnswer(n int) string {
	pad := strings.Repeat("a", n)
	return `{"accessToken":"` + pad + `","idToken":"` + pad + `","expiresIn":3600,"awsAdditionalDetails":{"identityContext":"ctx-value"}}`
}

// heap returns the live heap after a collection, and the bytes allocated
// so far.
func heap() (live, total uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.TotalAlloc
}

// leastAllocated returns the bytes f allocates per call, over runs calls:
// the least of three measures, since another goroutine of the test binary
// may allocate during one.
func leastAllocated(runs int, f func()) uint64 {
	least := uint64(1 << 62)
	for range 3 {
		_, start := heap()
		for range runs {
			f()
		}
		_, end := heap()
		least = min(least, (end-start)/uint64(runs))
	}
	return least
}

// TestLargeAnswerIsNotPinned: a Session outlives the answer it came from,
// and keeps only the identity context and credentials, not the 8 MiB of
// access and ID tokens decoded alongside them.
func TestLargeAnswerIsNotPinned(t *testing.T) {
	const n = 4 << 20
	x := cannedExchanger(t, paddedAnswer(n), stsAnswer)
	ctx := context.Background()
	if _, err := x.Exchange(ctx, "warm."+base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"w"}`))+".x"); err != nil {
		t.Fatal(err) // warms the SDK's lazily built state
	}
	before, _ := heap()
	s, err := x.Exchange(ctx, testToken)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := heap()
	runtime.KeepAlive(s)
	if s.IdentityContext != "ctx-value" || !s.Credentials.HasKeys() {
		t.Fatalf("session %v", s)
	}
	if grown := int64(after) - int64(before); grown > 1<<20 {
		t.Fatalf("a Session holds %d KiB more heap after an answer of %d MiB: it pins the answer", grown>>10, 2*n>>20)
	}
}

// TestLargeAnswerCostIsLinear: the bytes allocated to exchange through an
// answer grow with the answer's size, not faster: twice the answer costs
// about twice the bytes, and each byte of answer costs a bounded number
// of bytes.
func TestLargeAnswerCostIsLinear(t *testing.T) {
	cost := func(n int) uint64 {
		x := cannedExchanger(t, paddedAnswer(n), stsAnswer)
		token := func(i int) string {
			return "h." + base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"`+strings.Repeat("j", i+1)+`"}`)) + ".s"
		}
		if _, err := x.Exchange(context.Background(), token(0)); err != nil {
			t.Fatal(err)
		}
		_, start := heap()
		const runs = 3
		for i := range runs {
			if _, err := x.Exchange(context.Background(), token(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		_, end := heap()
		return (end - start) / runs
	}
	const n = 1 << 20 // each of two fields: 2 MiB of answer
	small, large := cost(n), cost(2*n)
	perByte := float64(large) / float64(4*n)
	t.Logf("bytes allocated per exchange: %d KiB for a 2 MiB answer, %d KiB for 4 MiB (%.1f per byte)", small>>10, large>>10, perByte)
	if perByte > 32 { // about 5 without -race, 9 with it
		t.Errorf("%.1f bytes allocated per byte of answer", perByte)
	}
	if ratio := float64(large) / float64(small); ratio > 3 {
		t.Errorf("twice the answer costs %.1f times the bytes", ratio)
	}
}

// TestOversizedIdentityContextRefused: an identity context beyond 2 KiB
// (AWS's are about 1 KiB) is refused as a configuration error, and neither
// it nor the token appear in the error.
func TestOversizedIdentityContextRefused(t *testing.T) {
	for _, n := range []int{2049, 1 << 20} {
		ic := strings.Repeat("c", n)
		x := cannedExchanger(t, `{"expiresIn":3600,"awsAdditionalDetails":{"identityContext":"`+ic+`"}}`, stsAnswer)
		s, err := x.Exchange(context.Background(), testToken)
		var e *Error
		if !errors.As(err, &e) || e.kind != kindConfig || e.Code != "NoIdentityContext" {
			t.Fatalf("identity context of %d bytes: %v, %v; want a kindConfig NoIdentityContext error", n, s, err)
		}
		if msg := err.Error(); strings.Contains(msg, ic[:64]) || strings.Contains(msg, testToken) {
			t.Fatalf("the error repeats the answer or the token: %.200s", msg)
		}
	}
}

// TestPeekSkipsOversizedPayload: the unverified reading of a token decodes
// at most 64 KiB of payload; a larger one is not decoded. Reading it
// allocates at most one copy of the token (hashed into its key: the
// []byte conversion for sha256.Sum256 copies it), where decoding it would
// allocate the decoded payload and its claims besides.
func TestPeekSkipsOversizedPayload(t *testing.T) {
	big := "h." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","jti":"`+strings.Repeat("x", 4<<20)+`"}`)) + ".s"
	if info := peek(big); info.subject != "" || !strings.HasPrefix(info.key, "sha256\x00") {
		t.Fatalf("a %d-byte payload was decoded: %+v", len(big), info)
	}
	per := leastAllocated(10, func() {
		peek(big)
		idTokenClaims(big)
	})
	if per > uint64(len(big))+4<<10 {
		t.Fatalf("reading a %d-byte token allocates %d bytes", len(big), per)
	}
	t.Logf("reading a %d-byte token allocates %d bytes", len(big), per)
}
