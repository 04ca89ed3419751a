// Package seal holds what the shared session stores (redisstore,
// dynamostore) have in common: the sealing of a session with AES-256-GCM,
// bound to the name it is stored under, the keyed hashes that name a
// user's entries, and the encoding of a session. A store owns only its
// engine's calls.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/exchange"
)

// FormatVersion is the first byte of every sealed value: a value of
// another version is not opened.
const FormatVersion byte = 1

// The layout of a sealed value: version | key ID | nonce | ciphertext and
// tag. The version and the key ID are the header.
const (
	KeyIDLen  = 4
	headerLen = 1 + KeyIDLen
	nonceLen  = 12
	tagLen    = 16
)

// The HKDF info strings of the keys derived from an encryption key. They
// name redisstore, where they were first used: values sealed and names
// given since then stay valid.
const (
	keyIDInfo   = "tipkit redisstore key id"
	nameKeyInfo = "tipkit redisstore name key"
)

// KeyID names an encryption key in the values it sealed.
type KeyID [KeyIDLen]byte

// KeyIDOf returns the ID of the encryption key key: derived from it, so
// that it does not depend on the key's position in a store's
// EncryptionKeys and reveals nothing of the key.
func KeyIDOf(key []byte) KeyID {
	return KeyID(derive(key, keyIDInfo, KeyIDLen))
}

// NameKey returns the name key of a store: nameKey, copied, when it is
// set, else one derived (HKDF-SHA256) from the first encryption key. It
// returns an error, without the key, when nameKey is set and shorter than
// 32 bytes.
func NameKey(nameKey, firstEncryptionKey []byte) ([]byte, error) {
	switch {
	case nameKey == nil:
		return derive(firstEncryptionKey, nameKeyInfo, 32), nil
	case len(nameKey) < 32:
		return nil, fmt.Errorf("it is %d bytes long", len(nameKey))
	}
	return append([]byte(nil), nameKey...), nil
}

func derive(key []byte, info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, key, nil, info, n)
	if err != nil {
		panic("seal: HKDF: " + err.Error()) // only for n > 255*32
	}
	return b
}

// Sealer seals values with one key and opens them with any of its keys.
type Sealer struct {
	id   KeyID
	aead cipher.AEAD
	open map[KeyID]cipher.AEAD
}

// NewSealer returns a Sealer that seals with keys[0] and opens with any
// of keys, each an AES-256 key of exactly 32 bytes listed once. Its error
// names the key by its position, never by its bytes.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	s := &Sealer{open: make(map[KeyID]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("key %d is %d bytes long", i, len(k))
		}
		id := KeyIDOf(k)
		if _, dup := s.open[id]; dup {
			return nil, fmt.Errorf("key %d is listed twice", i)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		s.open[id] = aead
		if i == 0 {
			s.id, s.aead = id, aead
		}
	}
	return s, nil
}

// Seal returns plain sealed for the entry named name.
func (s *Sealer) Seal(name string, plain []byte) []byte {
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plain)+tagLen)
	out[0] = FormatVersion
	copy(out[1:headerLen], s.id[:])
	_, _ = rand.Read(out[headerLen:]) // crypto/rand.Read never fails
	return s.aead.Seal(out, out[headerLen:], plain, associatedData(out[:headerLen], name))
}

// Open returns the plaintext of sealed, read from the entry named name,
// and whether it opened.
func (s *Sealer) Open(name string, sealed []byte) ([]byte, bool) {
	if len(sealed) < headerLen+nonceLen+tagLen || sealed[0] != FormatVersion {
		return nil, false
	}
	aead, ok := s.open[KeyID(sealed[1:headerLen])]
	if !ok {
		return nil, false
	}
	nonce, ciphertext := sealed[headerLen:headerLen+nonceLen], sealed[headerLen+nonceLen:]
	plain, err := aead.Open(nil, nonce, ciphertext, associatedData(sealed[:headerLen], name))
	return plain, err == nil
}

// associatedData binds a sealed value to its header and to the name of the
// entry it is stored under.
func associatedData(header []byte, name string) []byte {
	ad := make([]byte, 0, len(header)+len(name))
	return append(append(ad, header...), name...)
}

