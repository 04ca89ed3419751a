package exchange

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"time"
)

// How a Cache works with its Store:
//
//   - The Cache's own memory is the first level: a user held there with
//     valid credentials never reaches the Store.
//   - A flight (a miss, a renewal) first loads the user's shared session,
//     and adopts it when it serves: no AWS call.
//   - Otherwise it takes the user's lease, loads again (another replica may
//     have finished in between), exchanges or renews from the newest
//     session (the shared one holds the latest refresh token), saves the
//     result and releases the lease. A token is claimed in the Store before
//     it is sent to CreateTokenWithIAM: a token another replica claimed is
//     refused with ErrReauthenticate, never sent.
//   - A replica that finds the lease taken polls for the holder's result,
//     within the flight's Timeout; a holder that dies releases by expiry.
//   - Any Store error makes that flight work alone, as without a Store;
//     after a few in a row the Store is left aside for storeRetry. A Store
//     that is down costs sharing, never an answer.

// Polling of a lease held by another replica, and the pause after a Store
// failure.
const (
	leasePollMin = 5 * time.Millisecond
	leasePollMax = 50 * time.Millisecond

	storeRetry         = time.Second
	storeFailuresAside = 3
)

// claimerKey carries a *claimer in the context of an exchange.
type claimerKey struct{}

// claimer claims tokens in the Store for one user before they are sent to
// IAM Identity Center.
type claimer struct {
	c   *Cache
	key StoreKey
}

// claim marks info's token as exchanged in the Store and reports whether
// this replica may send it: false when another replica claimed it. A Store
// failure leaves only the Exchanger's own mark (true).
func (cl *claimer) claim(ctx context.Context, info tokenInfo, until time.Time) bool {
	slow := 0
	for {
		ok, err := cl.c.o.Store.ClaimToken(ctx, cl.key, tokenID(info), until)
		if err == nil {
			return ok
		}
		cl.c.storeFailed(cl.key.User, err)
		if !cl.c.retrySlow(ctx, err, &slow) {
			return true
		}
	}
}

// release removes the mark of a token that was not processed.
func (cl *claimer) release(ctx context.Context, info tokenInfo) {
	if err := cl.c.o.Store.ReleaseToken(ctx, cl.key, tokenID(info)); err != nil {
		cl.c.storeFailed(cl.key.User, err)
	}
}

// replayed turns IAM Identity Center's InvalidGrantException for a token
// into an error matching ErrReauthenticate. With replicas sharing a Store
// it most likely answers a token another replica exchanged while its mark
// could not be shared (the Store was down, flushed or evicted it): the
// same code answers a replay and a setup error, and only a fresh token can
// tell them apart. The AWS code is kept for logs.
func replayed(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Kind == KindRefused && e.Op == "CreateTokenWithIAM" && e.Code == "InvalidGrantException" {
		return &Error{Kind: KindReauthenticate, Op: e.Op, Code: e.Code, Err: e.Err}
	}
	return err
}

func tokenID(info tokenInfo) string {
	k := keyOf(info)
	return hex.EncodeToString(k[:])
}

// storeUsable reports whether the Store may be asked now: there is one,
// and it did not fail within storeRetry.
func (c *Cache) storeUsable() bool {
	return c.o.Store != nil && c.x.o.Now().UnixNano() >= c.storeDownUntil.Load()
}

// storeFailed counts a Store failure and logs it (at most once per
// storeRetry). After storeFailuresAside failures in a row that are not
// timeouts (refused connections, a Redis that answers with errors), the
// Store is left aside for storeRetry. Timeouts do not count: a Store slow
// under a burst is retried within the flight (retrySlow) rather than left
// aside, since every replica working alone would send tokens another
// replica is exchanging.
func (c *Cache) storeFailed(user UserKey, err error) {
	c.stats.storeFailures.Add(1)
	if !isTimeout(err) && c.storeFailing.Add(1) >= storeFailuresAside {
		c.storeDownUntil.Store(c.x.o.Now().Add(storeRetry).UnixNano())
	}
	c.storeWarn.Do(func() { c.observe(cacheEvent{user: user, op: "store", err: err}) })
}

// storeAnswered notes that the Store answered: failures are consecutive no
// more.
func (c *Cache) storeAnswered() {
	if c.storeFailing.Load() != 0 {
		c.storeFailing.Store(0)
	}
}

// sharedResult is the outcome of a flight through the Store.
type sharedResult struct {
	sess    *Session
	err     error
	adopted bool // sess was obtained by another replica
	alone   bool // the Store failed before anything was sent to AWS: work alone
}

