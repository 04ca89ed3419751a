package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/time/rate"

	"github.com/tipkit/tipkit/dynamostore/internal/resetretry"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/seal"
)

var _ exchange.Store = (*Store)(nil)

// ErrConfig matches every error of [New] for invalid options; the message
// names the option.
var ErrConfig = errors.New("dynamostore: invalid options")

// The per-option errors of New; each matches ErrConfig.
var (
	errNoClient      = fmt.Errorf("%w: a DynamoDB client is required", ErrConfig)
	errTable         = fmt.Errorf("%w: Options.Table: the name of the table is required", ErrConfig)
	errEncryptionKey = fmt.Errorf("%w: Options.EncryptionKeys: at least one key is required, each exactly 32 bytes long (AES-256) and listed once", ErrConfig)
	errNameKey       = fmt.Errorf("%w: Options.NameKey, when set, must be at least 32 bytes long", ErrConfig)
	errDuration      = fmt.Errorf("%w: Options.Timeout and Options.RefreshTokenTTL must not be negative", ErrConfig)
)

// The defaults of [Options].
const (
	defaultPrefix          = "tipkit"
	defaultTimeout         = time.Second
	defaultRefreshTokenTTL = 8 * time.Hour
)

// MaxSealedSize bounds the sealed session [Store.Load] accepts, in bytes:
// a longer value is rejected (counted in [Stats].Rejected), and
// [Store.Save] refuses a session that seals to more. A sealed session
// takes a few KiB.
const MaxSealedSize = 64 << 10

// The attributes of an item (see the package documentation).
const (
	attrKey    = "pk"
	attrValue  = "v"
	attrHolder = "h"
	// AttrExpiry is the name of the expiry attribute of every item: a
	// number, the Unix time in seconds after which the item is absent.
	// [CreateTable] makes it the table's time-to-live attribute.
	AttrExpiry = "exp"
)

// Options configures a [Store]. Table and EncryptionKeys are required.
type Options struct {
	// Table is the name (or the ARN) of the DynamoDB table, made by
	// [CreateTable] or as the package documentation shows.
	Table string
	// EncryptionKeys are the AES-256 keys, each exactly 32 bytes long, that
	// seal and open the sessions. The first seals; every one opens, so a
	// new key can be rolled out before it seals. Keep them secret, as the
	// sessions themselves (see the package documentation for a KMS data
	// key).
	EncryptionKeys [][]byte
	// NameKey is the secret of the keyed hashes that name the items, at
	// least 32 bytes long. By default it is derived (HKDF-SHA256) from
	// EncryptionKeys[0], so that rotating the first encryption key renames
	// every item: set it to keep names, and so the sharing between
	// replicas, stable across a rotation.
	NameKey []byte
	// Prefix begins every item's key, followed by a colon, so that several
	// applications can share a table. Default "tipkit".
	Prefix string
	// Timeout bounds each method's call to DynamoDB, retries of the client
	// included. Default 1 second: longer than redisstore's 100 ms, since a
	// call may open a TLS connection (an instance's first call, as on a
	// Lambda cold start, takes tens of milliseconds, more on a small
	// function's share of a CPU), and a first call that times out makes a
	// fresh instance work alone: it then sends its user's token to IAM
	// Identity Center again, and that token, spent by another instance, is
	// answered 401. A table that answers nothing costs a new user one
	// Timeout (see [exchange.Cache]).
	Timeout time.Duration
	// RefreshTokenTTL is how long a session holding a refresh token is
	// kept after it is saved, when that is later than both its credentials'
	// and its identity context's expiry: the refresh token renews the
	// session after both have expired. Set it to the session duration of
	// IAM Identity Center. Default 8 hours.
	RefreshTokenTTL time.Duration
	// Logger, when set, receives a warning when a stored value cannot be
	// opened (at most one a second), with the reason and nothing of the
	// value or the key. Default: nothing is logged.
	Logger *slog.Logger
}

