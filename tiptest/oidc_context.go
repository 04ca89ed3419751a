package tiptest

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// identityContext is what an identity context asserts. On the wire it is
// base64url(JSON) "." base64url(HMAC-SHA256(secret, base64url(JSON))),
// opaque to clients and tamper-evident.
type identityContext struct {
	User        string `json:"u"`
	Application string `json:"a"`
	IssuedAt    int64  `json:"i"`
	Expires     int64  `json:"e"`
	Nonce       string `json:"n"`
}

// sealContext returns a new identity context of user, valid for TokenTTL
// from now.
func (a *AWS) sealContext(user string, now time.Time) string {
	payload, err := json.Marshal(identityContext{
		User:        user,
		Application: a.ApplicationArn(),
		IssuedAt:    now.Unix(),
		Expires:     now.Add(a.tokenTTL).Unix(),
		Nonce:       randomID(8),
	})
	if err != nil { // a struct of strings and integers always encodes
		return ""
	}
	encoded := b64(payload)
	return encoded + "." + b64(a.contextMAC(encoded))
}

// contextMAC authenticates the encoded payload of an identity context.
func (a *AWS) contextMAC(encoded string) []byte {
	return hmacSHA256(a.secret, "identity-context:"+encoded)
}

// openContext checks an identity context: authentic, issued for the
// application, not expired (by the Clock).
func (a *AWS) openContext(s string) (*identityContext, *apiError) {
	invalid := newAPIError("InvalidIdentityToken", "The provided context assertion is not valid")
	encoded, mac, ok := strings.Cut(s, ".")
	if !ok {
		return nil, invalid
	}
	sum, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(sum, a.contextMAC(encoded)) {
		return nil, invalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(encoded)
	var ic identityContext
	if err != nil || json.Unmarshal(payload, &ic) != nil || ic.User == "" || ic.Application != a.ApplicationArn() {
		return nil, invalid
	}
	if !a.clock.Now().Before(time.Unix(ic.Expires, 0)) {
		return nil, newAPIError("ExpiredTokenException", "The provided context assertion has expired")
	}
	return &ic, nil
}

// UserID returns the ID of the Identity Center user name in the identity
// store: a GUID, stable for the life of the AWS, that no two users share.
// It is what AWS knows the user by: the sub claim of the idToken
// CreateTokenWithIAM returns for the user, the grantee of the user's S3
// access grants (GetDataAccess's Grantee, see Grant). The user need not
// have signed in yet.
func (a *AWS) UserID(name string) string {
	h := hex.EncodeToString(hmacSHA256(a.secret, "user:"+name)[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IdentityStoreID returns the ID of the identity store of the local IAM
// Identity Center instance ("d-" and 10 hexadecimal digits), the
// aws:identity_store_id claim of the idTokens CreateTokenWithIAM returns.
func (a *AWS) IdentityStoreID() string {
	return "d-" + hex.EncodeToString(hmacSHA256(a.secret, "identity-store")[:5])
}

// userIDPattern is the form of an identity store user ID: a GUID,
// sometimes after 10 hexadecimal digits and a hyphen.
var userIDPattern = regexp.MustCompile(`^([0-9a-f]{10}-)?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// directoryUserID returns the identity store user ID that user names:
// user itself when it has the form of a user ID, else the ID of the user
// of that name.
func (a *AWS) directoryUserID(user string) string {
	if userIDPattern.MatchString(user) {
		return user
	}
	return a.UserID(user)
}
