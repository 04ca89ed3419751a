package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/seal"
)

var _ exchange.Store = (*Store)(nil)

// ErrConfig matches every error of [New] for invalid options; the message
// names the option.
var ErrConfig = errors.New("redisstore: invalid options")

// The per-option errors of New; each matches ErrConfig.
var (
	errNoClient      = fmt.Errorf("%w: a Redis client is required", ErrConfig)
	errEncryptionKey = fmt.Errorf("%w: Options.EncryptionKeys: at least one key is required, each exactly 32 bytes long (AES-256) and listed once", ErrConfig)
	errNameKey       = fmt.Errorf("%w: Options.NameKey, when set, must be at least 32 bytes long", ErrConfig)
	errPrefix        = fmt.Errorf("%w: Options.Prefix must not contain '{' or '}' (it would change every key's Redis Cluster hash tag)", ErrConfig)
	errDuration      = fmt.Errorf("%w: Options.Timeout and Options.RefreshTokenTTL must not be negative", ErrConfig)
)

// The defaults of [Options].
const (
	defaultPrefix          = "tipkit"
	defaultTimeout         = 100 * time.Millisecond
	defaultRefreshTokenTTL = 8 * time.Hour
)

// MaxSealedSize bounds the value [Store.Load] reads, in bytes: a longer
// value under a session's key is rejected unread (counted in
// [Stats].Rejected), and [Store.Save] refuses a session that seals to more.
// A sealed session takes a few KiB.
const MaxSealedSize = 64 << 10

// Options configures a [Store]. Only EncryptionKeys is required.
type Options struct {
	// EncryptionKeys are the AES-256 keys, each exactly 32 bytes long, that
	// seal and open the sessions. The first seals; every one opens, so a
	// new key can be rolled out before it seals (see the package
	// documentation). Keep them secret, as the sessions themselves.
	EncryptionKeys [][]byte
	// NameKey is the secret of the keyed hashes that name the keys in Redis,
	// at least 32 bytes long. By default it is derived (HKDF-SHA256) from
	// EncryptionKeys[0], so that rotating the first encryption key renames
	// every key: set it to keep names, and so the sharing between replicas,
	// stable across a rotation.
	NameKey []byte
	// Prefix begins every key name, followed by a colon. It must not
	// contain a brace. Default "tipkit".
	Prefix string
	// Timeout bounds each method's call to Redis. go-redis applies it to
	// socket reads and writes only when the client's ContextTimeoutEnabled
	// option is set. Default 100 milliseconds.
	Timeout time.Duration
	// RefreshTokenTTL is how long a session holding a refresh token is
	// kept after it is saved, when that is later than both its credentials'
	// and its identity context's expiry: the refresh token renews the
	// session after both have expired. Set it to the session duration of
	// IAM Identity Center, after which the refresh token no longer works.
	// Default 8 hours.
	RefreshTokenTTL time.Duration
	// Logger, when set, receives a warning when a stored value cannot be
	// opened (at most one a second), with the reason and nothing of the
	// value or the key. Default: nothing is logged.
	Logger *slog.Logger
}

// Stats counts what a [Store] did since it was created. Each method call
// counts once in its own counters, and in Errors when it failed to reach
// Redis.
type Stats struct {
	// Loads counts the calls of Load.
	Loads uint64
	// Hits counts the loads that returned a session.
	Hits uint64
	// Misses counts the loads that found no value.
	Misses uint64
	// Saves counts the sessions saved, or deleted because they had
	// expired.
	Saves uint64
	// Rejected counts the loads that found a value that could not be
	// opened: tampered, moved from another key, truncated, of another
	// format version, sealed by a key not in EncryptionKeys, naming another
	// user, longer than MaxSealedSize, or a Redis value of another type.
	// Such a value is absent.
	Rejected uint64
	// Errors counts the calls that failed to reach Redis, or that Redis
	// answered with an error (timeouts, refused connections, ACL and
	// out-of-memory refusals...).
	Errors uint64
	// Claims counts the calls of ClaimToken that returned true.
	Claims uint64
	// ClaimsRefused counts the tokens found claimed by another claimer:
	// ClaimToken returned false.
	ClaimsRefused uint64
	// Leases counts the calls of Acquire that returned true.
	Leases uint64
	// LeasesBusy counts the calls of Acquire that found the lease held by
	// another holder.
	LeasesBusy uint64
}

type counters struct {
	loads, hits, misses, saves, rejected, errors atomic.Uint64
	claims, claimsRefused, leases, leasesBusy    atomic.Uint64
}

// Store is an [exchange.Store] on Redis. It is safe for concurrent use.
type Store struct {
	client          redis.UniversalClient
	timeout         time.Duration
	refreshTokenTTL time.Duration
	names           seal.Namer
	sealer          *seal.Sealer
	c               counters
	log             *slog.Logger   // nil: nothing logged
	logRejected     rate.Sometimes // of rejection warnings
}

