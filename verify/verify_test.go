package verify

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tipkit/tipkit/tiptest"
)

var b64 = base64.RawURLEncoding.EncodeToString

// TestVerifyAttacks runs tokens an attacker could send, and a few valid
// ones, through a Verifier.
func TestVerifyAttacks(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, noCache)
	kids := idp.KeyIDs()
	pub := idp.PublicKey("RS256").(*rsa.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	evil := newRSAKey(t)
	evilJWK := map[string]any{"kty": "RSA", "kid": "evil", "n": b64(evil.N.Bytes()), "e": b64(big.NewInt(int64(evil.E)).Bytes())}
	now := idp.Clock().Now()
	in := func(d time.Duration) int64 { return now.Add(d).Unix() }
	tok := func(opts ...tiptest.TokenOption) func() string {
		return func() string { return idp.Token("alice", opts...) }
	}
	claims := func(c map[string]any) func() string { return tok(tiptest.WithClaims(c)) }
	header := func(h map[string]any) func() string { return tok(tiptest.WithHeader(h)) }
	// forge replaces the header of a valid token, keeping its signature.
	forge := func(h string) func() string {
		return func() string {
			_, p, s := segments(idp.Token("alice"))
			return b64([]byte(h)) + "." + p + "." + s
		}
	}
	valid := idp.Token("alice")

	cases := []struct {
		name  string
		token func() string
		kind  kind // 0: valid
		desc  string
	}{
		{"valid RS256", tok(), 0, ""},
		{"valid ES256", tok(tiptest.WithAlg("ES256")), 0, ""},
		{"valid EdDSA", tok(tiptest.WithAlg("EdDSA")), 0, ""},
		{"typ at+jwt", header(map[string]any{"typ": "application/AT+JWT"}), 0, ""},
		{"no typ", header(map[string]any{"typ": nil}), 0, ""},
		{"aud list", claims(map[string]any{"aud": []string{"other", idp.Audience()}}), 0, ""},
		{"expired within leeway", tok(tiptest.WithLifetime(-10 * time.Second)), 0, ""},
		{"jku ignored", header(map[string]any{"jku": "http://127.0.0.1:1/jwks"}), 0, ""},

		{"alg none", forge(`{"alg":"none","typ":"JWT","kid":"` + kids["RS256"] + `"}`), kindInvalid, "algorithm is not accepted"},
		{"alg none no signature", func() string { h, p, _ := segments(forge(`{"alg":"none","kid":"x"}`)()); return h + "." + p + "." }, kindInvalid, "algorithm is not accepted"},
		{"alg missing", forge(`{"kid":"` + kids["RS256"] + `"}`), kindInvalid, "algorithm is not accepted"},
		{"alg unknown", forge(`{"alg":"RS1024","kid":"` + kids["RS256"] + `"}`), kindInvalid, "algorithm is not accepted"},
		{"HS256 with the RSA key as PEM secret", func() string {
			return sign(t, jwt.SigningMethodHS256, pemKey, map[string]any{"kid": kids["RS256"]}, claimsFor(idp, "alice"))
		}, kindInvalid, "algorithm is not accepted"},
		{"HS256 with the RSA key as DER secret", func() string {
			return sign(t, jwt.SigningMethodHS256, der, map[string]any{"kid": kids["RS256"]}, claimsFor(idp, "alice"))
		}, kindInvalid, "algorithm is not accepted"},
		{"PS256 header on an RS256 key", header(map[string]any{"alg": "PS256"}), kindInvalid, "does not match its signing key"},
		{"ES384 header on an ES256 key", tok(tiptest.WithAlg("ES256"), tiptest.WithHeader(map[string]any{"alg": "ES384"})), kindInvalid, "does not match its signing key"},
		{"RS256 header with the ES256 kid", header(map[string]any{"kid": kids["ES256"]}), kindInvalid, "does not match its signing key"},
		{"unknown kid", header(map[string]any{"kid": "no-such-key"}), kindInvalid, "unknown key"},
		{"no kid", header(map[string]any{"kid": nil}), kindInvalid, "no key ID"},
		{"numeric kid", header(map[string]any{"kid": 7}), kindInvalid, "no key ID"},
		{"own key, jku to own set", func() string {
			return sign(t, jwt.SigningMethodRS256, evil, map[string]any{"kid": "evil", "jku": "http://127.0.0.1:1/jwks.json"}, claimsFor(idp, "alice"))
		}, kindInvalid, "unknown key"},
		{"own key, x5u", func() string {
			return sign(t, jwt.SigningMethodRS256, evil, map[string]any{"kid": "evil", "x5u": "http://127.0.0.1:1/cert.pem"}, claimsFor(idp, "alice"))
		}, kindInvalid, "unknown key"},
		{"own key embedded as jwk, own kid", func() string {
			return sign(t, jwt.SigningMethodRS256, evil, map[string]any{"kid": "evil", "jwk": evilJWK}, claimsFor(idp, "alice"))
		}, kindInvalid, "unknown key"},
		{"own key embedded as jwk, the issuer's kid", func() string {
			return sign(t, jwt.SigningMethodRS256, evil, map[string]any{"kid": kids["RS256"], "jwk": evilJWK}, claimsFor(idp, "alice"))
		}, kindInvalid, "signature is invalid"},
		{"crit", header(map[string]any{"crit": []string{"exp"}, "exp": 1}), kindInvalid, "header extensions"},
		{"crit empty", header(map[string]any{"crit": []string{}}), kindInvalid, "header extensions"},
		{"b64 false", header(map[string]any{"crit": []string{"b64"}, "b64": false}), kindInvalid, "header extensions"},
		{"typ logout+jwt", header(map[string]any{"typ": "logout+jwt"}), kindInvalid, "type is not accepted"},
		{"typ not a string", header(map[string]any{"typ": 1}), kindInvalid, "type is not accepted"},
		{"other iss", claims(map[string]any{"iss": "https://evil.example"}), kindInvalid, "issuer is not trusted"},
		{"iss with trailing slash", claims(map[string]any{"iss": idp.Issuer() + "/"}), kindInvalid, "issuer is not trusted"},
		{"no iss", claims(map[string]any{"iss": nil}), kindInvalid, "issuer is not trusted"},
		{"other aud", claims(map[string]any{"aud": "someone-else"}), kindInvalid, "another audience"},
		{"no aud", claims(map[string]any{"aud": nil}), kindInvalid, "another audience"},
		{"aud a number", claims(map[string]any{"aud": 42}), kindInvalid, "another audience"},
		{"aud list with a number", claims(map[string]any{"aud": []any{idp.Audience(), 42}}), kindInvalid, "wrong type"},
		{"expired", tok(tiptest.WithLifetime(-time.Hour)), kindInvalid, "expired"},
		{"no exp", claims(map[string]any{"exp": nil}), kindInvalid, "no expiration time"},
		{"exp out of range", claims(map[string]any{"exp": 1e300}), kindInvalid, "expired"},
		{"iss an array", claims(map[string]any{"iss": []string{idp.Issuer()}}), kindInvalid, "issuer is not trusted"},
		{"exp a string", claims(map[string]any{"exp": "tomorrow"}), kindInvalid, "wrong type"},
		{"nbf in the future", claims(map[string]any{"nbf": in(time.Hour)}), kindInvalid, "not valid yet"},
		{"iat in the future", claims(map[string]any{"iat": in(time.Hour)}), kindInvalid, "issue time is in the future"},
		{"no sub", claims(map[string]any{"sub": nil}), kindInvalid, "no subject"},
		{"empty sub", claims(map[string]any{"sub": ""}), kindInvalid, "no subject"},
		{"numeric sub", claims(map[string]any{"sub": 12}), kindInvalid, "no subject"},
		{"tampered payload", func() string {
			h, _, s := segments(valid)
			return h + "." + b64([]byte(`{"iss":"`+idp.Issuer()+`","sub":"admin"}`)) + "." + s
		}, kindInvalid, "signature is invalid"},
		{"truncated signature", func() string { return valid[:len(valid)-12] }, kindInvalid, ""},
		{"two segments", func() string { h, p, _ := segments(valid); return h + "." + p }, kindInvalid, "malformed"},
		{"extra segment", func() string { return valid + ".e30" }, kindInvalid, "malformed"},
		{"JWE shaped", func() string { return valid + ".a.b" }, kindInvalid, "malformed"},
		{"bad base64", func() string { return "*" + valid[1:] }, kindInvalid, "malformed"},
		{"padded base64", func() string { h, p, s := segments(valid); return h + "." + p + "=." + s }, kindInvalid, "malformed"},
		{"header not JSON", forge("not json"), kindInvalid, "malformed"},
		{"payload not JSON", func() string { h, _, s := segments(valid); return h + "." + b64([]byte("[1,2")) + "." + s }, kindInvalid, "malformed"},
		{"non-ASCII", func() string { return valid[:20] + "é" + valid[20:] }, kindInvalid, "malformed"},
		{"empty", func() string { return "" }, kindInvalid, "malformed"},
		{"dots only", func() string { return ".." }, kindInvalid, "malformed"},
		{"huge", func() string { return strings.Repeat("a", 16<<10+1) }, kindInvalid, "too large"},
		{"huge but valid-looking", func() string {
			return idp.Token("alice", tiptest.WithClaims(map[string]any{"pad": strings.Repeat("x", 16<<10)}))
		}, kindInvalid, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token()
			c, err := v.Verify(context.Background(), token)
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "alice" || c.Issuer != idp.Issuer() {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if c != nil {
				t.Fatalf("claims = %+v, want none", c)
			}
			wantError(t, err, token, tc.kind, tc.desc)
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp)
	c := mustVerify(t, v, idp.Token("alice", tiptest.WithClaims(map[string]any{"jti": "id-1"})))
	if c.Issuer != idp.Issuer() || c.Subject != "alice" || c.ID != "id-1" ||
		len(c.Audience) != 1 || c.Audience[0] != idp.Audience() {
		t.Fatalf("claims = %+v", c)
	}
	if d := idp.Clock().Now().Sub(c.IssuedAt); d < 0 || d > 2*time.Second ||
		!c.NotBefore.Equal(c.IssuedAt) || !c.Expires.Equal(c.IssuedAt.Add(time.Hour)) {
		t.Fatalf("times: iat %v, nbf %v, exp %v", c.IssuedAt, c.NotBefore, c.Expires)
	}
	if c.Raw["email"] != "alice@example.com" {
		t.Fatalf("Raw = %v", c.Raw)
	}
}

func TestNewOptions(t *testing.T) {
	ok := Issuer{Issuer: "https://idp.example", Audience: []string{"app"}}
	with := func(f func(*Issuer)) []Issuer { ic := ok; f(&ic); return []Issuer{ic} }
	cases := []struct {
		name string
		o    Options
		want error
	}{
		{"defaults", Options{Issuers: []Issuer{ok}}, nil},
		{"loopback http", Options{Issuers: with(func(c *Issuer) { c.Issuer = "http://127.0.0.1:8080" })}, nil},
		{"localhost http JWKS", Options{Issuers: with(func(c *Issuer) { c.Issuer, c.JWKSURL = "http://idp.example/tenant-1", "http://localhost:1/keys" })}, nil},
		{"issuer with JWKS not a URL", Options{Issuers: with(func(c *Issuer) { c.Issuer, c.JWKSURL = "tenant-1", "http://localhost:1/keys" })}, ErrConfig},
		{"issuer with NUL", Options{Issuers: with(func(c *Issuer) { c.Issuer, c.JWKSURL = "https://idp.example/\x00p", "http://localhost:1/keys" })}, ErrConfig},
		{"issuer with query", Options{Issuers: with(func(c *Issuer) { c.Issuer = "https://idp.example/?tenant=1" })}, ErrConfig},
		{"issuer with fragment", Options{Issuers: with(func(c *Issuer) { c.Issuer = "https://idp.example/#x" })}, ErrConfig},
		{"issuer with user info", Options{Issuers: with(func(c *Issuer) { c.Issuer = "https://u@idp.example" })}, ErrConfig},
		{"no issuer", Options{}, ErrConfig},
		{"empty issuer", Options{Issuers: with(func(c *Issuer) { c.Issuer = "" })}, ErrConfig},
		{"duplicate issuer", Options{Issuers: []Issuer{ok, ok}}, ErrConfig},
		{"plain http issuer", Options{Issuers: with(func(c *Issuer) { c.Issuer = "http://idp.example" })}, ErrConfig},
		{"issuer not a URL", Options{Issuers: with(func(c *Issuer) { c.Issuer = "idp" })}, ErrConfig},
		{"plain http JWKS", Options{Issuers: with(func(c *Issuer) { c.JWKSURL = "http://idp.example/keys" })}, ErrConfig},
		{"file JWKS", Options{Issuers: with(func(c *Issuer) { c.JWKSURL = "file:///etc/keys" })}, ErrConfig},
		{"no audience", Options{Issuers: with(func(c *Issuer) { c.Audience = nil })}, ErrConfig},
		{"empty audience", Options{Issuers: with(func(c *Issuer) { c.Audience = []string{"app", ""} })}, ErrConfig},
		{"none", Options{Issuers: []Issuer{ok}, Algorithms: []string{"RS256", "none"}}, ErrConfig},
		{"HS256", Options{Issuers: []Issuer{ok}, Algorithms: []string{"HS256"}}, ErrConfig},
		{"lower case", Options{Issuers: []Issuer{ok}, Algorithms: []string{"rs256"}}, ErrConfig},
		{"negative size", Options{Issuers: []Issuer{ok}, CacheSize: -1}, ErrConfig},
		{"negative rate", Options{Issuers: []Issuer{ok}, RefreshRateLimit: -1}, ErrConfig},
		{"negative max token", Options{Issuers: []Issuer{ok}, MaxTokenSize: -1}, ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(context.Background(), tc.o)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("NewVerifier: %v, want %v", err, tc.want)
			}
			if v != nil {
				v.Close()
			}
		})
	}
}

