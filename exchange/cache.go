package exchange

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// UserKey names one user: the issuer and subject of the user's verified
// token. Credentials are cached, and only ever handed out, per UserKey.
type UserKey struct {
	Issuer, Subject string
}

// CacheOptions configures a [Cache]. Zero fields take the defaults below.
type CacheOptions struct {
	// MaxUsers bounds the users whose credentials are held; the least
	// recently used is evicted first. Users whose first exchange is under
	// way or failed are tracked apart, within the same bound, and dropped
	// first-in first-out: they never push out a user who holds
	// credentials. Default 10,000.
	MaxUsers int
	// BackgroundRefreshWindow is how long before expiry a request triggers
	// a renewal in the background, while it is served the still-valid
	// credentials. Default 5 minutes.
	BackgroundRefreshWindow time.Duration
	// RefusedTTL is how long a refusal is answered from memory, without
	// calling AWS: IAM Identity Center's refusal of a token, for that token
	// only (a fresh token of the user is tried at once), and STS's refusal
	// of the user (AccessDenied from AssumeRole: a setup problem), for the
	// user. Default 30 seconds.
	RefusedTTL time.Duration
	// UnavailableTTL is how long a failure to reach AWS (throttling,
	// timeouts) is answered from memory for that user. Default 1 second.
	UnavailableTTL time.Duration
	// MaxInFlight bounds the exchanges and renewals in flight at once, for
	// all users together, and so the goroutines and connections they hold.
	// Default 100: a burst of 100 new users is served in one wave. It is not
	// a rate: with AWS answering in 50 ms, 100 in flight can make 2,000
	// calls per second; use RateLimit to stay under the STS quota.
	MaxInFlight int
	// RateLimit, when positive, caps exchanges and renewals per second, to
	// stay under the account's STS quota (about 600 signed requests per
	// second, shared by every caller in the account and region).
	RateLimit float64
	// Timeout bounds one shared exchange or renewal, which runs detached
	// from the requests waiting on it. Default 30 seconds.
	Timeout time.Duration
	// Store, when set, shares users' sessions and the marks of exchanged
	// tokens with the other replicas of the service (see [Store]), so that
	// any replica serves any user and the fleet exchanges each token once.
	// The Cache's own memory stays the first level. nil: each Cache works
	// alone.
	Store Store
	// MeterProvider receives the Cache's metrics: tipkit.exchanges (by
	// tipkit.operation and tipkit.result), tipkit.exchange.duration (s),
	// tipkit.users, tipkit.exchanges.in_flight and tipkit.store.fallbacks.
	// No metric carries a token, a secret or a user identifier. Default:
	// the global provider (otel.GetMeterProvider). Its spans go to the
	// Exchanger's Options.TracerProvider.
	MeterProvider metric.MeterProvider
	// Logger receives a record per exchange, renewal and eviction (info on
	// success, warn on failure, debug when only a fresh token can help), and
	// a warning, at most once a second, when the Store fails. Users appear
	// only as Exchanger.UserHash; no token or secret is logged. Default: nothing
	// is logged.
	Logger *slog.Logger
}

// Cache holds identity-enhanced credentials per user and renews them. It
// merges concurrent misses of one user into a single exchange (running on a
// context detached from any one request), renews credentials in the
// background when a request arrives inside the refresh window, bounds the
// users it holds, remembers refusals for a short while, and bounds the
// exchanges in flight. Idle users are not renewed.
//
// It is safe for concurrent use.
type Cache struct {
	x       *Exchanger
	o       CacheOptions
	sem     chan struct{}
	limiter *rate.Limiter
	wg      sync.WaitGroup // flights under way

	mu     sync.Mutex
	closed bool // no flight starts once set
	// lastDeadline is the latest deadline of the flights started: Close
	// waits no longer.
	lastDeadline time.Time
	users        map[UserKey]*list.Element // of *entry, in held or pending
	held         list.List                 // users that obtained credentials; front: most recently used
	// pending holds users that never obtained credentials: first exchange
	// under way, or failed. Bounded apart, so that identities AWS refuses
	// cannot evict users who hold credentials.
	pending list.List
	flights map[UserKey]*flight // the flight under way per user

	stats cacheCounters

	tel            *telemetry
	ns             string         // the Exchanger's namespace in the Store
	storeDownUntil atomic.Int64   // Unix nanoseconds: the Store is left aside until then
	storeFailing   atomic.Int32   // Store failures in a row
	silentSince    atomic.Int64   // Unix nanoseconds, wall clock: the start of the first call that timed out since the Store last answered; 0 when it answered
	lastAnswer     atomic.Int64   // Unix nanoseconds, wall clock: when the Store last answered a call
	storeWarn      rate.Sometimes // of "store" events
}

