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
// The Cache reads an error that is a timeout (it matches
// context.DeadlineExceeded, or is a net.Error whose Timeout is true, other
// than a failed dial) as a slow reply: the call may have been applied,
// and the Cache may make it again. Any other error means the Store is
// down or refusing: the flight makes no other call to it but the release
// of a lease it holds. The marks and
// the leases carry a value chosen by the caller, so that a call made again
// after its answer was lost finds its own value rather than another's.
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
	// with the value claim, until until, unless it is marked already. It
	// reports whether the mark holds claim: set now, or by an earlier call
	// with the same claim. A replica sends a token to IAM Identity Center
	// only after claiming it.
	ClaimToken(ctx context.Context, key StoreKey, id, claim string, until time.Time) (bool, error)
	// ReleaseToken removes the mark of a token that was claimed but not
	// processed by IAM Identity Center (the call was throttled), if the
	// mark holds claim.
	ReleaseToken(ctx context.Context, key StoreKey, id, claim string) error
	// Acquire takes key's lease with the value lease for ttl, unless
	// another value holds it, and reports whether the lease holds lease:
	// taken now, or by an earlier call with the same value. One replica at
	// a time exchanges or renews a user; a holder that dies releases by
	// expiry.
	Acquire(ctx context.Context, key StoreKey, lease string, ttl time.Duration) (bool, error)
	// Release gives key's lease back if it holds the value lease.
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
