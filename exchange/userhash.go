package exchange

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// UserHash returns the short, stable name under which the Exchanger's
// RoleSessionName and log records show the user k, never the subject
// itself: an HMAC-SHA256 of the issuer (length-prefixed, so that no two
// users share it) and the subject keyed by Options.HashKey, or without a
// key a plain SHA-256, which is a pseudonym rather than a secret (see
// Options.HashKey). Replicas with the same HashKey name a user alike.
func (x *Exchanger) UserHash(k UserKey) string {
	msg := []byte(lengthPrefixed(k.Issuer) + k.Subject)
	var sum []byte
	if len(x.o.HashKey) > 0 {
		m := hmac.New(sha256.New, x.o.HashKey)
		m.Write(msg)
		sum = m.Sum(nil)
	} else {
		s := sha256.Sum256(msg)
		sum = s[:]
	}
	return hex.EncodeToString(sum[:12])
}
