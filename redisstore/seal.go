package redisstore

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/exchange"
)

// formatVersion is the first byte of every sealed value: a value of
// another version is not opened.
const formatVersion byte = 1

// The layout of a sealed value: version | key ID | nonce | ciphertext and
// tag. The version and the key ID are the header.
const (
	keyIDLen  = 4
	headerLen = 1 + keyIDLen
	nonceLen  = 12
	tagLen    = 16
)

// The HKDF info strings of the keys derived from an encryption key.
const (
	keyIDInfo   = "tipkit redisstore key id"
	nameKeyInfo = "tipkit redisstore name key"
)

// keyID names an encryption key in the values it sealed.
type keyID [keyIDLen]byte

// keyIDOf returns the ID of the encryption key key: derived from it, so
// that it does not depend on the key's position in Options.EncryptionKeys
// and reveals nothing of the key.
func keyIDOf(key []byte) keyID {
	return keyID(derive(key, keyIDInfo, keyIDLen))
}

// derivedNameKey returns the default name key, derived from the first
// encryption key.
func derivedNameKey(key []byte) []byte {
	return derive(key, nameKeyInfo, 32)
}

func derive(key []byte, info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, key, nil, info, n)
	if err != nil {
		panic("redisstore: HKDF: " + err.Error()) // only for n > 255*32
	}
	return b
}

// sealer seals values with one key and opens them with any of its keys.
type sealer struct {
	id   keyID
	aead cipher.AEAD
	open map[keyID]cipher.AEAD
}

// sealed returns plain sealed for the key named name.
func (s *sealer) sealed(name string, plain []byte) []byte {
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plain)+tagLen)
	out[0] = formatVersion
	copy(out[1:headerLen], s.id[:])
	_, _ = rand.Read(out[headerLen:]) // crypto/rand.Read never fails
	return s.aead.Seal(out, out[headerLen:], plain, associatedData(out[:headerLen], name))
}

// opened returns the plaintext of sealed, read from the key named name, and
// whether it opened.
func (s *sealer) opened(name string, sealed []byte) ([]byte, bool) {
	if len(sealed) < headerLen+nonceLen+tagLen || sealed[0] != formatVersion {
		return nil, false
	}
	aead, ok := s.open[keyID(sealed[1:headerLen])]
	if !ok {
		return nil, false
	}
	nonce, ciphertext := sealed[headerLen:headerLen+nonceLen], sealed[headerLen+nonceLen:]
	plain, err := aead.Open(nil, nonce, ciphertext, associatedData(sealed[:headerLen], name))
	return plain, err == nil
}

// associatedData binds a sealed value to its header and to the name of the
// key it is stored under.
func associatedData(header []byte, name string) []byte {
	ad := make([]byte, 0, len(header)+len(name))
	return append(append(ad, header...), name...)
}

// namer names the keys of a user: <prefix>:<namespace>:{<user>}:<kind>,
// with keyed hashes for the namespace, the user and the token.
type namer struct {
	key    []byte
	prefix string
}

// The labels that keep the keyed hashes of namer apart.
const (
	namespaceLabel = "namespace"
	userLabel      = "user"
	tokenLabel     = "token"
)

func (n namer) session(k exchange.StoreKey) string { return n.user(k) + "s" }

func (n namer) lease(k exchange.StoreKey) string { return n.user(k) + "l" }

func (n namer) token(k exchange.StoreKey, id string) string {
	return n.user(k) + "t:" + n.sum(16, tokenLabel, id)
}

// user returns the names' common part for k's user, up to the kind.
func (n namer) user(k exchange.StoreKey) string {
	return n.prefix + ":" + n.sum(8, namespaceLabel, k.Namespace) +
		":{" + n.sum(16, userLabel, k.Namespace, k.User.Issuer, k.User.Subject) + "}:"
}

// sum returns the first size bytes, in hex, of the HMAC-SHA256 under the
// name key of label and parts, each preceded by its length (4 bytes, big
// endian) so that one sequence of parts has one hash.
func (n namer) sum(size int, label string, parts ...string) string {
	m := hmac.New(sha256.New, n.key)
	writePart(m, label)
	for _, p := range parts {
		writePart(m, p)
	}
	return hex.EncodeToString(m.Sum(nil)[:size])
}

func writePart(h hash.Hash, p string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(p)))
	h.Write(n[:])
	h.Write([]byte(p))
}

// record is a session as sealed.
type record struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Source          string    `json:"source,omitempty"`
	CanExpire       bool      `json:"can_expire"`
	Expires         time.Time `json:"expires"`
	AccountID       string    `json:"account_id,omitempty"`
	IdentityContext string    `json:"identity_context"`
	ContextExpires  time.Time `json:"context_expires"`
	RefreshToken    string    `json:"refresh_token,omitempty"`
	Issuer          string    `json:"issuer"`
	Subject         string    `json:"subject"`
	// UserID and IdentityStoreID came later: values sealed before them
	// open with both empty.
	UserID          string `json:"user_id,omitempty"`
	IdentityStoreID string `json:"identity_store_id,omitempty"`
}

// encodeSession returns s encoded, or an error when a time of s has no
// JSON form (a year outside [0,9999]).
func encodeSession(s *exchange.Session) ([]byte, error) {
	c := s.Credentials
	return json.Marshal(record{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          c.Source,
		CanExpire:       c.CanExpire,
		Expires:         c.Expires,
		AccountID:       c.AccountID,
		IdentityContext: s.IdentityContext,
		ContextExpires:  s.ContextExpires,
		RefreshToken:    s.RefreshToken,
		Issuer:          s.Issuer,
		Subject:         s.Subject,
		UserID:          s.UserID,
		IdentityStoreID: s.IdentityStoreID,
	})
}

// decodeSession returns the session encoded in b, and whether b was one.
func decodeSession(b []byte) (*exchange.Session, bool) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false
	}
	return &exchange.Session{
		Credentials: aws.Credentials{
			AccessKeyID:     r.AccessKeyID,
			SecretAccessKey: r.SecretAccessKey,
			SessionToken:    r.SessionToken,
			Source:          r.Source,
			CanExpire:       r.CanExpire,
			Expires:         r.Expires,
			AccountID:       r.AccountID,
		},
		IdentityContext: r.IdentityContext,
		ContextExpires:  r.ContextExpires,
		RefreshToken:    r.RefreshToken,
		Issuer:          r.Issuer,
		Subject:         r.Subject,
		UserID:          r.UserID,
		IdentityStoreID: r.IdentityStoreID,
	}, true
}