// Cache defaults.
const (
	DefaultMaxUsers                = 10_000
	DefaultBackgroundRefreshWindow = 5 * time.Minute
	defaultRefusedTTL              = 30 * time.Second
	DefaultUnavailableTTL          = time.Second
	defaultMaxInFlight             = 100
)

// NewCache returns a Cache that exchanges and renews through x.
func NewCache(x *Exchanger, o CacheOptions) (*Cache, error) {
	if x == nil {
		return nil, &configError{"NewCache needs an Exchanger"}
	}
	if x.o.WebTokenProvider != nil {
		// Its token names one identity, not the user of the entry it
		// would renew.
		return nil, &configError{"a Cache's Exchanger must have no WebTokenProvider: each user's credentials are renewed with that user's own tokens"}
	}
	for name, negative := range map[string]bool{
		"MaxUsers": o.MaxUsers < 0, "BackgroundRefreshWindow": o.BackgroundRefreshWindow < 0, "RefusedTTL": o.RefusedTTL < 0,
		"UnavailableTTL": o.UnavailableTTL < 0, "MaxInFlight": o.MaxInFlight < 0, "RateLimit": o.RateLimit < 0, "Timeout": o.Timeout < 0,
	} {
		if negative {
			return nil, &configError{"CacheOptions." + name + " must not be negative"}
		}
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	o.MaxUsers = cmp.Or(o.MaxUsers, DefaultMaxUsers)
	o.BackgroundRefreshWindow = cmp.Or(o.BackgroundRefreshWindow, DefaultBackgroundRefreshWindow)
	o.RefusedTTL = cmp.Or(o.RefusedTTL, defaultRefusedTTL)
	o.UnavailableTTL = cmp.Or(o.UnavailableTTL, DefaultUnavailableTTL)
	o.MaxInFlight = cmp.Or(o.MaxInFlight, defaultMaxInFlight)
	o.Timeout = cmp.Or(o.Timeout, callTimeout)
	if o.BackgroundRefreshWindow >= x.o.Duration {
		return nil, &configError{"CacheOptions.BackgroundRefreshWindow must be shorter than Options.Duration, the credentials' lifetime"}
	}
	c := &Cache{x: x, o: o, sem: make(chan struct{}, o.MaxInFlight), users: make(map[UserKey]*list.Element), flights: make(map[UserKey]*flight),
		ns: x.Namespace(), storeWarn: rate.Sometimes{Interval: storeRetry}}

	if o.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(o.RateLimit), max(1, int(o.RateLimit)))
	}
	var err error
	if c.tel, err = newTelemetry(c); err != nil {
		return nil, &configError{"the meter provider refused the Cache's instruments: " + err.Error()}
	}
	return c, nil
}

// entry is one user's slot; it is also the user's credentials provider,
// which always hands out the user's current credentials.
type entry struct {
	c   *Cache
	key UserKey

	cur  atomic.Pointer[userState]
	held bool // in Cache.held rather than Cache.pending; guarded by Cache.mu

	mu    sync.Mutex
	token string // the latest token seen on a slow path, to renew with
}

// userState is an immutable snapshot of one user's credentials or failure.
type userState struct {
	sess     *Session
	err      error
	errUntil time.Time
	// refusedToken, when set, is the TokenID of the token IAM Identity
	// Center refused: the failure is then remembered for that token only,
	// and another token of the user is tried at once.
	refusedToken string
}

