package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// FuzzVerify runs arbitrary strings, and mutations of tokens the IdP
// signed, through Verifier.Verify. It must not panic, must fail only with
// an *Error matching ErrInvalid or ErrUnavailable whose message does
// not repeat the token, and must accept nothing but the exact bytes of a
// token the IdP signed.
func FuzzVerify(f *testing.F) {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(idp.Close)
	v, err := verify.New(context.Background(), verify.Options{
		Issuers: []verify.Issuer{{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}},
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
	f.Add(mint("frank", tiptest.WithClaims(map[string]any{"pad": strings.Repeat("p", verify.DefaultMaxTokenSize)})))
	f.Add(strings.Repeat("a", verify.DefaultMaxTokenSize+1))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if len(raw) > verify.DefaultMaxTokenSize {
			// Refused by its size before anything is decoded: what a
			// token costs is bounded by the cap, not by what it holds.
			var e *verify.Error
			if !errors.As(err, &e) || !strings.Contains(e.Description, "too large") {
				t.Fatalf("a %d-byte token, over the cap of %d: %v", len(raw), verify.DefaultMaxTokenSize, err)
			}
			return
		}
		if err == nil {
			if !minted[raw] || c == nil || c.Subject == "" {
				t.Fatalf("accepted a token the IdP never signed: %q (claims %+v)", raw, c)
			}
			return
		}
		var e *verify.Error
		if !errors.As(err, &e) || !errors.Is(e, verify.ErrInvalid) && !errors.Is(e, verify.ErrUnavailable) {
			t.Fatalf("error %T %v, want an *Error of kind invalid or unavailable", err, err)
		}
		// Error messages are fixed sentences without a dot.
		if strings.Contains(raw, ".") && strings.Contains(e.Error(), raw) {
			t.Fatalf("error %q repeats the token", e.Error())
		}
	})
}