// TestVerifierOnlyAllowedAlgorithms checks that Algorithms restricts the
// alg header even for a key the issuer publishes.
func TestVerifierOnlyAllowedAlgorithms(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, func(o *Options) { o.Algorithms = []string{"ES256"} })
	mustVerify(t, v, idp.Token("alice", tiptest.WithAlg("ES256")))
	token := idp.Token("alice")
	_, err := v.Verify(context.Background(), token)
	wantError(t, err, token, kindInvalid, "algorithm is not accepted")
}

// TestVerifierLazy checks that nothing is fetched before a token of a
// configured issuer needs it, and then only once for concurrent requests.
func TestVerifierLazy(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprint("explicit JWKS URL ", explicit), func(t *testing.T) {
			idp := startIdP(t)
			v := newTestVerifier(t, idp, func(o *Options) {
				if explicit {
					o.Issuers[0].JWKSURL = idp.JWKSURL()
				}
			})
			if n := idp.JWKSRequests(); n != 0 {
				t.Fatalf("JWKS requests after NewVerifier = %d, want 0", n)
			}
			foreign := idp.Token("alice", tiptest.WithClaims(map[string]any{"iss": "https://other.example"}))
			_, err := v.Verify(context.Background(), foreign)
			wantError(t, err, foreign, kindInvalid, "issuer is not trusted")
			if n := idp.JWKSRequests(); n != 0 {
				t.Fatalf("JWKS requests after a foreign token = %d, want 0", n)
			}
			verifyConcurrently(t, v, idp, 20)
			if n := idp.JWKSRequests(); n != 1 {
				t.Fatalf("JWKS requests = %d, want 1", n)
			}
		})
	}
}