// refusesToken reports whether st's remembered failure applies to
// webToken: a failure of the user (AccessDenied from AssumeRole, AWS
// unavailable), or IAM Identity Center's refusal of this very token.
func (st *userState) refusesToken(webToken string) bool {
	return st.refusedToken == "" || webToken == "" || TokenID(webToken) == st.refusedToken
}

// Credentials returns the credentials provider of the user key, whose
// verified token is webToken, and what the session behind the user's
// current credentials tells (when they expire, who the user is in IAM
// Identity Center). The provider hands out the user's current credentials
// and renews them through the cache, so a configuration built on it keeps
// working in a long handler. On a hit Credentials makes no AWS call and
// does not allocate; on a miss it waits for the user's single shared
// exchange, or gives up when ctx ends. Whether the cached credentials
// still serve, and whether to renew them ahead of expiry, is judged on the
// Exchanger's clock (Options.Now).
func (c *Cache) Credentials(ctx context.Context, key UserKey, webToken string) (aws.CredentialsProvider, SessionInfo, error) {
	e, sess, err := c.get(ctx, key, webToken, c.x.o.Now())
	if err != nil {
		return nil, SessionInfo{}, err
	}
	return e, SessionInfo{Expires: sess.Credentials.Expires, UserID: sess.UserID, IdentityStoreID: sess.IdentityStoreID}, nil
}

// SessionInfo is what [Cache.Credentials] tells of the session whose
// credentials its provider hands out at the time of the call: nothing
// secret.
type SessionInfo struct {
	// Expires is when the credentials expire.
	Expires time.Time
	// UserID and IdentityStoreID are the Session's: the user's ID in IAM
	// Identity Center's identity store and the store's ID ("" when
	// Identity Center's idToken did not tell them).
	UserID, IdentityStoreID string
}

// get returns the entry of the user key with valid credentials at now,
// and the session that holds them.
func (c *Cache) get(ctx context.Context, key UserKey, webToken string, now time.Time) (*entry, *Session, error) {
	c.stats.requests.Add(1)
	for looked := false; ; looked = true {
		e := c.lookup(key)
		var st *userState
		if e != nil {
			st = e.cur.Load()
		}
		if st != nil && st.sess != nil && now.Before(st.sess.Credentials.Expires) {
			// A renewal that failed recently is not retried before its
			// errUntil: the credentials serve on meanwhile.
			if !now.Before(st.sess.Credentials.Expires.Add(-c.o.BackgroundRefreshWindow)) && (st.err == nil || !now.Before(st.errUntil)) {
				c.refreshInBackground(ctx, e, webToken)
			}
			c.stats.hits.Add(1)
			return e, st.sess, nil
		}
		if st != nil && st.err != nil && now.Before(st.errUntil) && st.refusesToken(webToken) {
			c.stats.negativeHits.Add(1)
			return nil, nil, st.err
		}
		// What fails before any call (a spent or expired token and nothing
		// else to renew with) is refused here: it takes no slot, no place
		// in the exchanges in flight and no token of the rate limit. A
		// request joining a flight under way is not refused: the flight
		// may be exchanging this very token; and a flight that ended
		// between the look above and now may have left credentials, so
		// the look is made once more before refusing.
		var sess *Session
		if st != nil {
			sess = st.sess
		}
		if err := c.x.refusedLocally(sess, webToken, now); err != nil && !c.flying(key) {
			if !looked {
				continue
			}
			c.stats.localRefusals.Add(1)
			return nil, nil, err
		}
		if e == nil {
			e = c.add(key)
		}
		e.setToken(webToken)
		st, err := c.wait(ctx, e)
		if err != nil {
			return nil, nil, err
		}
		return e, st.sess, nil
	}
}

// lookup returns the user's entry, marked as the most recently used, or
// nil when the user is not tracked.
func (c *Cache) lookup(key UserKey) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.users[key]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	c.listOf(e).MoveToFront(el)
	return e
}

func (c *Cache) listOf(e *entry) *list.List {
	if e.held {
		return &c.held
	}
	return &c.pending
}

