package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// FuzzBearerExtractor feeds arbitrary Authorization values and query
// strings to BearerExtractor. It must not panic; a token it returns is one
// b64token taken from a "Bearer" value (in any case) with no query token
// beside it; every error is a 401 invalid_request that does not repeat the
// value.
func FuzzBearerExtractor(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer abc.def.ghi", ""},
		{"bearer abc", ""},
		{"Bearer", ""},
		{"Bearer    ", ""},
		{"Basic YWxpY2U6c2VjcmV0", ""},
		{"Bearer a b", ""},
		{"Bearer abc==", ""},
		{"Bearer ab=c", ""},
		{"Bearer é", ""},
		{"Bearer abc", "access_token=abc"},
		{"", "access%5Ftoken=x"},
		{"Bearer\tabc", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, value, query string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = query
		if value != "" {
			r.Header["Authorization"] = []string{value}
		}
		tok, err := middleware.BearerExtractor(r)
		if err != nil {
			var e *middleware.Error
			if !errors.As(err, &e) || e.Kind != middleware.KindInvalidRequest || tok != "" {
				t.Fatalf("error %v (token %q), want a KindInvalidRequest *Error and no token", err, tok)
			}
			if len(value) >= 8 && strings.Contains(e.Error(), value) {
				t.Fatalf("error %q repeats the header value", e.Error())
			}
			return
		}
		if tok == "" {
			return
		}
		if q, _ := url.ParseQuery(query); q.Has("access_token") {
			t.Fatalf("token %q accepted beside an access_token in the query %q", tok, query)
		}
		scheme, rest, ok := strings.Cut(value, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimLeft(rest, " ") != tok {
			t.Fatalf("token %q taken from %q", tok, value)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
				t.Fatalf("token %q holds byte %q", tok, c)
			}
		}
		if strings.TrimRight(tok, "=") == "" || strings.Contains(strings.TrimRight(tok, "="), "=") {
			t.Fatalf("token %q is not one b64token", tok)
		}
	})
}

// FuzzVerify runs arbitrary strings, and mutations of tokens the IdP
// signed, through Verifier.Verify. It must not panic, must fail only with
// an *Error of kind KindInvalidToken or KindUnavailable whose message does
// not repeat the token, and must accept nothing but the exact bytes of a
// token the IdP signed.
func FuzzVerify(f *testing.F) {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(idp.Close)
	v, err := middleware.NewVerifier(context.Background(), middleware.VerifierOptions{
		Issuers: []middleware.IssuerConfig{{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}},
		Now:     idp.Clock().Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	minted := map[string]bool{}
	mint := func(user string, opts ...tiptest.TokenOption) string {
		tok := idp.Token(user, opts...)
		minted[tok] = true
		return tok
	}
	for _, tok := range []string{
		mint("alice"),
		mint("bob", tiptest.WithAlg("ES256")),
		mint("carol", tiptest.WithAlg("EdDSA")),
		mint("dave", tiptest.WithClaims(map[string]any{"aud": []string{"x", idp.Audience()}})),
		mint("erin", tiptest.WithHeader(map[string]any{"typ": nil})),
	} {
		f.Add(tok)
	}
	// Signed, but each refused for one reason.
	for _, opt := range []tiptest.TokenOption{
		tiptest.WithLifetime(-time.Hour),
		tiptest.WithClaims(map[string]any{"sub": ""}),
		tiptest.WithClaims(map[string]any{"aud": "other"}),
		tiptest.WithHeader(map[string]any{"kid": "unknown"}),
		tiptest.WithHeader(map[string]any{"crit": []string{"b64"}}),
	} {
		f.Add(idp.Token("mallory", opt))
	}
	// Over the size cap: a signed token, and bytes that are no token.
	f.Add(mint("frank", tiptest.WithClaims(map[string]any{"pad": strings.Repeat("p", middleware.DefaultMaxTokenSize)})))
	f.Add(strings.Repeat("a", middleware.DefaultMaxTokenSize+1))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if len(raw) > middleware.DefaultMaxTokenSize {
			// Refused by its size before anything is decoded: what a
			// token costs is bounded by the cap, not by what it holds.
			var e *middleware.Error
			if !errors.As(err, &e) || !strings.Contains(e.Description, "too large") {
				t.Fatalf("a %d-byte token, over the cap of %d: %v", len(raw), middleware.DefaultMaxTokenSize, err)
			}
			return
		}
		if err == nil {
			if !minted[raw] || c == nil || c.Subject == "" {
				t.Fatalf("accepted a token the IdP never signed: %q (claims %+v)", raw, c)
			}
			return
		}
		var e *middleware.Error
		if !errors.As(err, &e) || e.Kind != middleware.KindInvalidToken && e.Kind != middleware.KindUnavailable {
			t.Fatalf("error %T %v, want an *Error of kind invalid_token or unavailable", err, err)
		}
		// Error messages are fixed sentences without a dot.
		if strings.Contains(raw, ".") && strings.Contains(e.Error(), raw) {
			t.Fatalf("error %q repeats the token", e.Error())
		}
	})
}