// Namer names the entries of a user: <prefix>:<namespace>:{<user>}:<kind>,
// with keyed hashes for the namespace, the user and the token. The braces
// make <user> a Redis Cluster hash tag.
type Namer struct {
	// Key is the secret of the keyed hashes (see NameKey).
	Key []byte
	// Prefix begins every name, followed by a colon.
	Prefix string
}

// The labels that keep the keyed hashes of Namer apart.
const (
	namespaceLabel = "namespace"
	userLabel      = "user"
	tokenLabel     = "token"
)

// Session returns the name of k's session.
func (n Namer) Session(k exchange.StoreKey) string { return n.user(k) + "s" }

// Lease returns the name of k's lease.
func (n Namer) Lease(k exchange.StoreKey) string { return n.user(k) + "l" }

// Token returns the name of the mark of the token named id for k's user.
func (n Namer) Token(k exchange.StoreKey, id string) string {
	return n.user(k) + "t:" + n.sum(16, tokenLabel, id)
}

// user returns the names' common part for k's user, up to the kind.
func (n Namer) user(k exchange.StoreKey) string {
	return n.Prefix + ":" + n.sum(8, namespaceLabel, k.Namespace) +
		":{" + n.sum(16, userLabel, k.Namespace, k.User.Issuer, k.User.Subject) + "}:"
}

// sum returns the first size bytes, in hex, of the HMAC-SHA256 under the
// name key of label and parts, each preceded by its length (4 bytes, big
// endian) so that one sequence of parts has one hash.
func (n Namer) sum(size int, label string, parts ...string) string {
	m := hmac.New(sha256.New, n.Key)
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
	// The SessionOptions came later still: values sealed before them open
	// without any.
	Tags              map[string]string `json:"tags,omitempty"`
	TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
	SourceIdentity    string            `json:"source_identity,omitempty"`
	Policy            string            `json:"policy,omitempty"`
	PolicyArns        []string          `json:"policy_arns,omitempty"`
}

// EncodeSession returns s encoded, or an error when a time of s has no
// JSON form (a year outside [0,9999]).
func EncodeSession(s *exchange.Session) ([]byte, error) {
	c, so := s.Credentials, s.SessionOptions
	if so == nil {
		so = &exchange.SessionOptions{}
	}
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

		Tags:              so.Tags,
		TransitiveTagKeys: so.TransitiveTagKeys,
		SourceIdentity:    so.SourceIdentity,
		Policy:            so.Policy,
		PolicyArns:        so.PolicyArns,
	})
}

// DecodeSession returns the session encoded in b, and whether b was one.
func DecodeSession(b []byte) (*exchange.Session, bool) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false
	}
	var so *exchange.SessionOptions
	if len(r.Tags) > 0 || len(r.TransitiveTagKeys) > 0 || r.SourceIdentity != "" || r.Policy != "" || len(r.PolicyArns) > 0 {
		so = &exchange.SessionOptions{
			Tags:              r.Tags,
			TransitiveTagKeys: r.TransitiveTagKeys,
			SourceIdentity:    r.SourceIdentity,
			Policy:            r.Policy,
			PolicyArns:        r.PolicyArns,
		}
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
		SessionOptions:  so,
	}, true
}

// minKeep is the shortest time a saved session that has not expired is
// kept. A store's Load returns a session whatever its expiries, as the
// Cache's own memory does: its caller checks them.
const minKeep = time.Second

// KeepFor returns how long a store keeps sess, saved at now: until the
// later of its credentials' and its identity context's expiry, and, when
// it holds a refresh token, at least refreshTokenTTL; never less than a
// second. It returns 0 when sess has expired.
func KeepFor(sess *exchange.Session, now time.Time, refreshTokenTTL time.Duration) time.Duration {
	end := sess.Credentials.Expires
	if sess.ContextExpires.After(end) {
		end = sess.ContextExpires
	}
	if sess.RefreshToken != "" {
		if kept := now.Add(refreshTokenTTL); kept.After(end) {
			end = kept
		}
	}
	ttl := end.Sub(now)
	if ttl <= 0 {
		return 0
	}
	return max(ttl, minKeep)
}