// add returns the user's entry, creating it among the pending users (and
// dropping the oldest pending user beyond the bound) when needed.
func (c *Cache) add(key UserKey) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.users[key]; ok {
		return el.Value.(*entry)
	}
	e := &entry{c: c, key: key}
	c.users[key] = c.pending.PushFront(e)
	for c.pending.Len() > c.o.MaxUsers {
		oldest := c.pending.Remove(c.pending.Back()).(*entry)
		delete(c.users, oldest.key)
		c.stats.dropped.Add(1)
	}
	return e
}

// promote moves e among the users that hold credentials, once it obtained
// some, evicting the least recently used beyond the bound. An entry
// dropped while its first exchange ran is tracked again; one replaced by a
// newer entry of the same user is left alone.
func (c *Cache) promote(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.held {
		return
	}
	el, ok := c.users[e.key]
	switch {
	case ok && el.Value.(*entry) != e:
		return
	case ok:
		c.pending.Remove(el)
	}
	e.held = true
	c.users[e.key] = c.held.PushFront(e)
	for c.held.Len() > c.o.MaxUsers {
		oldest := c.held.Remove(c.held.Back()).(*entry)
		delete(c.users, oldest.key)
		c.stats.evictions.Add(1)
		c.observe(cacheEvent{user: oldest.key, op: "eviction"})
	}
}

// flight is one exchange or renewal of a user under way, shared by every
// caller that wants the user's credentials meanwhile: requests that missed,
// providers renewing, and renewals ahead of expiry.
type flight struct {
	done chan struct{} // closed when st and err are set
	st   *userState
	err  error
	// deadline is when the flight's Timeout ends, on the wall clock, plus
	// half the Timeout for a flight that honours its context to record its
	// outcome. A flight may outlive it (a call on a connection that went
	// dead while a Lambda instance was frozen may ignore its context): no
	// caller waits on it beyond, and a later caller starts a new flight.
	deadline time.Time
}

// stale reports whether f ran past its Timeout without ending.
func (f *flight) stale() bool { return time.Now().After(f.deadline) }

// errOtherUser fails a flight whose session names another user than the
// entry's key: the token given with the key was another user's.
var errOtherUser = &Error{kind: kindConfig, Op: "Exchange", Code: "TokenOfAnotherUser"}

// errClosed fails a flight that would start after Close.
var errClosed = &Error{kind: kindUnavailable, Op: "Exchange", Code: "CacheClosed"}

// fly returns the flight of e's user under way, or starts one renewing e
// (led then reports true). The flight runs on its own goroutine, on a
// context detached from ctx's cancellation but keeping its values (the
// request's trace), or with a trace of its own linked to ctx's span when
// background is set. After Close no flight starts.
func (c *Cache) fly(ctx context.Context, e *entry, background bool) (f *flight, led bool, err error) {
	c.mu.Lock()
	if f = c.flights[e.key]; f != nil && !f.stale() {
		c.mu.Unlock()
		return f, false, nil
	}
	if c.closed {
		c.mu.Unlock()
		return nil, false, errClosed
	}
	f = &flight{done: make(chan struct{}), deadline: time.Now().Add(c.o.Timeout + c.o.Timeout/2)}
	c.flights[e.key] = f
	if f.deadline.After(c.lastDeadline) {
		c.lastDeadline = f.deadline
	}
	c.wg.Add(1)
	c.mu.Unlock()
	c.stats.inFlight.Add(1)
	var link trace.Link
	if background {
		link = trace.LinkFromContext(ctx)
		ctx = context.Background()
		c.stats.backgroundRefreshes.Add(1)
	}
	go func() {
		defer c.wg.Done()
		f.st, f.err = c.renew(ctx, e, link, background)
		c.mu.Lock()
		if c.flights[e.key] == f { // not replaced after running stale
			delete(c.flights, e.key)
		}
		c.mu.Unlock()
		c.stats.inFlight.Add(-1)
		close(f.done)
	}()
	return f, true, nil
}

// flying reports whether a flight of key is under way.
func (c *Cache) flying(key UserKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flights[key]
	return f != nil && !f.stale()
}