// verifyConcurrently verifies n tokens of n users at once.
func verifyConcurrently(t *testing.T, v *Verifier, idp *tiptest.IdP, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprint("user", i)
			c, err := v.Verify(context.Background(), idp.Token(user))
			if err == nil && c.Subject != user {
				err = fmt.Errorf("subject %q, want %q", c.Subject, user)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifierIdPDown checks that an unreachable IdP does not fail
// NewVerifier, that Verify then answers unavailable, that a later request
// retries, and that known keys keep working while the IdP is down.
func TestVerifierIdPDown(t *testing.T) {
	idp := startIdP(t)
	idp.SetDown(true)
	v := newTestVerifier(t, idp, noCache, func(o *Options) { o.RefreshRateLimit = 50 * time.Millisecond })
	token := idp.Token("alice")
	_, err := v.Verify(context.Background(), token)
	if e := wantError(t, err, token, kindUnavailable, "keys are unavailable"); e.RetryAfter <= 0 || e.RetryAfter > 50*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want (0, 50ms]", e.RetryAfter)
	}
	_, err = v.Verify(context.Background(), token) // within the retry interval: no new fetch
	wantError(t, err, token, kindUnavailable, "keys are unavailable")

	idp.SetDown(false)
	eventually(t, "a retry once the retry interval passed", func() bool {
		_, err := v.Verify(context.Background(), token)
		if err != nil {
			wantError(t, err, token, kindUnavailable, "keys are unavailable")
		}
		return err == nil
	})

	idp.SetDown(true)
	mustVerify(t, v, idp.Token("bob", tiptest.WithAlg("ES256")))
	// A kid the key set does not hold, while the key set cannot be
	// refreshed, may be the issuer's new key: 503, not 401.
	token = idp.Token("carol", tiptest.WithHeader(map[string]any{"kid": "rotated-while-down"}))
	_, err = v.Verify(context.Background(), token)
	wantError(t, err, token, kindUnavailable, "keys are unavailable")
	// Once a refresh succeeds, the same kid is what it is: unknown.
	idp.SetDown(false)
	eventually(t, "a refresh once the rate limit allows", func() bool {
		_, err = v.Verify(context.Background(), token)
		var e *Error
		return errors.As(err, &e) && e.kind == kindInvalid
	})
	wantError(t, err, token, kindInvalid, "unknown key")
}

// TestVerifierWaitCancelled checks that a request stops waiting for a slow
// first fetch when its context ends, without cancelling the fetch.
func TestVerifierWaitCancelled(t *testing.T) {
	idp := startIdP(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		http.Redirect(w, r, idp.JWKSURL(), http.StatusFound)
	}))
	defer slow.Close()
	defer close(release)
	v := newTestVerifier(t, idp, func(o *Options) { o.Issuers[0].JWKSURL = slow.URL })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	token := idp.Token("alice")
	_, err := v.Verify(ctx, token)
	e := wantError(t, err, token, kindUnavailable, "keys are unavailable")
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap the deadline", e.Err)
	}
	release <- struct{}{}
	mustVerify(t, v, token)
}

