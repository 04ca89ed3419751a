package exchange

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// unsignedJWT builds a compact JWS with the given claims and a dummy
// signature: peek never verifies.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + ".c2ln"
}

func TestPeek(t *testing.T) {
	tok := unsignedJWT(t, map[string]any{"iss": "https://idp", "sub": "alice", "jti": "j1", "exp": 2000000000})
	info := peek(tok)
	if info.issuer != "https://idp" || info.subject != "alice" || !info.expires.Equal(time.Unix(2000000000, 0)) {
		t.Fatalf("peek = %+v", info)
	}
	same := peek(unsignedJWT(t, map[string]any{"iss": "https://idp", "sub": "alice", "jti": "j1", "exp": 2000000001}))
	if same.key != info.key {
		t.Fatal("two tokens with the same issuer and jti got different keys")
	}
	otherIssuer := peek(unsignedJWT(t, map[string]any{"iss": "https://other", "jti": "j1"}))
	if otherIssuer.key == info.key {
		t.Fatal("the same jti of two issuers got the same key")
	}
}

func TestPeekNeverFails(t *testing.T) {
	for _, tok := range []string{"", "a", "a.b", "a.b.c.d", "a.!!!.c", "a." + strings.Repeat("A", maxPeekSize+4) + ".c",
		unsignedJWT(t, map[string]any{"exp": "soon"}), unsignedJWT(t, map[string]any{"exp": -1}), unsignedJWT(t, map[string]any{"exp": 1e300})} {
		info := peek(tok)
		if info.key == "" || !info.expires.IsZero() {
			t.Errorf("peek(%.20q) = %+v", tok, info)
		}
	}
	if peek("x.y.z").key == peek("x.y.w").key {
		t.Fatal("tokens without jti must be told apart by their bytes")
	}
}

func TestIDTokenClaims(t *testing.T) {
	tok := unsignedJWT(t, map[string]any{"sts:identity_context": "ctx-value", "sub": "94482488-3041-7026-18f3-be45837cd0e4",
		"aws:identity_store_id": "d-1234567890", "n": 3})
	if got := idTokenClaims(tok); got != (idTokenInfo{identityContext: "ctx-value", userID: "94482488-3041-7026-18f3-be45837cd0e4", identityStoreID: "d-1234567890"}) {
		t.Fatalf("idTokenClaims = %+v", got)
	}
	if got := idTokenClaims(unsignedJWT(t, map[string]any{"sub": 3, "aws:identity_store_id": []string{"d-1"}})); got != (idTokenInfo{}) {
		t.Fatalf("claims that are not strings: %+v", got)
	}
	if idTokenClaims("garbage") != (idTokenInfo{}) {
		t.Fatal("idTokenClaims on garbage")
	}
}

func TestSpentSet(t *testing.T) {
	var s spentSet
	now := time.Unix(1700000000, 0)
	a := tokenInfo{key: "a", expires: now.Add(time.Hour)}
	if !s.claim(a, now) {
		t.Fatal("first claim refused")
	}
	if s.claim(a, now.Add(time.Minute)) || !s.has(a, now.Add(time.Minute)) {
		t.Fatal("second claim of the same token accepted")
	}
	later := now.Add(time.Hour + spentMargin)
	if s.has(a, later) {
		t.Fatal("a token is remembered past its expiry and margin")
	}
	noExp := tokenInfo{key: "b"}
	s.claim(noExp, now)
	if !s.has(noExp, now.Add(23*time.Hour)) || s.has(noExp, now.Add(25*time.Hour)) {
		t.Fatal("a token without exp must be remembered for 24 hours")
	}
}

func TestSpentSetPrunes(t *testing.T) {
	var s spentSet
	now := time.Unix(1700000000, 0)
	for i := range 5000 {
		s.claim(tokenInfo{key: string(rune(i)), expires: now}, now.Add(-time.Hour))
	}
	for i := range 10000 {
		s.claim(tokenInfo{key: "fresh" + string(rune(i)), expires: now.Add(2 * time.Hour)}, now.Add(time.Hour))
	}
	if len(s.until) > 10000 {
		t.Fatalf("expired entries were not pruned: %d left", len(s.until))
	}
}