// shared obtains e's session through the Store: the session another
// replica obtained, or the result of the exchange or renewal this replica
// made under the user's lease.
func (c *Cache) shared(ctx context.Context, e *entry, prev *Session, token string) sharedResult {
	key := StoreKey{Namespace: c.ns, User: e.key}
	slow := 0 // Store calls that timed out in this flight
	for wait := leasePollMin; ; wait = min(2*wait, leasePollMax) {
		s, err := c.load(ctx, key)
		if err != nil {
			if c.retrySlow(ctx, err, &slow) {
				continue
			}
			return sharedResult{alone: true}
		}
		if c.serves(s, prev) {
			c.stats.sharedHits.Add(1)
			return sharedResult{sess: s, adopted: true}
		}
		lease, err := c.o.Store.Acquire(ctx, key, c.o.Timeout)
		if err != nil {
			c.storeFailed(e.key, err)
			if c.retrySlow(ctx, err, &slow) {
				continue
			}
			return sharedResult{alone: true}
		}
		if lease != "" {
			return c.underLease(ctx, key, lease, prev, token)
		}
		c.stats.sharedWaits.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return sharedResult{err: &Error{Kind: KindUnavailable, Op: "Exchange", Code: "LeaseHeld", Err: ctx.Err()}}
		}
	}
}

// slowRetries bounds the Store calls of one flight that may time out
// before the flight works alone.
const slowRetries = 4

// retrySlow reports whether a flight whose Store call failed with err
// should try the Store again: the call timed out (a Store that is slow, as
// under a burst, rather than down, which refuses at once), fewer than
// slowRetries times in this flight, and ctx allows a short pause. Working
// alone then would send a token another replica may be exchanging.
func (c *Cache) retrySlow(ctx context.Context, err error, slow *int) bool {
	if !isTimeout(err) || *slow >= slowRetries {
		return false
	}
	*slow++
	select {
	case <-time.After(time.Duration(*slow) * leasePollMax):
		return true
	case <-ctx.Done():
		return false
	}
}

// isTimeout reports whether err is a call that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// underLease exchanges or renews the user's session holding its lease,
// saves the result for the other replicas, then releases the lease.
func (c *Cache) underLease(ctx context.Context, key StoreKey, lease string, prev *Session, token string) sharedResult {
	defer func() {
		// On a context of its own: a flight that timed out still releases.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
		defer cancel()
		if err := c.o.Store.Release(rctx, key, lease); err != nil {
			c.storeFailed(key.User, err)
		}
	}()
	// Another replica may have finished between the load and the lease. If
	// this load fails, the lease is still this replica's: it goes on, its
	// token claimed in the Store as always.
	s, _ := c.load(ctx, key)
	if c.serves(s, prev) {
		c.stats.sharedHits.Add(1)
		return sharedResult{sess: s, adopted: true}
	}
	base := prev
	if s != nil {
		base = s // the shared session holds the latest identity context and refresh token
	}
	sess, err := c.call(context.WithValue(ctx, claimerKey{}, &claimer{c: c, key: key}), base, token)
	if sess != nil && sess.IdentityContext != "" && (err == nil || sess != base) {
		if serr := c.o.Store.Save(ctx, key, sess); serr != nil {
			c.storeFailed(key.User, serr)
		}
	}
	return sharedResult{sess: sess, err: err}
}

// load returns the user's shared session, nil when there is none or when
// it names another user.
func (c *Cache) load(ctx context.Context, key StoreKey) (*Session, error) {
	s, err := c.o.Store.Load(ctx, key)
	if err != nil {
		c.storeFailed(key.User, err)
		return nil, err
	}
	c.storeAnswered()
	if s == nil || s.Issuer != key.User.Issuer || s.Subject != key.User.Subject {
		return nil, nil
	}
	return s, nil
}

// serves reports whether the shared session s can stand for a renewal of
// prev: its credentials are valid beyond the expiry window, and, when
// prev's are still valid (a renewal ahead of expiry), they expire later
// and outside the refresh window.
func (c *Cache) serves(s, prev *Session) bool {
	if s == nil || s.Credentials.Expires.IsZero() {
		return false
	}
	now := c.x.o.Now()
	if prev != nil && now.Before(prev.Credentials.Expires) {
		return s.Credentials.Expires.After(prev.Credentials.Expires) && now.Before(s.Credentials.Expires.Add(-c.o.RefreshWindow))
	}
	return now.Before(s.Credentials.Expires.Add(-c.x.o.ExpiryWindow))
}