func TestVerifierDiscoveryChecks(t *testing.T) {
	idp := startIdP(t)
	cases := map[string]string{
		"other issuer":  `{"issuer":"https://evil.example","jwks_uri":"` + idp.JWKSURL() + `"}`,
		"plain http":    `{"issuer":"ISSUER","jwks_uri":"http://idp.example/keys"}`,
		"not JSON":      `<html>`,
		"no jwks_uri":   `{"issuer":"ISSUER"}`,
		"jwks not JSON": `{"issuer":"ISSUER","jwks_uri":"ISSUER/not-found"}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/.well-known/openid-configuration" {
					_, _ = io.WriteString(w, strings.ReplaceAll(doc, "ISSUER", srv.URL))
					return
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			v := newTestVerifier(t, idp, func(o *Options) { o.Issuers[0].Issuer = srv.URL })
			token := idp.Token("alice", tiptest.WithClaims(map[string]any{"iss": srv.URL}))
			_, err := v.Verify(context.Background(), token)
			wantError(t, err, token, kindUnavailable, "keys are unavailable")
		})
	}
}

// TestVerifierSeveralIssuers checks that the iss claim picks the issuer and
// that each issuer's keys and audiences apply only to its own tokens.
func TestVerifierSeveralIssuers(t *testing.T) {
	a, b := startIdP(t), startIdP(t)
	v := newTestVerifier(t, a, func(o *Options) {
		o.Issuers = []Issuer{
			{Issuer: a.Issuer(), Audience: []string{"app-a"}},
			{Issuer: b.Issuer(), JWKSURL: b.JWKSURL(), Audience: []string{"app-b", "app-b2"}},
		}
	})
	aud := func(s string) tiptest.TokenOption { return tiptest.WithClaims(map[string]any{"aud": s}) }
	if c := mustVerify(t, v, a.Token("alice", aud("app-a"))); c.Issuer != a.Issuer() {
		t.Fatalf("issuer = %q", c.Issuer)
	}
	if b.JWKSRequests() != 0 {
		t.Fatal("a token of A fetched the keys of B")
	}
	mustVerify(t, v, b.Token("bob", aud("app-b2")))

	for name, token := range map[string]string{
		"B's audience on A":         a.Token("alice", aud("app-b")),
		"A's audience on B":         b.Token("bob", aud("app-a")),
		"B's token claiming A":      b.Token("bob", aud("app-a"), tiptest.WithClaims(map[string]any{"iss": a.Issuer()})),
		"B's key with A's kid":      b.Token("bob", aud("app-a"), tiptest.WithClaims(map[string]any{"iss": a.Issuer()}), tiptest.WithHeader(map[string]any{"kid": a.KeyIDs()["RS256"]})),
		"A's token claiming B":      a.Token("alice", aud("app-b"), tiptest.WithClaims(map[string]any{"iss": b.Issuer()})),
		"A's key with B's kid":      a.Token("alice", aud("app-b"), tiptest.WithClaims(map[string]any{"iss": b.Issuer()}), tiptest.WithHeader(map[string]any{"kid": b.KeyIDs()["RS256"]})),
		"audience list across both": a.Token("alice", tiptest.WithClaims(map[string]any{"aud": []string{"app-b"}})),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), token)
			wantError(t, err, token, kindInvalid, "")
		})
	}
}

// TestVerifierKeyRotation checks that a new kid triggers a refresh, that a
// key removed at the IdP stops working, remembered tokens included, and
// that refreshes for unknown kids are rate limited without waiting.
func TestVerifierKeyRotation(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, func(o *Options) { o.RefreshRateLimit = time.Hour })
	old := idp.Token("alice")
	mustVerify(t, v, old)
	mustVerify(t, v, old)
	if s := v.Stats(); s.CacheHits != 1 {
		t.Fatalf("stats = %+v, want one cache hit", s)
	}

	idp.RotateKeys()
	idp.RetireOldKeys()
	mustVerify(t, v, idp.Token("bob")) // unknown kid: one refresh
	if n := idp.JWKSRequests(); n != 2 {
		t.Fatalf("JWKS requests = %d, want 2", n)
	}
	_, err := v.Verify(context.Background(), old)
	wantError(t, err, old, kindInvalid, "unknown key")

	idp.RotateKeys()
	start := time.Now()
	token := idp.Token("carol")
	_, err = v.Verify(context.Background(), token)
	wantError(t, err, token, kindInvalid, "unknown key")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a rate-limited unknown kid took %v", d)
	}
	if n := idp.JWKSRequests(); n != 2 {
		t.Fatalf("JWKS requests = %d, want still 2", n)
	}
}

// TestVerifierRotationBurst checks that concurrent tokens signed with a
// new key share one refresh and all pass.
func TestVerifierRotationBurst(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, noCache, func(o *Options) { o.RefreshRateLimit = time.Hour })
	mustVerify(t, v, idp.Token("alice"))
	idp.RotateKeys()
	verifyConcurrently(t, v, idp, 30)
	if n := idp.JWKSRequests(); n != 2 {
		t.Fatalf("JWKS requests = %d, want 2", n)
	}
}

// TestVerifierRefreshKeepsCache checks that a refresh that removes no key
// does not make remembered tokens verify again.
func TestVerifierRefreshKeepsCache(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp)
	token := idp.Token("alice")
	mustVerify(t, v, token)
	idp.RotateKeys() // adds keys, removes none
	mustVerify(t, v, idp.Token("bob"))
	mustVerify(t, v, token)
	if s := v.Stats(); s.Verified != 2 || s.CacheHits != 1 {
		t.Fatalf("stats = %+v, want 2 verified and 1 hit", s)
	}
}

func TestVerifierCacheExpiry(t *testing.T) {
	idp := startIdP(t)
	clock := idp.Clock()
	v := newTestVerifier(t, idp, func(o *Options) { o.CacheTTL = time.Minute; o.Leeway = -1 })

	short := idp.Token("alice", tiptest.WithLifetime(30*time.Second))
	long := idp.Token("bob")
	mustVerify(t, v, short)
	mustVerify(t, v, long)
	clock.Advance(31 * time.Second)
	_, err := v.Verify(context.Background(), short)
	wantError(t, err, short, kindInvalid, "expired")
	mustVerify(t, v, long)
	if s := v.Stats(); s.Verified != 2 || s.CacheHits != 1 {
		t.Fatalf("stats = %+v, want 2 verified and 1 hit", s)
	}
	clock.Advance(30 * time.Second) // past CacheTTL: verified again
	mustVerify(t, v, long)
	if s := v.Stats(); s.Verified != 3 {
		t.Fatalf("stats = %+v, want 3 verified", s)
	}
}

func TestVerifierCacheBound(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, func(o *Options) { o.CacheSize, o.CacheTTL = 2, time.Hour })
	first := idp.Token("a", tiptest.WithLifetime(10*time.Minute)) // expires first
	for _, token := range []string{idp.Token("b"), first, idp.Token("c")} {
		mustVerify(t, v, token)
	}
	if s := v.Stats(); s.Remembered != 2 {
		t.Fatalf("remembered = %d, want 2", s.Remembered)
	}
	mustVerify(t, v, first)
	if s := v.Stats(); s.CacheHits != 0 {
		t.Fatalf("the token expiring first was kept: %+v", s)
	}
}

func TestVerifierCacheOff(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, noCache)
	token := idp.Token("alice")
	mustVerify(t, v, token)
	mustVerify(t, v, token)
	if s := v.Stats(); s.CacheHits != 0 || s.Verified != 2 || s.Remembered != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestVerifyCacheHitDoesNotAllocate(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp)
	token := idp.Token("alice")
	mustVerify(t, v, token)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := v.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a cache hit allocates %v times", allocs)
	}
}

// TestVerifierConcurrentRotation verifies tokens while the IdP rotates
// and retires keys; a token may be refused only because its key is unknown
// (rotated in within the rate limit, or retired).
func TestVerifierConcurrentRotation(t *testing.T) {
	idp := startIdP(t)
	v := newTestVerifier(t, idp, func(o *Options) { o.RefreshRateLimit = time.Millisecond })
	var wg sync.WaitGroup
	verified := make(chan struct{}, 50*3) // a value after each Verify
	wg.Go(func() {
		for range 5 {
			idp.RotateKeys()
			idp.RetireOldKeys()
			for range 10 { // the next rotation once ten more Verify calls ended
				<-verified
			}
		}
	})
	for i := range 50 {
		wg.Go(func() {
			token := idp.Token(fmt.Sprint("user", i))
			for range 3 {
				_, err := v.Verify(context.Background(), token)
				verified <- struct{}{}
				var e *Error
				if err != nil && (!errors.As(err, &e) || e.Description != "the token was signed with an unknown key") {
					t.Errorf("Verify: %v", err)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkVerify compares a remembered token with full verifications,
// on the wall clock.
func BenchmarkVerify(b *testing.B) {
	idp := startIdP(b)
	ctx := context.Background()
	wallClock := func(o *Options) { o.Now = nil }
	b.Run("cache-hit", func(b *testing.B) {
		v := newTestVerifier(b, idp, wallClock)
		token := idp.Token("alice")
		mustVerify(b, v, token)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-hit-parallel", func(b *testing.B) {
		v := newTestVerifier(b, idp, wallClock)
		token := idp.Token("alice")
		mustVerify(b, v, token)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run("full-"+alg, func(b *testing.B) {
			v := newTestVerifier(b, idp, wallClock, noCache)
			token := idp.Token("alice", tiptest.WithAlg(alg))
			mustVerify(b, v, token)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckRedirect: the default client follows a redirect only to a URL
// it would have fetched itself, and not endlessly.
func TestCheckRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	one := []*http.Request{req("https://idp.example/keys")}
	for u, ok := range map[string]bool{
		"https://cdn.idp.example/keys": true,
		"http://127.0.0.1:8080/keys":   true,
		"http://localhost/keys":        true,
		"http://idp.example/keys":      false,
		"file:///etc/passwd":           false,
		"http://10.0.0.1/keys":         false,
	} {
		if err := checkRedirect(req(u), one); (err == nil) != ok {
			t.Errorf("redirect to %s: err = %v, want allowed %t", u, err, ok)
		}
	}
	five := []*http.Request{one[0], one[0], one[0], one[0], one[0]} // the first request and four redirects
	if err := checkRedirect(req("https://idp.example/keys"), five); err != nil {
		t.Errorf("a fifth redirect was refused: %v", err)
	}
	if err := checkRedirect(req("https://idp.example/keys"), append(five, one[0])); err == nil {
		t.Error("a sixth redirect was followed")
	}
}

// TestVerifierMergesConcurrentChecks: concurrent first requests with one
// token share a single signature check, while the issuer's keys are still
// being fetched.
func TestVerifierMergesConcurrentChecks(t *testing.T) {
	idp := startIdP(t)
	release := make(chan struct{})
	fetching := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetching <- struct{}{}:
		default:
		}
		<-release
		http.Redirect(w, r, idp.JWKSURL(), http.StatusFound)
	}))
	defer slow.Close()
	v := newTestVerifier(t, idp, func(o *Options) { o.Issuers[0].JWKSURL = slow.URL })
	token := idp.Token("alice")
	const n = 20
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			_, err := v.Verify(context.Background(), token)
			errs <- err
		}()
	}
	started.Wait()
	<-fetching // the first request's key fetch is under way: the others wait on it
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := v.Stats()
	if s.Verified != 1 || s.Merged+s.CacheHits != n-1 {
		t.Fatalf("stats %+v: want 1 verification shared by %d requests", s, n)
	}
}