// wait joins (or starts) the user's flight and waits for it within ctx.
func (c *Cache) wait(ctx context.Context, e *entry) (*userState, error) {
	c.stats.waiters.Add(1)
	f, led, err := c.fly(ctx, e, false)
	if err != nil {
		return nil, err
	}
	if !led {
		c.stats.merged.Add(1)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("tipkit.exchange.joined") // the leader's request span holds the exchange span
		}
	}
	// Bounded by the flight's Timeout even when the flight is not: a call
	// stuck on a dead connection must not hold the user's requests.
	stuck := time.NewTimer(time.Until(f.deadline))
	defer stuck.Stop()
	select {
	case <-f.done:
	case <-ctx.Done():
		c.stats.abandoned.Add(1)
		return nil, &Error{kind: kindUnavailable, Op: "Exchange", Err: ctx.Err()}
	case <-stuck.C:
		c.stats.abandoned.Add(1)
		return nil, &Error{kind: kindUnavailable, Op: "Exchange", Code: "FlightTimeout", Err: context.DeadlineExceeded}
	}
	if f.err != nil {
		return nil, f.err
	}
	st := f.st
	// The flight may have run for an entry of the same user that was
	// evicted since: e must hold what it hands out, unless it holds
	// newer credentials already.
	if cur := e.cur.Load(); cur != st && (cur == nil || cur.sess == nil || cur.sess.Credentials.Expires.Before(st.sess.Credentials.Expires)) {
		e.cur.CompareAndSwap(cur, st)
	}
	c.promote(e)
	return st, nil
}

// refreshInBackground starts a renewal of e unless one is under way. Its
// span starts a trace of its own, linked to the request of ctx.
func (c *Cache) refreshInBackground(ctx context.Context, e *entry, webToken string) {
	e.setToken(webToken)
	_, _, _ = c.fly(ctx, e, true)
}

// renew exchanges or renews e's credentials, bounded by the in-flight and
// rate limits, on a context detached from the caller's. It records the
// outcome in e: on failure, credentials that are still valid keep being
// served, and the session is kept for a later renewal unless AWS refused
// the user.
func (c *Cache) renew(ctx context.Context, e *entry, link trace.Link, background bool) (*userState, error) {
	prev := e.cur.Load()
	if prev != nil && prev.err == nil && prev.sess != nil &&
		c.x.o.Now().Before(prev.sess.Credentials.Expires.Add(-max(c.o.BackgroundRefreshWindow, c.x.o.CredentialsExpiryWindow))) {
		// A flight that ended after the caller looked renewed them: a
		// second renewal would only spend an STS call.
		return prev, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
	defer cancel()
	c.stats.flights.Add(1)
	var prevSess *Session
	if prev != nil {
		prevSess = prev.sess
	}
	ctx, span := c.tel.startFlight(ctx, prevSess != nil, link)
	start := time.Now()
	token := e.getToken()
	r := sharedResult{alone: true}
	if c.storeUsable() {
		r = c.shared(ctx, e, prevSess, token)
	}
	if r.alone {
		r.sess, r.err = c.call(ctx, prevSess, token, nil)
	}
	if c.o.Store != nil {
		r.err = replayed(r.err)
	}
	sess, err := r.sess, r.err
	if sess != nil && (sess.Issuer != e.key.Issuer || sess.Subject != e.key.Subject) {
		// The token handed in names another user than the key: its
		// credentials are never handed out under this key.
		sess, err = nil, errOtherUser
	}
	if token != "" && c.x.exchanged(token) {
		// A spent token can never renew anything: holding it would only
		// keep the request header it came in alive.
		e.dropToken(token)
	}
	now := c.x.o.Now()
	ev := cacheEvent{user: e.key, op: "exchange", background: background, err: err, duration: time.Since(start)}
	switch {
	case err == nil && r.adopted:
		ev.op = "shared"
	case prevSess != nil:
		ev.op = "renewal"
	}
	if err == nil {
		ev.expires = sess.Credentials.Expires
	}
	c.observe(ev)
	endFlight(span, ev.op, err)
	if err == nil {
		st := &userState{sess: sess}
		e.cur.Store(st)
		c.promote(e)
		return st, nil
	}
	if prevSess != nil && now.Before(prevSess.Credentials.Expires) {
		// The still-valid credentials serve on; the failure is remembered
		// so that requests in the refresh window do not retry it at once.
		keep := prevSess
		if sess != nil && sess != prevSess && sess.IdentityContext != "" {
			// A half-done refresh: the refresh grant gave a new identity
			// context (and spent the refresh token) but AssumeRole failed.
			// The old credentials serve on with the new context, which is
			// what can still renew them.
			merged := *prevSess
			merged.IdentityContext, merged.ContextExpires, merged.RefreshToken = sess.IdentityContext, sess.ContextExpires, sess.RefreshToken
			keep = &merged
		}
		st := &userState{sess: keep, err: err, errUntil: now.Add(max(c.failureTTL(err), c.o.UnavailableTTL))}
		// A flight that ran stale leaves alone what a later one stored.
		e.cur.CompareAndSwap(prev, st)
		return st, nil
	}
	st := &userState{err: err, errUntil: now.Add(c.failureTTL(err))}
	if token != "" && (tokenRefused(err) || err == errOtherUser || err == errSpentElsewhere) {
		st.refusedToken = TokenID(token)
	}
	if !errors.Is(err, ErrRefused) {
		st.sess = prevSess
		if sess != nil {
			// A half-done exchange or refresh: no credentials yet, but its
			// identity context renews them once AWS answers again.
			st.sess = sess
		}
	}
	e.cur.CompareAndSwap(prev, st)
	return nil, err
}

// tokenRefused reports whether err is IAM Identity Center refusing a
// token (CreateTokenWithIAM's InvalidGrantException, AccessDenied...), or
// Options.Session refusing its claims or shaping them wrongly: a verdict on
// that token, which another token of the user may not share.
func tokenRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.kind == kindRefused && e.Op == "CreateTokenWithIAM" || e.Op == opSession)
}

