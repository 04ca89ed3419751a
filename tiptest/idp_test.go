package tiptest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tipkit/tipkit/tiptest"
)

// idpTestJWK is a JWK as published, decoded independently of the IdP code.
type idpTestJWK struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func newTestIdP(t *testing.T, o tiptest.IdPOptions) *tiptest.IdP {
	t.Helper()
	p, err := tiptest.NewIdP(o)
	if err != nil {
		t.Fatalf("NewIdP: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func idpGet(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, body
}

// idpB64 decodes strict unpadded base64url, as RFC 7515 requires.
func idpB64(t *testing.T, field, s string) []byte {
	t.Helper()
	if strings.ContainsAny(s, "=+/") {
		t.Fatalf("%s %q is not unpadded base64url", field, s)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("%s %q: %v", field, s, err)
	}
	return b
}

// idpFetchKeys fetches the JWKS, checks every key's encoding and returns the
// public keys by kid.
func idpFetchKeys(t *testing.T, p *tiptest.IdP) (map[string]crypto.PublicKey, []idpTestJWK) {
	t.Helper()
	status, hdr, body := idpGet(t, p.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("JWKS status %d: %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("JWKS Content-Type %q", ct)
	}
	var set struct {
		Keys []idpTestJWK `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, body)
	}
	keys := make(map[string]crypto.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Kid == "" {
			t.Fatalf("key %+v: want use sig and a kid", k)
		}
		if _, dup := keys[k.Kid]; dup {
			t.Fatalf("duplicate kid %q", k.Kid)
		}
		var pub crypto.PublicKey
		var thumb string
		switch k.Kty {
		case "RSA":
			if k.Alg != "RS256" || k.Crv != "" || k.X != "" || k.Y != "" {
				t.Fatalf("RSA key %+v", k)
			}
			n := idpB64(t, "n", k.N)
			e := idpB64(t, "e", k.E)
			if len(n) != 256 || n[0] == 0 {
				t.Fatalf("RSA n is %d bytes (leading %#x), want 256 without leading zero", len(n), n[0])
			}
			if k.E != "AQAB" {
				t.Fatalf("RSA e = %q, want AQAB", k.E)
			}
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
			thumb = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, k.E, k.N)
		case "EC":
			if k.Alg != "ES256" || k.Crv != "P-256" || k.N != "" || k.E != "" {
				t.Fatalf("EC key %+v", k)
			}
			x, y := idpB64(t, "x", k.X), idpB64(t, "y", k.Y)
			if len(x) != 32 || len(y) != 32 {
				t.Fatalf("EC x, y are %d, %d bytes, want 32", len(x), len(y))
			}
			ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				t.Fatalf("EC key not on P-256: %v", err)
			}
			pub = ec
			thumb = fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, k.X, k.Y)
		case "OKP":
			if k.Alg != "EdDSA" || k.Crv != "Ed25519" || k.Y != "" || k.N != "" {
				t.Fatalf("OKP key %+v", k)
			}
			x := idpB64(t, "x", k.X)
			if len(x) != ed25519.PublicKeySize {
				t.Fatalf("Ed25519 x is %d bytes", len(x))
			}
			pub = ed25519.PublicKey(x)
			thumb = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, k.X)
		default:
			t.Fatalf("unexpected kty %q", k.Kty)
		}
		sum := sha256.Sum256([]byte(thumb))
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); k.Kid != want {
			t.Errorf("kid %q is not the RFC 7638 thumbprint %q", k.Kid, want)
		}
		keys[k.Kid] = pub
	}
	return keys, set.Keys
}

// idpVerify verifies tok with golang-jwt against keys, as a relying party
// that trusts p would.
func idpVerify(p *tiptest.IdP, keys map[string]crypto.PublicKey, tok string, alg string, now func() time.Time) (*jwt.Token, jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{alg}),
		jwt.WithIssuer(p.Issuer()),
		jwt.WithAudience(p.Audience()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return parsed, claims, err
}

// idpUnverified decodes tok without verifying its signature.
func idpUnverified(t *testing.T, tok string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, claims)
	if err != nil {
		t.Fatalf("decode %q: %v", tok, err)
	}
	return parsed.Header, claims
}

func TestClock(t *testing.T) {
	c := tiptest.NewClock()
	if d := time.Since(c.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("new clock is %v off the wall clock", d)
	}
	c.Advance(2 * time.Hour)
	if d := time.Until(c.Now()); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
		t.Fatalf("after Advance(2h) the clock is %v ahead", d)
	}
	c.Advance(-3 * time.Hour)
	if d := time.Since(c.Now()); d < time.Hour-time.Second || d > time.Hour+time.Second {
		t.Fatalf("after Advance(-3h) the clock is %v behind", d)
	}

	var nilClock *tiptest.Clock
	nilClock.Advance(time.Hour) // no effect, no panic
	if d := time.Since(nilClock.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("nil clock is %v off the wall clock", d)
	}
	var zero tiptest.Clock
	if d := time.Since(zero.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("zero clock is %v off the wall clock", d)
	}

	c2 := tiptest.NewClock()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c2.Advance(time.Second)
				_ = c2.Now()
			}
		})
	}
	wg.Wait()
	if d := time.Until(c2.Now()); d < 800*time.Second-time.Second || d > 800*time.Second+time.Second {
		t.Fatalf("after 800 x Advance(1s) the clock is %v ahead", d)
	}
}

func TestNewIdPOptions(t *testing.T) {
	if _, err := tiptest.NewIdP(tiptest.IdPOptions{TokenTTL: -time.Second}); err == nil {
		t.Fatal("NewIdP accepted a negative TokenTTL")
	}

	p := newTestIdP(t, tiptest.IdPOptions{})
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+$`).MatchString(p.Issuer()) {
		t.Fatalf("Issuer() = %q", p.Issuer())
	}
	if p.JWKSURL() != p.Issuer()+"/.well-known/jwks.json" {
		t.Fatalf("JWKSURL() = %q", p.JWKSURL())
	}
	if p.Audience() != "tipkit-test" {
		t.Fatalf("default Audience() = %q", p.Audience())
	}
	if p.Clock() == nil {
		t.Fatal("Clock() is nil")
	}
	_, c := idpUnverified(t, p.Token("bob"))
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 {
		t.Fatalf("default lifetime %v s, want 3600", exp-iat)
	}

	clock := tiptest.NewClock()
	clock.Advance(-48 * time.Hour)
	q := newTestIdP(t, tiptest.IdPOptions{Clock: clock, Audience: "my-app", TokenTTL: 5 * time.Minute})
	if q.Clock() != clock || q.Audience() != "my-app" {
		t.Fatal("options not kept")
	}
	keys, _ := idpFetchKeys(t, q)
	_, mc, err := idpVerify(q, keys, q.Token("bob"), "RS256", clock.Now)
	if err != nil {
		t.Fatalf("verify with the IdP clock: %v", err)
	}
	if mc["aud"] != "my-app" || mc["exp"].(float64)-mc["iat"].(float64) != 300 {
		t.Fatalf("claims %v", mc)
	}
	if iat := int64(mc["iat"].(float64)); iat > time.Now().Add(-47*time.Hour).Unix() {
		t.Fatalf("iat %d does not follow the IdP clock", iat)
	}
	if _, _, err := idpVerify(q, keys, q.Token("bob"), "RS256", time.Now); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("token of a clock 48h behind verified at wall time: %v", err)
	}
}

func TestIdPDiscovery(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	status, hdr, body := idpGet(t, p.Issuer()+"/.well-known/openid-configuration")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	var d struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		TokenEndpoint string   `json:"token_endpoint"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != p.Issuer() || d.JWKSURI != p.JWKSURL() || d.TokenEndpoint != p.Issuer()+"/token" {
		t.Fatalf("discovery %+v", d)
	}
	if strings.Join(d.Algs, ",") != "RS256,ES256,EdDSA" {
		t.Fatalf("algs %v", d.Algs)
	}
	if len(d.ResponseTypes) == 0 || len(d.SubjectTypes) == 0 || d.SubjectTypes[0] != "public" {
		t.Fatalf("response/subject types %v %v", d.ResponseTypes, d.SubjectTypes)
	}

	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json", "/token?user=a"} {
		resp, err := http.Post(p.Issuer()+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: status %d, want 405", path, resp.StatusCode)
		}
	}
	if status, _, _ := idpGet(t, p.Issuer()+"/nope"); status != http.StatusNotFound {
		t.Errorf("unknown path: status %d", status)
	}
}

func TestIdPTokenEachAlg(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	keys, published := idpFetchKeys(t, p)
	if len(published) != 3 {
		t.Fatalf("JWKS has %d keys, want 3", len(published))
	}
	kids := p.KeyIDs()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			var opts []tiptest.TokenOption
			if alg != "RS256" {
				opts = append(opts, tiptest.WithAlg(alg))
			}
			before := time.Now().Unix()
			tok, claims, err := idpVerify(p, keys, p.Token("alice", opts...), alg, time.Now)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if tok.Header["alg"] != alg || tok.Header["typ"] != "JWT" || tok.Header["kid"] != kids[alg] {
				t.Fatalf("header %v, want alg %s typ JWT kid %s", tok.Header, alg, kids[alg])
			}
			if claims["iss"] != p.Issuer() || claims["sub"] != "alice" || claims["email"] != "alice@example.com" || claims["name"] != "alice" {
				t.Fatalf("claims %v", claims)
			}
			if aud, ok := claims["aud"].(string); !ok || aud != "tipkit-test" {
				t.Fatalf("aud %#v, want the string tipkit-test", claims["aud"])
			}
			iat, nbf, exp := claims["iat"].(float64), claims["nbf"].(float64), claims["exp"].(float64)
			if int64(iat) < before || int64(iat) > time.Now().Unix() || nbf != iat || exp != iat+3600 {
				t.Fatalf("iat %v nbf %v exp %v", iat, nbf, exp)
			}
			if jti, _ := claims["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
				t.Fatalf("jti %q", jti)
			}
			// A token must not verify with the key of another algorithm.
			for _, other := range []string{"RS256", "ES256", "EdDSA"} {
				if other == alg {
					continue
				}
				other := keys[kids[other]]
				_, err := jwt.Parse(p.Token("alice", opts...), func(*jwt.Token) (any, error) { return other, nil })
				if err == nil {
					t.Fatalf("%s token verified with a key of another algorithm", alg)
				}
			}
		})
	}

	_, claims, err := idpVerify(p, keys, p.Token("carol@corp.example"), "RS256", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if claims["email"] != "carol@corp.example" || claims["sub"] != "carol@corp.example" {
		t.Fatalf("user with @: claims %v", claims)
	}
}

func TestIdPTokenUnknownAlgPanics(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	defer func() {
		if recover() == nil {
			t.Fatal("Token with alg HS256 did not panic")
		}
	}()
	p.Token("alice", tiptest.WithAlg("HS256"))
}

func TestIdPRotation(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	oldKids := p.KeyIDs()
	oldTokens := map[string]string{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		oldTokens[alg] = p.Token("alice", tiptest.WithAlg(alg))
	}

	p.RotateKeys()
	newKids := p.KeyIDs()
	keys, published := idpFetchKeys(t, p)
	if len(published) != 6 {
		t.Fatalf("after RotateKeys the JWKS has %d keys, want 6", len(published))
	}
	for alg, old := range oldTokens {
		if newKids[alg] == oldKids[alg] {
			t.Fatalf("%s kid unchanged by RotateKeys", alg)
		}
		if _, _, err := idpVerify(p, keys, old, alg, time.Now); err != nil {
			t.Fatalf("%s token of the previous key no longer verifies: %v", alg, err)
		}
		tok, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithAlg(alg)), alg, time.Now)
		if err != nil {
			t.Fatalf("%s token of the new key: %v", alg, err)
		}
		if tok.Header["kid"] != newKids[alg] {
			t.Fatalf("%s token kid %v, want the new %s", alg, tok.Header["kid"], newKids[alg])
		}
	}

	p.RotateKeys()
	if _, published := idpFetchKeys(t, p); len(published) != 9 {
		t.Fatalf("after two rotations the JWKS has %d keys, want 9", len(published))
	}

	p.RetireOldKeys()
	keys, published = idpFetchKeys(t, p)
	if len(published) != 3 {
		t.Fatalf("after RetireOldKeys the JWKS has %d keys, want 3", len(published))
	}
	cur := p.KeyIDs()
	for alg, old := range oldTokens {
		if _, ok := keys[cur[alg]]; !ok {
			t.Fatalf("current %s key not published", alg)
		}
		if _, _, err := idpVerify(p, keys, old, alg, time.Now); err == nil {
			t.Fatalf("%s token of a retired key still verifies", alg)
		}
		if _, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithAlg(alg)), alg, time.Now); err != nil {
			t.Fatalf("%s token after retirement: %v", alg, err)
		}
	}
}

func TestIdPSetDown(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	idpFetchKeys(t, p)
	if n := p.JWKSRequests(); n != 1 {
		t.Fatalf("JWKSRequests() = %d, want 1", n)
	}

	p.SetDown(true)
	for _, url := range []string{p.JWKSURL(), p.Issuer() + "/.well-known/openid-configuration"} {
		if status, _, _ := idpGet(t, url); status != http.StatusServiceUnavailable {
			t.Fatalf("GET %s while down: status %d, want 503", url, status)
		}
	}
	if n := p.JWKSRequests(); n != 1 {
		t.Fatalf("JWKSRequests() = %d after a 503, want 1", n)
	}
	if status, _, body := idpGet(t, p.Issuer()+"/token?user=alice"); status != http.StatusOK || len(body) == 0 {
		t.Fatalf("/token while down: status %d", status)
	}

	p.SetDown(false)
	idpFetchKeys(t, p)
	if status, _, _ := idpGet(t, p.Issuer()+"/.well-known/openid-configuration"); status != http.StatusOK {
		t.Fatalf("discovery after SetDown(false): status %d", status)
	}
	if n := p.JWKSRequests(); n != 2 {
		t.Fatalf("JWKSRequests() = %d, want 2", n)
	}
}

func TestIdPWithClaims(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	tok := p.Token("alice",
		tiptest.WithClaims(map[string]any{"exp": nil, "jti": nil, "groups": []string{"a", "b"}, "email": "x@y.example"}),
		tiptest.WithClaims(map[string]any{"aud": []string{"one", "two"}, "groups": "admins", "name": nil}),
	)
	_, claims := idpUnverified(t, tok)
	for _, gone := range []string{"exp", "jti", "name"} {
		if _, ok := claims[gone]; ok {
			t.Errorf("claim %s not deleted: %v", gone, claims)
		}
	}
	if claims["groups"] != "admins" || claims["email"] != "x@y.example" || claims["sub"] != "alice" {
		t.Errorf("claims %v", claims)
	}
	if aud, ok := claims["aud"].([]any); !ok || len(aud) != 2 || aud[0] != "one" {
		t.Errorf("aud %#v", claims["aud"])
	}

	keys, _ := idpFetchKeys(t, p)
	if _, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithClaims(map[string]any{"exp": nil})), "RS256", time.Now); err == nil {
		t.Error("token without exp verified with WithExpirationRequired")
	}
	if _, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithClaims(map[string]any{"iss": p.Issuer() + "/"})), "RS256", time.Now); err == nil {
		t.Error("token with another iss verified")
	}
	if _, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithClaims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})), "RS256", time.Now); !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Errorf("token with nbf in the future: %v", err)
	}
}

func TestIdPWithHeader(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	tok := p.Token("alice", tiptest.WithAlg("ES256"), tiptest.WithHeader(map[string]any{
		"kid":  "other-kid",
		"crit": []string{"exp"},
		"jku":  "https://attacker.example/jwks.json",
		"typ":  nil,
	}))
	h, _ := idpUnverified(t, tok)
	if h["kid"] != "other-kid" || h["jku"] != "https://attacker.example/jwks.json" || h["alg"] != "ES256" {
		t.Fatalf("header %v", h)
	}
	if crit, ok := h["crit"].([]any); !ok || len(crit) != 1 || crit[0] != "exp" {
		t.Fatalf("crit %#v", h["crit"])
	}
	if _, ok := h["typ"]; ok {
		t.Fatalf("typ not deleted: %v", h)
	}
	keys, _ := idpFetchKeys(t, p)
	if _, _, err := idpVerify(p, keys, tok, "ES256", time.Now); err == nil {
		t.Fatal("token with an unknown kid verified")
	}

	// Overriding alg changes the header only; the signature is still ES256.
	tok = p.Token("alice", tiptest.WithAlg("ES256"), tiptest.WithHeader(map[string]any{"alg": "RS256"}))
	if _, _, err := idpVerify(p, keys, tok, "RS256", time.Now); err == nil {
		t.Fatal("token with a lying alg header verified")
	}
}

func TestIdPWithLifetime(t *testing.T) {
	clock := tiptest.NewClock()
	p := newTestIdP(t, tiptest.IdPOptions{Clock: clock})
	keys, _ := idpFetchKeys(t, p)

	_, c := idpUnverified(t, p.Token("alice", tiptest.WithLifetime(-time.Minute)))
	if c["exp"].(float64) != c["iat"].(float64)-60 {
		t.Fatalf("WithLifetime(-1m): iat %v exp %v", c["iat"], c["exp"])
	}
	if _, _, err := idpVerify(p, keys, p.Token("alice", tiptest.WithLifetime(-time.Minute)), "RS256", clock.Now); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("negative lifetime: %v, want expired", err)
	}

	short := p.Token("alice", tiptest.WithLifetime(2*time.Minute))
	if _, _, err := idpVerify(p, keys, short, "RS256", clock.Now); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clock.Advance(3 * time.Minute)
	if _, _, err := idpVerify(p, keys, short, "RS256", clock.Now); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("after Advance(3m): %v, want expired", err)
	}
}

func TestIdPJTIUnique(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	seen := map[string]bool{}
	for i := range 500 {
		_, c := idpUnverified(t, p.Token("alice", tiptest.WithAlg("EdDSA")))
		jti := c["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %s repeated after %d tokens", jti, i)
		}
		seen[jti] = true
	}
}

func TestIdPTokenEndpoint(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	keys, _ := idpFetchKeys(t, p)

	status, hdr, body := idpGet(t, p.Issuer()+"/token?user=alice")
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q", status, hdr.Get("Content-Type"))
	}
	if _, claims, err := idpVerify(p, keys, string(body), "RS256", time.Now); err != nil || claims["sub"] != "alice" {
		t.Fatalf("dev token: %v %v", err, claims)
	}

	for _, alg := range []string{"ES256", "EdDSA"} {
		_, _, body := idpGet(t, p.Issuer()+"/token?user=bob%40corp.example&alg="+alg)
		tok, claims, err := idpVerify(p, keys, string(body), alg, time.Now)
		if err != nil || tok.Header["alg"] != alg || claims["email"] != "bob@corp.example" {
			t.Fatalf("%s dev token: %v %v", alg, err, claims)
		}
	}

	_, _, body = idpGet(t, p.Issuer()+"/token?user=alice&ttl=-1m")
	if _, _, err := idpVerify(p, keys, string(body), "RS256", time.Now); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("ttl=-1m: %v, want expired", err)
	}
	_, _, body = idpGet(t, p.Issuer()+"/token?user=alice&ttl=90s")
	_, claims, err := idpVerify(p, keys, string(body), "RS256", time.Now)
	if err != nil || claims["exp"].(float64)-claims["iat"].(float64) != 90 {
		t.Fatalf("ttl=90s: %v %v", err, claims)
	}
	_, _, body = idpGet(t, p.Issuer()+"/token?user=alice&omit=jti,%20email,")
	_, claims, err = idpVerify(p, keys, string(body), "RS256", time.Now)
	if _, hasJTI := claims["jti"]; err != nil || hasJTI || claims["email"] != nil || claims["sub"] != "alice" {
		t.Fatalf("omit=jti,email: %v %v", err, claims)
	}

	for _, q := range []string{"", "?user=", "?alg=ES256", "?user=a&alg=HS256", "?user=a&alg=none", "?user=a&ttl=soon", "?user=a&ttl=99999999999h"} {
		if status, _, body := idpGet(t, p.Issuer()+"/token"+q); status != http.StatusBadRequest {
			t.Errorf("/token%s: status %d (%s), want 400", q, status, body)
		}
	}
}

func TestIdPConcurrent(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	algs := []string{"RS256", "ES256", "EdDSA"}
	var (
		mu     sync.Mutex
		tokens []string
		wg     sync.WaitGroup
	)
	for g := range 12 {
		wg.Go(func() {
			for i := range 20 {
				tok := p.Token(fmt.Sprintf("user%d", g), tiptest.WithAlg(algs[(g+i)%3]))
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
				_ = p.KeyIDs()
				_ = p.JWKSRequests()
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for range 5 {
				resp, err := http.Get(p.JWKSURL())
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			p.RotateKeys()
			p.SetDown(false)
		}
	})
	wg.Wait()

	keys, published := idpFetchKeys(t, p)
	if len(published) != 12 {
		t.Fatalf("JWKS has %d keys after 3 rotations, want 12", len(published))
	}
	for _, tok := range tokens {
		h, _ := idpUnverified(t, tok)
		alg := h["alg"].(string)
		if _, _, err := idpVerify(p, keys, tok, alg, time.Now); err != nil {
			t.Fatalf("%s token minted during rotation: %v", alg, err)
		}
	}
	if p.JWKSRequests() != 16 {
		t.Fatalf("JWKSRequests() = %d, want 16", p.JWKSRequests())
	}
}

func TestIdPClose(t *testing.T) {
	p, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := p.JWKSURL()
	p.Close()
	p.Close()
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("IdP still answers after Close")
	}
	// Token keeps working without the server.
	if p.Token("alice") == "" {
		t.Fatal("empty token after Close")
	}
}

func TestIdPOddInput(t *testing.T) {
	p := newTestIdP(t, tiptest.IdPOptions{})
	keys, _ := idpFetchKeys(t, p)
	for _, q := range []string{
		"user=%ff%fe%00",
		"user=" + strings.Repeat("x", 4000),
		"user=a&user=b",
		"user=a&alg=ES256&alg=HS256",
		"user=a;b",
		"user=%zz",
	} {
		status, _, body := idpGet(t, p.Issuer()+"/token?"+q)
		switch status {
		case http.StatusOK:
			if _, _, err := idpVerify(p, keys, string(body), "RS256", time.Now); err != nil {
				if _, _, err2 := idpVerify(p, keys, string(body), "ES256", time.Now); err2 != nil {
					t.Errorf("/token?%.40s: token does not verify: %v", q, err)
				}
			}
		case http.StatusBadRequest:
		default:
			t.Errorf("/token?%.40s: status %d", q, status)
		}
	}
	req, err := http.NewRequest(http.MethodHead, p.JWKSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD JWKS: status %d", resp.StatusCode)
	}
}
