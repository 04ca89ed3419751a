package exchange

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// tokenInfo is what an Exchanger reads from a JWT without verifying it:
// the token was verified by whoever handed it over, or will be by AWS.
type tokenInfo struct {
	issuer, subject string
	expires         time.Time // zero when absent
	key             string    // identifies the token among those exchanged
}

// maxPeekSize bounds the payload an Exchanger decodes.
const maxPeekSize = 64 << 10

// peek reads the claims of token that the exchange needs. It never fails: an
// unreadable token yields empty fields and a key derived from its bytes.
//
// Claims are matched by their exact names, as the verifier and IAM Identity
// Center match them (encoding/json would match struct fields
// case-insensitively, taking a "SUB" member for the subject), and the last
// of duplicate members counts, as for them too.
func peek(token string) tokenInfo {
	var claims map[string]json.RawMessage
	_ = decodeClaims(token, &claims)
	iss, sub, jti := rawString(claims["iss"]), rawString(claims["sub"]), rawString(claims["jti"])
	info := tokenInfo{issuer: iss, subject: sub, expires: numericDate(claims["exp"])}
	if jti != "" {
		info.key = "jti\x00" + iss + "\x00" + jti
	} else {
		sum := sha256.Sum256([]byte(token))
		info.key = "sha256\x00" + hex.EncodeToString(sum[:])
	}
	return info
}

// decodeClaims decodes the payload of a compact JWS into v.
func decodeClaims(token string, v any) error {
	parts := strings.SplitN(token, ".", 4)
	if len(parts) != 3 || len(parts[1]) > maxPeekSize {
		return errMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return errMalformed
	}
	return json.Unmarshal(raw, v)
}

var errMalformed = &Error{kind: kindReauthenticate, Op: "Exchange", Code: "MalformedToken"}

// numericDate reads a JWT NumericDate; zero when absent or malformed.
func numericDate(raw json.RawMessage) time.Time {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || f <= 0 || f > 1e11 {
		return time.Time{}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// idTokenInfo is what a Session takes from the ID token of
// CreateTokenWithIAM.
type idTokenInfo struct {
	identityContext, userID, identityStoreID string
}

// idTokenClaims reads the claims of token, an ID token of IAM Identity
// Center, that a Session keeps: sts:identity_context, sub (the user's ID
// in the identity store) and aws:identity_store_id. It reads them without
// verification: they are opaque to us (the identity context is checked by
// STS) or informative (the IDs). A claim that is absent or not a string
// is "".
func idTokenClaims(token string) idTokenInfo {
	var claims map[string]json.RawMessage
	if decodeClaims(token, &claims) != nil {
		return idTokenInfo{}
	}
	return idTokenInfo{
		identityContext: rawString(claims["sts:identity_context"]),
		userID:          rawString(claims["sub"]),
		identityStoreID: rawString(claims["aws:identity_store_id"]),
	}
}

// rawString returns the JSON string raw, or "" when raw is not one.
func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// Identity Center remembers an exchanged jti for 24 hours; a token without
// exp is remembered as long.
const (
	spentRetention = 24 * time.Hour
	spentMargin    = 10 * time.Minute
)

// spentSet remembers the tokens sent to CreateTokenWithIAM, until they
// expire, so that none is sent twice.
type spentSet struct {
	mu        sync.Mutex
	until     map[spentKey]int64 // Unix nanoseconds
	nextPrune int
	owner     string // see storeClaim; drawn at its first call
}

// storeClaim returns the value with which the tokens of s are claimed in
// a Store: the same for the life of s, another for every set. A mark that
// holds it was set for this set: a claim made again after its answer was
// lost finds its own mark, and a token whose mark stayed after it was
// released here (never sent, or throttled) can still be sent from here.
func (s *spentSet) storeClaim() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == "" {
		s.owner = newStoreValue()
	}
	return s.owner
}

// spentKey is a token's key hashed to 16 bytes: an entry costs about 40
// bytes whatever the issuer's URL and the jti, which matters when many
// users pass through (an entry stays until its token expires).
type spentKey [16]byte

func keyOf(info tokenInfo) spentKey {
	sum := sha256.Sum256([]byte(info.key))
	return spentKey(sum[:16])
}

// claim records info as spent and reports whether it was not spent before.
func (s *spentSet) claim(info tokenInfo, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = make(map[spentKey]int64)
	}
	k := keyOf(info)
	if until, ok := s.until[k]; ok && now.UnixNano() < until {
		return false
	}
	s.pruneLocked(now)
	s.until[k] = spentUntil(info, now).UnixNano()
	return true
}

// spentUntil is how long the token of info is remembered as exchanged,
// from now: until its exp plus a margin, or a day without exp.
func spentUntil(info tokenInfo, now time.Time) time.Time {
	until := now.Add(spentRetention)
	if !info.expires.IsZero() {
		until = info.expires.Add(spentMargin)
	}
	if !until.After(now) {
		// Long expired: remembered a while all the same, or it could be
		// claimed again at once.
		until = now.Add(spentMargin)
	}
	return until
}

// release forgets that info was claimed, for a token that was refused
// before IAM Identity Center processed it.
func (s *spentSet) release(info tokenInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.until, keyOf(info))
}

// has reports whether info was claimed and is still remembered.
func (s *spentSet) has(info tokenInfo, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.until[keyOf(info)]
	return ok && now.UnixNano() < until
}

// pruneLocked drops forgotten entries once the set has doubled since the last
// prune, which keeps claims amortised O(1).
func (s *spentSet) pruneLocked(now time.Time) {
	if len(s.until) < s.nextPrune {
		return
	}
	n := now.UnixNano()
	for k, until := range s.until {
		if n >= until {
			delete(s.until, k)
		}
	}
	s.nextPrune = max(2*len(s.until), 1024)
}