// failureTTL is how long a failure is answered from memory. A user who
// must bring a fresh token is not held back: the next token is checked
// locally before any call.
func (c *Cache) failureTTL(err error) time.Duration {
	switch {
	case err == errSpentElsewhere:
		// Remembered for that token only (see renew), briefly: resending
		// it must not cost the Store a flight on every request, and the
		// other replica may yet release it unsent.
		return c.o.UnavailableTTL
	case errors.Is(err, ErrReauthenticate):
		return 0
	case errors.Is(err, ErrUnavailable):
		return c.o.UnavailableTTL
	}
	return c.o.RefusedTTL
}

// call runs one exchange or renewal within the global bounds; f, when not
// nil, claims tokens in the Store before they are sent.
func (c *Cache) call(ctx context.Context, prev *Session, token string, f *storeFlight) (*Session, error) {
	if err := c.x.refusedLocally(prev, token, c.x.o.Now()); err != nil {
		return nil, err
	}

	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return nil, &Error{kind: kindUnavailable, Op: "Exchange", Code: "TooManyInFlight", Err: ctx.Err()}
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, &Error{kind: kindUnavailable, Op: "Exchange", Code: "RateLimited", Err: err}
		}
	}
	if prev != nil {
		c.stats.renewals.Add(1)
		return c.x.renew(ctx, prev, token, f)
	}
	c.stats.exchanges.Add(1)
	return c.x.exchange(ctx, token, f)
}

// Retrieve hands out the user's current credentials, so that an aws.Config
// built on the provider of [Cache.Credentials] keeps working in a long handler: expired or expiring
// credentials are renewed through the cache, with the latest token seen for
// the user. It never returns expired credentials.
func (e *entry) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if c := e.credentials(); fresh(c, e.c.x.o.Now(), e.c.x.o.CredentialsExpiryWindow) {
		return c, nil
	}
	st, err := e.c.wait(ctx, e)
	if err != nil {
		if c := e.credentials(); stillValid(c, e.c.x.o.Now()) {
			return c, nil
		}
		return aws.Credentials{}, err
	}
	return st.sess.Credentials, nil
}

// credentials returns e's current credentials, none when it has none.
func (e *entry) credentials() aws.Credentials {
	if st := e.cur.Load(); st != nil && st.sess != nil {
		return st.sess.Credentials
	}
	return aws.Credentials{}
}