// New returns a Store on client configured by o, or an error wrapping one
// of the errors above when o is not valid. client may be any go-redis v9
// client (a single node, Sentinel, Cluster, Ring); New does not contact it.
func New(client redis.UniversalClient, o Options) (*Store, error) {
	if isNil(client) {
		return nil, errNoClient
	}
	if len(o.EncryptionKeys) == 0 {
		return nil, errEncryptionKey
	}
	sealer, err := seal.NewSealer(o.EncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errEncryptionKey, err)
	}
	nameKey, err := seal.NameKey(o.NameKey, o.EncryptionKeys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errNameKey, err)
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, errPrefix
	}
	if o.Timeout < 0 || o.RefreshTokenTTL < 0 {
		return nil, errDuration
	}
	s := &Store{
		client:          client,
		timeout:         o.Timeout,
		refreshTokenTTL: o.RefreshTokenTTL,
		names:           seal.Namer{Key: nameKey, Prefix: prefix},
		sealer:          sealer,
		log:             o.Logger,
		logRejected:     rate.Sometimes{Interval: time.Second},
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.refreshTokenTTL == 0 {
		s.refreshTokenTTL = defaultRefreshTokenTTL
	}
	return s, nil
}

// isNil reports whether client is nil, or a nil pointer of one of
// go-redis's client types.
func isNil(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case nil:
		return true
	case *redis.Client:
		return c == nil
	case *redis.ClusterClient:
		return c == nil
	case *redis.Ring:
		return c == nil
	}
	return false
}

// Stats returns the counters of s.
func (s *Store) Stats() Stats {
	return Stats{
		Loads:         s.c.loads.Load(),
		Hits:          s.c.hits.Load(),
		Misses:        s.c.misses.Load(),
		Saves:         s.c.saves.Load(),
		Rejected:      s.c.rejected.Load(),
		Errors:        s.c.errors.Load(),
		Claims:        s.c.claims.Load(),
		ClaimsRefused: s.c.claimsRefused.Load(),
		Leases:        s.c.leases.Load(),
		LeasesBusy:    s.c.leasesBusy.Load(),
	}
}

// failed counts err, an error of Redis or of reaching it, and returns it
// wrapped with the operation's name.
func (s *Store) failed(op string, err error) error {
	s.c.errors.Add(1)
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// Load returns the session stored for key, or nil and no error when there
// is none or when what is stored cannot be opened (see [Stats].Rejected).
// It reads at most [MaxSealedSize] bytes: a longer value is rejected
// without being read. The error, when Redis cannot be reached, wraps
// go-redis's.
func (s *Store) Load(ctx context.Context, key exchange.StoreKey) (*exchange.Session, error) {
	s.c.loads.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	name := s.names.Session(key)
	v, err := loadScript.Run(ctx, s.client, []string{name}, MaxSealedSize).Result()
	if errors.Is(err, redis.Nil) {
		s.c.misses.Add(1)
		return nil, nil
	}
	if err != nil {
		return nil, s.failed("Load", err)
	}
	var sealed []byte
	switch v := v.(type) {
	case string:
		sealed = []byte(v)
	case int64:
		if v < 0 {
			s.rejected("a value of another Redis type")
		} else {
			s.rejected("a value longer than MaxSealedSize, left unread")
		}
		return nil, nil
	default:
		s.rejected("an unexpected answer of Redis")
		return nil, nil
	}
	plain, ok := s.sealer.Open(name, sealed)
	if !ok {
		s.rejected("a value that does not open (altered, moved from another key, truncated, another format, or sealed by a key not in EncryptionKeys)")
		return nil, nil
	}
	sess, ok := seal.DecodeSession(plain)
	if !ok || sess.Issuer != key.User.Issuer || sess.Subject != key.User.Subject {
		s.rejected("a sealed value that does not hold this key's user")
		return nil, nil
	}
	s.c.hits.Add(1)
	return sess, nil
}

// loadScript returns the string at KEYS[1] when it is at most ARGV[1]
// bytes long, its length when it is longer (without reading it), -1 when
// KEYS[1] holds another type, and nil when there is no KEYS[1].
var loadScript = redis.NewScript(`
local n = redis.pcall("STRLEN", KEYS[1])
if type(n) == "table" then
	if n.err and string.sub(n.err, 1, 9) == "WRONGTYPE" then
		return -1
	end
	return n
end
if n > tonumber(ARGV[1]) then
	return n
end
return redis.call("GET", KEYS[1])
`)

// rejected counts a value Load treats as absent, and logs why.
func (s *Store) rejected(reason string) {
	s.c.rejected.Add(1)
	if s.log != nil {
		s.logRejected.Do(func() {
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "redisstore: a stored session is treated as absent", slog.String("reason", reason))
		})
	}
}

