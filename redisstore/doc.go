// Package redisstore implements [exchange.Store] on Redis (or Valkey,
// ElastiCache, MemoryDB: anything go-redis v9 speaks to), so that the
// replicas of a service share their users' sessions, exchange each user's
// token once, and renew each user once.
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{os.Getenv("REDIS_ADDR")},
//		TLSConfig:             &tls.Config{MinVersion: tls.VersionTLS12},
//		ContextTimeoutEnabled: true, // lets Options.Timeout bound each call
//		MaxRetries:            -1,   // a Redis that is down fails a call at once
//		DialerRetries:         1,
//		DialTimeout:           time.Second,
//	})
//	key, err := base64.StdEncoding.DecodeString(os.Getenv("TIPKIT_STORE_KEY")) // 32 random bytes
//	if err != nil {
//		return err
//	}
//	nameKey, err := base64.StdEncoding.DecodeString(os.Getenv("TIPKIT_STORE_NAME_KEY")) // 32 more
//	if err != nil {
//		return err
//	}
//	store, err := redisstore.New(rdb, redisstore.Options{EncryptionKeys: [][]byte{key}, NameKey: nameKey})
//	if err != nil {
//		return err
//	}
//	if err := store.Check(ctx); err != nil { // address, TLS, credentials, ACL
//		return err
//	}
//	// Every replica's middleware, otherwise configured as for one replica:
//	mw, err := middleware.New(ctx, middleware.Options{
//		Issuer:    os.Getenv("TIPKIT_ISSUER"),
//		Audience:  []string{os.Getenv("TIPKIT_AUDIENCE")},
//		Exchange:  exchangeOptions, // exchange.Options: application, roles, Config
//		AWSConfig: cfg,
//		Cache:     exchange.CacheOptions{Store: store},
//	})
//
// # What Redis holds
//
// Every key of one user of one namespace is named
//
//	<prefix>:<namespace>:{<user>}:<kind>
//
// where <prefix> is [Options.Prefix], <namespace> is a keyed hash of
// [exchange.StoreKey.Namespace] (HMAC-SHA256 under the name key, 8 bytes in
// hex) and <user> a keyed hash of the namespace, the issuer and the subject
// (16 bytes in hex). The braces make <user> the key's Redis Cluster hash
// tag: all the keys of a user live in one slot. The kinds are:
//
//   - s: the user's session, sealed (below). It expires at the later of its
//     credentials' and its identity context's expiry; a session that holds a
//     refresh token is kept at least [Options.RefreshTokenTTL] after it was
//     saved, since the refresh token renews it after both have expired.
//   - l: the user's lease, the value given to Acquire (the Cache's are
//     random, 16 bytes in hex), until the lease's ttl. Acquire sets it only
//     while it is absent (SET NX) and reports true when it then holds the
//     value given, set now or by an earlier call whose answer came too
//     late; Release deletes it only while it holds the holder's value.
//   - t:<token>: the mark of a token already exchanged, the value given to
//     ClaimToken (the Cache's are random, one per Exchanger) until the time
//     given to it; <token> is a keyed hash (16 bytes in hex) of
//     [exchange.TokenID]. ClaimToken and ReleaseToken work as Acquire and
//     Release.
//
// Neither a key's name nor its value shows a user, an issuer, an ARN or a
// token, nor any of the session's secrets: the names are keyed hashes and
// the session is sealed.
//
// # Sealing
//
// A session is encoded as JSON and sealed with AES-256-GCM under
// [Options.EncryptionKeys][0]. The value stored is
//
//	version (1 byte, 1) | key ID (4 bytes) | nonce (12 random bytes) | ciphertext and tag
//
// The key ID is the first 4 bytes of a key derived from the encryption key
// with HKDF-SHA256: it names the key without revealing it, whatever the
// key's position in EncryptionKeys. The associated data is the version,
// the key ID and the full name of the key the value is stored under, so
// that a value copied under another name (another user's, another
// namespace's) fails to open. A value that fails to open, for whatever
// reason (tampered, moved, truncated, another version, a key ID that no
// key of EncryptionKeys has, a Redis value of another type, a value longer
// than [MaxSealedSize], which Load does not read), is absent:
// Load returns no session and counts it in [Stats].Rejected. The session
// opened must also name the key's issuer and subject, or it is rejected
// too.
//
// # Rotating the encryption key
//
// Every key of EncryptionKeys opens; the first seals. To rotate: add the
// new key second on every replica, then make it first (every replica can
// already open what the others seal with it), and remove the old key once
// the sessions it sealed have expired (after RefreshTokenTTL, or the
// longest session lifetime without refresh tokens). Set [Options.NameKey]
// to keep the key names stable across a rotation: by default the name key
// is derived from EncryptionKeys[0], so a new first key renames every key,
// and until every replica has the same first key the replicas share
// neither sessions nor token marks nor leases.
//
// # Timeouts and failures
//
// Each method is bounded by [Options.Timeout]. go-redis bounds socket reads
// and writes by a context's deadline only when the client's
// ContextTimeoutEnabled option is set; set it, or the client's ReadTimeout
// and WriteTimeout bound them instead. A failure to reach Redis is returned
// as an error (wrapping go-redis's, never holding a secret) and counted in
// [Stats].Errors; the [exchange.Cache] then works alone for that call.
//
// The Cache tells a Redis that is down from one that is slow by the error:
// a timeout is a slow answer (Redis may have applied the call, which is
// made again a few times), anything else ends the flight's use of Redis
// at once. go-redis by default retries a command and a refused dial, with
// pauses, until the deadline: a Redis that is down then looks slow and
// costs every new user several timeouts. Set MaxRetries to -1 and
// DialerRetries to 1, as above, so that a refused connection fails the
// call at once. go-redis logs such failures to stderr itself; send its
// log elsewhere with redis.SetLogger.
//
// New does not contact Redis, and a Store that cannot reach it serves all
// the same, each replica alone: call [Store.Check] at start, which tells
// a wrong address, TLS on one side only, refused credentials or a missing
// ACL permission (the store runs GET, SET, DEL, STRLEN, EVAL and EVALSHA
// on keys that begin with the prefix).
//
// A lease is not fenced: a holder paused beyond the lease's ttl may still
// save after another replica took the lease, and the last save wins. Either
// save is stored under its own user's name and sealed for it, so two
// holders at once never cross users.
package redisstore