func (e *entry) setToken(token string) {
	if token == "" {
		return
	}
	e.mu.Lock()
	e.token = token
	e.mu.Unlock()
}

// dropToken forgets token unless a newer one replaced it meanwhile.
func (e *entry) dropToken(token string) {
	e.mu.Lock()
	if e.token == token {
		e.token = ""
	}
	e.mu.Unlock()
}

func (e *entry) getToken() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.token
}

// Close ends the Cache: no exchange, renewal or Store call starts once it
// returns. Flights under way finish first (each within Timeout), so that
// the requests waiting on them, as in a graceful shutdown, are answered;
// none starts meanwhile. Close waits for a flight no longer than its
// callers do, one and a half Timeouts from its start: a flight stuck in a
// call that ignores its context (a connection that went dead while a
// Lambda instance was frozen) is left behind, its context already past its
// deadline, so that none of its later AWS calls is sent (a Store lease it
// holds is released, or expires with Timeout). Credentials still
// serves the credentials held in memory while they are valid; a miss after
// Close fails with an error matching [ErrUnavailable].
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	deadline := c.lastDeadline
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	stuck := time.NewTimer(time.Until(deadline))
	defer stuck.Stop()
	select {
	case <-done:
	case <-stuck.C:
	}
	return c.tel.reg.Unregister()
}

// len returns the number of users whose credentials are held.
func (c *Cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held.Len()
}

// CacheStats counts what a [Cache] did since it was made. Failures by
// kind are in the tipkit.exchanges metric (see CacheOptions.MeterProvider).
type CacheStats struct {
	Requests            uint64 // calls of Credentials
	Hits                uint64 // served from memory with valid credentials
	NegativeHits        uint64 // answered with a remembered failure, no AWS call
	Waiters             uint64 // callers that waited for a shared exchange or renewal
	Joined              uint64 // waiters that joined one already under way
	Abandoned           uint64 // waiters whose own context ended first
	Flights             uint64 // shared exchanges or renewals run
	Exchanges           uint64 // of which exchanges of a token
	Renewals            uint64 // of which renewals of a session
	BackgroundRefreshes uint64 // renewals started ahead of expiry
	Evictions           uint64 // users holding credentials dropped by the MaxUsers bound
	Dropped             uint64 // users without credentials yet (first exchange under way or failed) dropped by the MaxUsers bound
	LocalRefusals       uint64 // refused before any call: a spent or expired token and nothing else to renew with
	InFlight            int64  // exchanges and renewals under way now, background ones included
	Users               int    // users whose credentials are held now (not those whose first exchange is under way or failed)
	SharedHits          uint64 // sessions taken from the Store, obtained by another replica: no AWS call
	SharedWaits         uint64 // polls of a user's lease held by another replica
	StoreFailures       uint64 // Store calls that failed: the flight worked alone
}

type cacheCounters struct {
	requests, hits, negativeHits, waiters, merged, abandoned, flights, exchanges, renewals,
	backgroundRefreshes, evictions, dropped, localRefusals,
	sharedHits, sharedWaits, storeFailures atomic.Uint64
	results  [numOps][kindReauthenticate + 1]atomic.Uint64 // flights by operation and result (0: ok)
	inFlight atomic.Int64
}

// Stats returns the counters of c.
func (c *Cache) Stats() CacheStats {
	s := &c.stats
	st := CacheStats{
		Requests: s.requests.Load(), Hits: s.hits.Load(), NegativeHits: s.negativeHits.Load(),
		Waiters: s.waiters.Load(), Joined: s.merged.Load(), Abandoned: s.abandoned.Load(), Flights: s.flights.Load(),
		Exchanges: s.exchanges.Load(), Renewals: s.renewals.Load(),
		BackgroundRefreshes: s.backgroundRefreshes.Load(), Evictions: s.evictions.Load(), Dropped: s.dropped.Load(),
		LocalRefusals: s.localRefusals.Load(), InFlight: s.inFlight.Load(),
		Users:      c.len(),
		SharedHits: s.sharedHits.Load(), SharedWaits: s.sharedWaits.Load(), StoreFailures: s.storeFailures.Load(),
	}
	return st
}