// Save stores sess, sealed, as the session of key, replacing any. It is
// kept until the later of its credentials' and its identity context's
// expiry, and with a refresh token at least Options.RefreshTokenTTL from
// now; never less than a second. A session already expired (and holding
// no refresh token) is deleted instead. sess must be the session of key's
// user: its Issuer and Subject must be the user's.
func (s *Store) Save(ctx context.Context, key exchange.StoreKey, sess *exchange.Session) error {
	if sess == nil {
		return errors.New("redisstore: Save: no session")
	}
	if sess.Issuer != key.User.Issuer || sess.Subject != key.User.Subject {
		return errors.New("redisstore: Save: the session's issuer and subject are not the key's user")
	}
	name := s.names.Session(key)
	ttl := seal.KeepFor(sess, time.Now(), s.refreshTokenTTL)
	var sealed []byte
	if ttl > 0 {
		plain, err := seal.EncodeSession(sess)
		if err != nil {
			return fmt.Errorf("redisstore: Save: %w", err)
		}
		sealed = s.sealer.Seal(name, plain)
		if len(sealed) > MaxSealedSize {
			return fmt.Errorf("redisstore: Save: the sealed session is %d bytes long, over MaxSealedSize (%d)", len(sealed), MaxSealedSize)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var err error
	if sealed == nil {
		err = s.client.Del(ctx, name).Err()
	} else {
		err = s.client.Set(ctx, name, sealed, ceilMillis(ttl)).Err()
	}
	if err != nil {
		return s.failed("Save", err)
	}
	s.c.saves.Add(1)
	return nil
}

// ceilMillis rounds d up to a whole number of milliseconds, the precision
// of Redis's PX: a key never expires before its time.
func ceilMillis(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// ClaimToken marks the token named id as exchanged for key's user, with
// the value claim, until until (at least one millisecond). It reports
// whether the mark holds claim: it was absent and is now set, or an
// earlier call with the same claim set it (a call whose answer was lost).
// claim must not be empty.
func (s *Store) ClaimToken(ctx context.Context, key exchange.StoreKey, id, claim string, until time.Time) (bool, error) {
	if claim == "" {
		return false, errors.New("redisstore: ClaimToken: the claim is empty")
	}
	ttl := max(time.Until(until), time.Millisecond)
	ours, err := s.setOwn(ctx, s.names.Token(key, id), claim, ttl)
	if err != nil {
		return false, s.failed("ClaimToken", err)
	}
	if ours {
		s.c.claims.Add(1)
	} else {
		s.c.claimsRefused.Add(1)
	}
	return ours, nil
}

// ReleaseToken removes the mark of the token named id for key's user if
// it holds claim; it does nothing otherwise.
func (s *Store) ReleaseToken(ctx context.Context, key exchange.StoreKey, id, claim string) error {
	if err := s.deleteOwn(ctx, s.names.Token(key, id), claim); err != nil {
		return s.failed("ReleaseToken", err)
	}
	return nil
}

// Acquire takes key's lease with the value lease for ttl, which must be
// positive, and reports whether the lease holds lease: it was free and is
// now taken, or an earlier call with the same value took it (a call whose
// answer was lost). It reports false when another holder has it. lease
// must not be empty.
func (s *Store) Acquire(ctx context.Context, key exchange.StoreKey, lease string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redisstore: Acquire: the lease's ttl must be positive")
	}
	if lease == "" {
		return false, errors.New("redisstore: Acquire: the lease is empty")
	}
	held, err := s.setOwn(ctx, s.names.Lease(key), lease, ttl)
	if err != nil {
		return false, s.failed("Acquire", err)
	}
	if held {
		s.c.leases.Add(1)
	} else {
		s.c.leasesBusy.Add(1)
	}
	return held, nil
}

// Release gives key's lease back if it still holds the value lease; it
// does nothing otherwise, nor when lease is "".
func (s *Store) Release(ctx context.Context, key exchange.StoreKey, lease string) error {
	if err := s.deleteOwn(ctx, s.names.Lease(key), lease); err != nil {
		return s.failed("Release", err)
	}
	return nil
}

// setOwn sets name to value for ttl unless it exists, and reports whether
// name then holds value.
func (s *Store) setOwn(ctx context.Context, name, value string, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := setOwnScript.Run(ctx, s.client, []string{name}, value, ceilMillis(ttl).Milliseconds()).Int()
	return n == 1, err
}

// deleteOwn deletes name if it holds value.
func (s *Store) deleteOwn(ctx context.Context, name, value string) error {
	if value == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return deleteOwnScript.Run(ctx, s.client, []string{name}, value).Err()
}

// setOwnScript sets KEYS[1] to ARGV[1] for ARGV[2] milliseconds unless it
// exists, and returns 1 when KEYS[1] then holds ARGV[1] (set now, or by an
// earlier call with the same value), 0 otherwise. The value is the
// holder's: a call retried after its answer was lost finds its own.
var setOwnScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
	return 1
end
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return 1
end
return 0
`)

// deleteOwnScript deletes KEYS[1] only while it holds ARGV[1]: a lease or
// a mark that expired and was taken by another holder stays that holder's.
var deleteOwnScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)
