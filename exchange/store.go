package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Store shares users' sessions, and the marks of the tokens already
// exchanged, between the replicas of a service, so that any replica serves
// any user and a fleet exchanges each user's token once. A [Cache] with a
// Store (CacheOptions.Store) keeps its own memory as the first level: a
// user held there never reaches the Store.
//
// The redisstore package implements it on Redis. Every method is called on
// a miss, a renewal or an exchange, never on a request served from memory.
// An error of any method makes the Cache work alone for that call (as
// without a Store): a Store that is down costs sharing, never an answer.
//
// A Store holds secrets (credentials, identity contexts, refresh tokens):
// an implementation seals what it writes, and returns a value it cannot
// open, or one written under another key, as absent. Every method is safe
// for concurrent use.
type Store interface {
	// Load returns the session stored for key, or nil and no error when
	// there is none (or what is there cannot be opened).
	Load(ctx context.Context, key StoreKey) (*Session, error)
	// Save stores s as the session of key, replacing any, until the later
	// of its credentials' and its identity context's expiry. Only the
	// holder of key's lease saves.
	Save(ctx context.Context, key StoreKey, s *Session) error
	// ClaimToken marks the token named id (see [TokenID]) as exchanged,
	// until until, and reports whether it was not marked before: a replica
	// sends a token to IAM Identity Center only after claiming it.
	ClaimToken(ctx context.Context, key StoreKey, id string, until time.Time) (bool, error)
	// ReleaseToken removes the mark of a token that was claimed but not
	// processed by IAM Identity Center (the call was throttled).
	ReleaseToken(ctx context.Context, key StoreKey, id string) error
	// Acquire takes key's lease for ttl and returns its value, or "" and
	// no error when another holder has it. One replica at a time exchanges
	// or renews a user; a holder that dies releases by expiry.
	Acquire(ctx context.Context, key StoreKey, ttl time.Duration) (lease string, err error)
	// Release gives key's lease back if it still holds the value lease.
	Release(ctx context.Context, key StoreKey, lease string) error
}

// StoreKey names one user's entries in a [Store]: the user, and the
// namespace of the Exchanger, so that two applications (or two access
// roles) sharing one store never see each other's sessions.
type StoreKey struct {
	// Namespace is [Exchanger.Namespace]: a hash of the application ARN,
	// the access role ARN and the region. It holds no secret.
	Namespace string
	// User is the user.
	User UserKey
}

// Namespace returns a short hash of the Exchanger's ApplicationArn,
// AccessRoleArn and Config.Region: sessions obtained by one Exchanger serve
// another exactly when their namespaces are equal.
func (x *Exchanger) Namespace() string {
	return namespaceOf(x.o.ApplicationArn, x.o.AccessRoleArn, x.o.Config.Region)
}

func namespaceOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(lengthPrefixed(p)))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// lengthPrefixed returns s preceded by its length, so that a sequence of
// such strings names one sequence of parts only.
func lengthPrefixed(s string) string {
	n := len(s)
	return string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}) + s
}

// TokenID returns the name under which a Store marks webToken as
// exchanged: derived from its iss and jti (or, without a jti, from its
// bytes), so that two copies of one token share a mark. It is a hash and
// holds no part of the token; a Store may hash it again.
func TokenID(webToken string) string { return tokenID(peek(webToken)) }
