package verify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tipkit/tipkit/tiptest"
)

// startIdP starts a local identity provider for the test.
func startIdP(t testing.TB) *tiptest.IdP {
	t.Helper()
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	return idp
}

// issuerOf is the Issuer of idp, with its JWKS found by discovery.
func issuerOf(idp *tiptest.IdP) Issuer {
	return Issuer{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}
}

// newTestVerifier returns a Verifier trusting idp, on idp's clock, after
// the changes of opts.
func newTestVerifier(t testing.TB, idp *tiptest.IdP, opts ...func(*Options)) *Verifier {
	t.Helper()
	o := Options{Issuers: []Issuer{issuerOf(idp)}, Now: idp.Clock().Now}
	for _, f := range opts {
		f(&o)
	}
	v, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// noCache turns off the memory of verified tokens.
func noCache(o *Options) { o.CacheTTL = -1 }

// wantError checks that err is an *Error of kind k whose description
// contains desc, and that its message does not hold token.
func wantError(t testing.TB, err error, token string, k kind, desc string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want an *Error of kind %v", err, k)
	}
	if e.kind != k || !strings.Contains(e.Description, desc) {
		t.Fatalf("error = %v (kind %v), want kind %v and a description with %q", e, e.kind, k, desc)
	}
	if len(token) > 8 && strings.Contains(e.Error(), token) {
		t.Fatalf("error message holds the token: %v", e)
	}
	return e
}

// eventually polls cond until it holds, failing t after 5 s. The first
// fetch's retry interval and the refresh rate limit run on the wall clock,
// which tests cannot move.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// mustVerify verifies token and fails the test on error.
func mustVerify(t testing.TB, v *Verifier, token string) *Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

// claimsFor returns the claims idp would put in a token for user, now.
func claimsFor(idp *tiptest.IdP, user string) jwt.MapClaims {
	now := idp.Clock().Now()
	return jwt.MapClaims{
		"iss": idp.Issuer(), "sub": user, "aud": idp.Audience(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign returns a token signed by key with method, with the extra header
// fields of header.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newRSAKey returns a fresh RSA key that no issuer trusts.
func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// segments splits a token into its three parts.
func segments(token string) (header, payload, sig string) {
	p := strings.SplitN(token, ".", 3)
	return p[0], p[1], p[2]
}
