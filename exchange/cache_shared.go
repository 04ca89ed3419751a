package exchange

import (
	"context"
	"crypto/rand"
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
//   - A call that timed out (a slow reply: Redis may have applied it) is
//     made again a few times within the flight, unless the Store has
//     answered neither the flight nor any call for storeSilence: a Store
//     that swallows requests is down, left aside, and costs a new user one
//     timeout (more for the flights under way when it went silent). The lease and the claims
//     carry values of their own (the flight's lease, the Exchanger's
//     claim), so that a call made again finds its own lease or mark
//     rather than reading it as another replica's.
//   - Any other Store error makes that flight work alone, as without a
//     Store, and the flight makes no other Store call (but the release of
//     a lease it holds); after a few such errors in a row the Store is left
//     aside for storeRetry. A Store that is down costs sharing, never an
//     answer.

// Polling of a lease held by another replica, and the pause after a Store
// failure.
const (
	leasePollMin = 5 * time.Millisecond
	leasePollMax = 50 * time.Millisecond

	storeRetry         = time.Second
	storeFailuresAside = 3
	// storeSilence is how long a Store that answers no call, while calls
	// time out, is slow before it counts as down.
	storeSilence = time.Second
)

// storeFlight is one flight's use of the Store for one user.
type storeFlight struct {
	c     *Cache
	key   StoreKey
	lease string // the value of the flight's lease, the same for every Acquire
	slow  int    // calls that timed out
	// down: a call failed other than by timing out; the flight makes no
	// other call, but the release of a lease it holds.
	down bool
	// leased: an Acquire took the lease, or timed out and may have.
	leased bool
	// start is when the flight's last Store call was made; alive: the
	// Store answered a call of the flight.
	start time.Time
	alive bool
	// claimed: a ClaimToken set the mark, or timed out and may have.
	claimed bool
}

// newStoreValue returns 16 random bytes in hex: the value of a lease or
// of the claims of an Exchanger.
func newStoreValue() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// usable reports whether the flight may call the Store.
func (f *storeFlight) usable() bool { return !f.down && f.c.storeUsable() }

// begin notes that the flight makes a Store call now.
func (f *storeFlight) begin() { f.start = time.Now() }

// answered notes that the Store answered a call of the flight.
func (f *storeFlight) answered() {
	f.alive = true
	f.c.storeAnswered()
}

// failed counts err, an error of the flight's last Store call. A call that
// timed out is a slow reply (a Store busy under a burst, or stalled after
// it applied the call) when the Store answered an earlier call of the
// flight, or answered any call within storeSilence; otherwise (an endpoint
// that swallows requests) it counts as the Store being down.
func (f *storeFlight) failed(err error) {
	silent := isTimeout(err) && f.c.storeSilent(f.start)
	down := !isTimeout(err) || silent && !f.alive
	f.c.storeFailed(f.key.User, err, down)
	if down {
		f.down = true
	}
}

// retry reports whether a call that failed with err is made again (see
// retrySlow).
func (f *storeFlight) retry(ctx context.Context, err error) bool {
	return !f.down && f.c.retrySlow(ctx, err, &f.slow)
}

// claim marks info's token as exchanged in the Store and reports whether
// this replica may send it: false when another replica claimed it. A Store
// that fails, or that the flight no longer calls, leaves only the
// Exchanger's own mark (true).
func (f *storeFlight) claim(ctx context.Context, info tokenInfo, until time.Time) bool {
	for f.usable() {
		f.begin()
		ok, err := f.c.o.Store.ClaimToken(ctx, f.key, tokenID(info), f.c.x.spent.storeClaim(), until)
		if err == nil {
			f.answered()
			f.claimed = ok
			return ok
		}
		f.failed(err)
		f.claimed = f.claimed || isTimeout(err)
		if !f.retry(ctx, err) {
			break
		}
	}
	return true
}

// release removes the mark of a token that was not processed.
func (f *storeFlight) release(ctx context.Context, info tokenInfo) {
	if !f.claimed || f.down {
		return
	}
	f.begin()
	if err := f.c.o.Store.ReleaseToken(ctx, f.key, tokenID(info), f.c.x.spent.storeClaim()); err != nil {
		f.failed(err)
		return
	}
	f.claimed = false
	f.answered()
}

// releaseLease gives back the lease the flight holds or may hold, on a
// context of its own: a flight that timed out still releases.
func (f *storeFlight) releaseLease(ctx context.Context) {
	if !f.leased {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.c.o.Timeout)
	defer cancel()
	f.begin()
	if err := f.c.o.Store.Release(rctx, f.key, f.lease); err != nil {
		f.failed(err)
		return
	}
	f.leased = false
	f.answered()
}

// alone ends the flight's use of the Store, giving back a lease that an
// Acquire whose answer was lost may have taken, unless the Store is down.
func (f *storeFlight) alone(ctx context.Context) sharedResult {
	if !f.down {
		f.releaseLease(ctx)
	}
	return sharedResult{alone: true}
}

// replayed turns IAM Identity Center's InvalidGrantException for a token
// into an error matching ErrReauthenticate. With replicas sharing a Store
// it most likely answers a token another replica exchanged while its mark
// could not be shared (the Store was down, flushed or evicted it): the
// same code answers a replay and a setup error, and only a fresh token can
// tell them apart. The AWS code is kept for logs.
func replayed(err error) error {
	var e *Error
	if errors.As(err, &e) && e.kind == kindRefused && e.Op == "CreateTokenWithIAM" && e.Code == "InvalidGrantException" {
		return &Error{kind: kindReauthenticate, Op: e.Op, Code: e.Code, Err: e.Err}
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
// storeRetry). After storeFailuresAside failures in a row of a Store that
// is down (refused connections, a Redis that answers with errors, timeouts
// while nothing is answered), the Store is left aside for storeRetry.
// Timeouts of a Store that answers other calls do not count: a Store slow
// under a burst is retried within the flight (retrySlow) rather than left
// aside, since every replica working alone would send tokens another
// replica is exchanging.
func (c *Cache) storeFailed(user UserKey, err error, down bool) {
	c.stats.storeFailures.Add(1)
	if down && c.storeFailing.Add(1) >= storeFailuresAside {
		c.storeDownUntil.Store(c.x.o.Now().Add(storeRetry).UnixNano())
	}
	c.storeWarn.Do(func() { c.observe(cacheEvent{user: user, op: "store", err: err}) })
}

// storeSilent notes that a Store call made at start timed out, and
// reports whether the Store has answered no call for storeSilence: since
// the later of its last answer and the start of the first call that timed
// out after it (wall clock: a Store's silence is real time).
func (c *Cache) storeSilent(start time.Time) bool {
	c.silentSince.CompareAndSwap(0, start.UnixNano())
	since := max(c.silentSince.Load(), c.lastAnswer.Load())
	return time.Since(time.Unix(0, since)) >= storeSilence
}

// storeAnswered notes that the Store answered: failures are consecutive no
// more.
func (c *Cache) storeAnswered() {
	c.lastAnswer.Store(time.Now().UnixNano())
	if c.silentSince.Load() != 0 {
		c.silentSince.Store(0)
	}
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
	f := &storeFlight{c: c, key: StoreKey{Namespace: c.ns, User: e.key}, lease: newStoreValue()}
	for wait := leasePollMin; f.usable(); wait = min(2*wait, leasePollMax) {
		s, err := f.load(ctx)
		if err != nil {
			if f.retry(ctx, err) {
				continue
			}
			return f.alone(ctx)
		}
		if c.serves(s, prev) {
			c.stats.sharedHits.Add(1)
			return sharedResult{sess: s, adopted: true}
		}
		f.begin()
		held, err := c.o.Store.Acquire(ctx, f.key, f.lease, c.o.Timeout)
		if err != nil {
			f.failed(err)
			f.leased = f.leased || isTimeout(err)
			if f.retry(ctx, err) {
				continue
			}
			return f.alone(ctx)
		}
		f.answered()
		f.leased = held
		if held {
			return c.underLease(ctx, f, prev, token)
		}
		c.stats.sharedWaits.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return sharedResult{err: &Error{kind: kindUnavailable, Op: "Exchange", Code: "LeaseHeld", Err: ctx.Err()}}
		}
	}
	return f.alone(ctx)
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

// isTimeout reports whether err is a call that ran out of time after it
// may have reached the Store: a slow reply. A dial that failed, even by
// timing out, sent nothing: the Store is unreachable, not slow.
func isTimeout(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// underLease exchanges or renews the user's session holding its lease,
// saves the result for the other replicas, then releases the lease.
func (c *Cache) underLease(ctx context.Context, f *storeFlight, prev *Session, token string) sharedResult {
	// Released even when a call of the flight failed: the lease would
	// otherwise keep the other replicas waiting until it expires.
	defer f.releaseLease(ctx)
	// Another replica may have finished between the load and the lease. If
	// this load fails, the lease is still this replica's: it goes on, its
	// token claimed in the Store unless the Store is down.
	s, _ := f.load(ctx)
	if c.serves(s, prev) {
		c.stats.sharedHits.Add(1)
		return sharedResult{sess: s, adopted: true}
	}
	base := prev
	if s != nil {
		base = s // the shared session holds the latest identity context and refresh token
	}
	sess, err := c.call(ctx, base, token, f)
	if sess != nil && sess.IdentityContext != "" && (err == nil || sess != base) && f.usable() {
		f.begin()
		if serr := c.o.Store.Save(ctx, f.key, sess); serr != nil {
			f.failed(serr)
		} else {
			f.answered()
		}
	}
	return sharedResult{sess: sess, err: err}
}

// load returns the user's shared session, nil when there is none or when
// it names another user.
func (f *storeFlight) load(ctx context.Context) (*Session, error) {
	f.begin()
	s, err := f.c.o.Store.Load(ctx, f.key)
	if err != nil {
		f.failed(err)
		return nil, err
	}
	f.answered()
	if s == nil || s.Issuer != f.key.User.Issuer || s.Subject != f.key.User.Subject {
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
		return s.Credentials.Expires.After(prev.Credentials.Expires) && now.Before(s.Credentials.Expires.Add(-c.o.BackgroundRefreshWindow))
	}
	return now.Before(s.Credentials.Expires.Add(-c.x.o.CredentialsExpiryWindow))
}