// Stats counts what a [Store] did since it was created. Each method call
// counts once in its own counters, and in Errors when it failed to reach
// DynamoDB.
type Stats struct {
	// Loads counts the calls of Load.
	Loads uint64
	// Hits counts the loads that returned a session.
	Hits uint64
	// Misses counts the loads that found no item, or an item past its
	// expiry.
	Misses uint64
	// Saves counts the sessions saved, or deleted because they had
	// expired.
	Saves uint64
	// Rejected counts the loads that found an item that could not be
	// opened: tampered, moved from another item, truncated, of another
	// format version, sealed by a key not in EncryptionKeys, naming another
	// user, longer than MaxSealedSize, or without a binary value. Such an
	// item is absent.
	Rejected uint64
	// Errors counts the calls that failed to reach DynamoDB, or that
	// DynamoDB answered with an error (timeouts, throttling, refused
	// credentials or permissions, a missing table...).
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

// Store is an [exchange.Store] on a DynamoDB table. It is safe for
// concurrent use.
type Store struct {
	client          *dynamodb.Client
	table           string
	timeout         time.Duration
	refreshTokenTTL time.Duration
	names           seal.Namer
	sealer          *seal.Sealer
	c               counters
	log             *slog.Logger   // nil: nothing logged
	logRejected     rate.Sometimes // of rejection warnings
}

// New returns a Store on client's table o.Table, configured by o, or an
// error wrapping one of the errors above when o is not valid. New does
// not contact DynamoDB: call [Store.Check] at start.
func New(client *dynamodb.Client, o Options) (*Store, error) {
	if client == nil {
		return nil, errNoClient
	}
	if o.Table == "" {
		return nil, errTable
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
	if o.Timeout < 0 || o.RefreshTokenTTL < 0 {
		return nil, errDuration
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	s := &Store{
		client:          client,
		table:           o.Table,
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

// ownRetries is the option of each call of a Store: its own retry rule
// (package resetretry), whatever the client's retryer. A reset connection
// is made once more; throttling, a refused connection and a timeout fail
// the call at once, and the exchange.Cache works alone for that flight,
// rather than spend the Timeout in the SDK's backoff.
var ownRetries = func() func(*dynamodb.Options) {
	r := resetretry.New()
	return func(o *dynamodb.Options) {
		o.Retryer = r
		o.RetryMaxAttempts = 0
	}
}()

// failed counts err, an error of DynamoDB or of reaching it, and returns
// it wrapped with the operation's name.
func (s *Store) failed(op string, err error) error {
	s.c.errors.Add(1)
	return fmt.Errorf("dynamostore: %s: %w", op, err)
}

// Load returns the session stored for key, or nil and no error when there
// is none, when its item is past its expiry attribute, or when what is
// stored cannot be opened (see [Stats].Rejected). It reads with strong
// consistency. The error, when DynamoDB cannot be reached, wraps the
// SDK's.
func (s *Store) Load(ctx context.Context, key exchange.StoreKey) (*exchange.Session, error) {
	s.c.loads.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	name := s.names.Session(key)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(name),
		ConsistentRead: aws.Bool(true),
	}, ownRetries)
	if err != nil {
		return nil, s.failed("Load", err)
	}
	if out.Item == nil || expired(out.Item, time.Now()) {
		s.c.misses.Add(1)
		return nil, nil
	}
	v, ok := out.Item[attrValue].(*types.AttributeValueMemberB)
	switch {
	case !ok:
		s.rejected("an item without a binary value")
		return nil, nil
	case len(v.Value) > MaxSealedSize:
		s.rejected("a value longer than MaxSealedSize")
		return nil, nil
	}
	plain, ok := s.sealer.Open(name, v.Value)
	if !ok {
		s.rejected("a value that does not open (altered, moved from another item, truncated, another format, or sealed by a key not in EncryptionKeys)")
		return nil, nil
	}
	sess, ok := seal.DecodeSession(plain)
	if !ok || sess.Issuer != key.User.Issuer || sess.Subject != key.User.Subject {
		s.rejected("a sealed value that does not hold this item's user")
		return nil, nil
	}
	s.c.hits.Add(1)
	return sess, nil
}

// rejected counts a value Load treats as absent, and logs why.
func (s *Store) rejected(reason string) {
	s.c.rejected.Add(1)
	if s.log != nil {
		s.logRejected.Do(func() {
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "dynamostore: a stored session is treated as absent", slog.String("reason", reason))
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
		return errors.New("dynamostore: Save: no session")
	}
	if sess.Issuer != key.User.Issuer || sess.Subject != key.User.Subject {
		return errors.New("dynamostore: Save: the session's issuer and subject are not the key's user")
	}
	name := s.names.Session(key)
	now := time.Now()
	keep := seal.KeepFor(sess, now, s.refreshTokenTTL)
	var sealed []byte
	if keep > 0 {
		plain, err := seal.EncodeSession(sess)
		if err != nil {
			return fmt.Errorf("dynamostore: Save: %w", err)
		}
		sealed = s.sealer.Seal(name, plain)
		if len(sealed) > MaxSealedSize {
			return fmt.Errorf("dynamostore: Save: the sealed session is %d bytes long, over MaxSealedSize (%d)", len(sealed), MaxSealedSize)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var err error
	if sealed == nil {
		_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: itemKey(name)}, ownRetries)
	} else {
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table,
			Item: map[string]types.AttributeValue{
				attrKey:    &types.AttributeValueMemberS{Value: name},
				attrValue:  &types.AttributeValueMemberB{Value: sealed},
				AttrExpiry: expiry(now.Add(keep)),
			},
		}, ownRetries)
	}
	if err != nil {
		return s.failed("Save", err)
	}
	s.c.saves.Add(1)
	return nil
}

// ClaimToken marks the token named id as exchanged for key's user, with
// the value claim, until until. It reports whether the mark holds claim:
// it was absent (or past its expiry) and is now set, or an earlier call
// with the same claim set it (a call whose answer was lost). claim must
// not be empty.
func (s *Store) ClaimToken(ctx context.Context, key exchange.StoreKey, id, claim string, until time.Time) (bool, error) {
	if claim == "" {
		return false, errors.New("dynamostore: ClaimToken: the claim is empty")
	}
	ours, err := s.putOwn(ctx, s.names.Token(key, id), claim, until)
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
// positive, and reports whether the lease holds lease: it was free (or
// past its expiry) and is now taken, or an earlier call with the same
// value took it (a call whose answer was lost). It reports false when
// another holder has it. lease must not be empty.
func (s *Store) Acquire(ctx context.Context, key exchange.StoreKey, lease string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("dynamostore: Acquire: the lease's ttl must be positive")
	}
	if lease == "" {
		return false, errors.New("dynamostore: Acquire: the lease is empty")
	}
	held, err := s.putOwn(ctx, s.names.Lease(key), lease, time.Now().Add(ttl))
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

// putOwn writes the item name holding value until until, unless an item
// of another holder is there and not past its expiry, and reports whether
// the item then holds value.
func (s *Store) putOwn(ctx context.Context, name, value string, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := time.Now()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table,
		Item: map[string]types.AttributeValue{
			attrKey:    &types.AttributeValueMemberS{Value: name},
			attrHolder: &types.AttributeValueMemberS{Value: value},
			AttrExpiry: expiry(until),
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #exp <= :now OR #h = :me"),
		ExpressionAttributeNames: map[string]string{"#pk": attrKey, "#exp": AttrExpiry, "#h": attrHolder},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": unixSeconds(now.Unix()),
			":me":  &types.AttributeValueMemberS{Value: value},
		},
	}, ownRetries)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	return err == nil, err
}

// deleteOwn deletes the item name if it holds value.
func (s *Store) deleteOwn(ctx context.Context, name, value string) error {
	if value == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(name),
		ConditionExpression:       aws.String("#h = :me"),
		ExpressionAttributeNames:  map[string]string{"#h": attrHolder},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: value}},
	}, ownRetries)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil
	}
	return err
}

// itemKey returns the primary key of the item name.
func itemKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: name}}
}

// expiry returns the expiry attribute for t: Unix seconds, rounded up, so
// that an item never expires before its time.
func expiry(t time.Time) types.AttributeValue {
	sec := t.Unix()
	if t.After(time.Unix(sec, 0)) {
		sec++
	}
	return unixSeconds(sec)
}

func unixSeconds(sec int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(sec, 10)}
}

// expired reports whether item is past its expiry attribute at now, as the
// conditions of putOwn read it: the expiry is at most now's Unix second.
// An item without a readable expiry is expired.
func expired(item map[string]types.AttributeValue, now time.Time) bool {
	n, ok := item[AttrExpiry].(*types.AttributeValueMemberN)
	if !ok {
		return true
	}
	sec, err := strconv.ParseInt(n.Value, 10, 64)
	return err != nil || sec <= now.Unix()
}
