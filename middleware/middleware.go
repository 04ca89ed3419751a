package middleware

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
)

// Options configures a [Middleware]. Zero values take the defaults given
// with each field.
type Options struct {
	// Issuer is the exact iss of the tokens accepted, with JWKSURL and
	// Audience. Use Issuers for several issuers; both may be set.
	Issuer string
	// JWKSURL is Issuer's key set; empty means OIDC discovery at Issuer.
	JWKSURL string
	// Audience lists the audiences accepted from Issuer: a token's aud must
	// contain one of them.
	Audience []string
	// Issuers lists further trusted issuers, each with its own key set and
	// audiences. A token's iss picks the one that verifies it.
	Issuers []IssuerConfig

	// Algorithms accepted; default RS256, RS384, RS512, PS256, ES256, ES384,
	// EdDSA. "none" and HMAC are never accepted.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 s.
	Leeway time.Duration
	// HTTPClient fetches discovery documents and key sets.
	HTTPClient *http.Client
	// TokenCacheTTL bounds how long a verified token is remembered, so the
	// hot path skips the signature check (never beyond its exp); default 5
	// minutes, negative turns it off. TokenCacheSize bounds how many;
	// default MaxUsers, so that the memory held stays flat however many
	// users pass through (a token forgotten early costs one more signature
	// check, nothing else).
	TokenCacheTTL  time.Duration
	TokenCacheSize int
	// MaxTokenSize is the largest token read; default 16 KiB.
	MaxTokenSize int
	// KeyRefreshInterval is the least time between key set fetches that
	// requests trigger (unknown kid, failed first fetch); default 10 s.
	KeyRefreshInterval time.Duration

	// Exchange configures the trusted identity propagation exchange. Its
	// WebTokenProvider is not used: each request brings its token.
	Exchange exchange.Options
	// AWSConfig is the base of each user's aws.Config (region, endpoint,
	// HTTP client, retryer); its Credentials are replaced by the user's.
	AWSConfig aws.Config

	// MaxUsers bounds the users whose credentials are held (least recently
	// used evicted first); default 10,000. Users whose first exchange is
	// under way or failed are tracked apart within the same bound, so they
	// never evict a user who holds credentials.
	MaxUsers int
	// RefreshWindow: a request within this time of its user's credentials'
	// expiry triggers one renewal in the background; default 5 minutes.
	RefreshWindow time.Duration
	// RefusedTTL is how long a user AWS refused is answered 403 from memory;
	// default 30 s.
	RefusedTTL time.Duration
	// MaxExchangesInFlight bounds concurrent exchanges for all users;
	// default 100 (exchange.DefaultMaxInFlight). ExchangeRateLimit, not this
	// bound, keeps the exchanges under the account's STS quota.
	MaxExchangesInFlight int
	// ExchangeRateLimit, when positive, caps exchanges per second.
	ExchangeRateLimit float64
	// ExchangeTimeout bounds one shared exchange; default 30 s.
	ExchangeTimeout time.Duration
	// Store, when set, shares users' sessions and the marks of exchanged
	// tokens between the replicas of the service (redisstore.New builds
	// one on Redis): any replica then serves any user, each token is
	// exchanged once for the whole fleet, and a restarted replica finds
	// its users' sessions. Users held in this process's memory never reach
	// the Store. If the Store fails, each replica works alone until it
	// answers again. nil: this process works alone.
	Store exchange.Store

	// Extractor reads the token of a request; default BearerExtractor.
	Extractor Extractor
	// Skipper, when it returns true, lets the request through untouched.
	Skipper func(*http.Request) bool
	// AuthenticatePreflight makes CORS preflight requests (OPTIONS with
	// Access-Control-Request-Method) need a token too. By default they pass
	// through untouched, as browsers send them without credentials.
	AuthenticatePreflight bool
	// Optional lets a request without any token go on anonymously, with no
	// AWS configuration in its context; a request with a bad token is still
	// refused.
	Optional bool
	// ErrorHandler answers failed requests; default DefaultErrorHandler(Realm).
	ErrorHandler ErrorHandler
	// Realm is the realm of WWW-Authenticate challenges.
	Realm string
	// Logger receives debug, info and warn records, and one error record
	// for the first configuration error found at run time (users appear
	// only as a hash of issuer and subject; no token or secret is ever
	// logged).
	// Default: nothing is logged.
	Logger *slog.Logger
	// Now is the clock of token checks and credential expiry; default
	// time.Now. It also becomes Exchange.Now when that is nil, and then one
	// reading per request serves both (leave Exchange.Now nil).
	Now func() time.Time
}

// Middleware verifies requests and hands their handlers the caller's AWS
// configuration. It is safe for concurrent use.
type Middleware struct {
	o        Options
	verifier *Verifier
	cache    *exchange.Cache
	onError  ErrorHandler
	log      *slog.Logger
	extract  Extractor
	// sharedClock: the exchange reads the same clock, so one reading per
	// request serves both the token check and the credential lookup.
	sharedClock bool

	requests      atomic.Uint64
	skipped       atomic.Uint64
	anonymous     atomic.Uint64
	errorsByKind  [KindInternal + 1]atomic.Uint64
	internalShown atomic.Bool
}

// ErrNoExchange is returned by New when Options.Exchange cannot build an
// exchange; it wraps the exchange package's configuration error.
var ErrNoExchange = errors.New("middleware: invalid Exchange options")

// New checks o, builds the verifier and the exchange, and returns the
// Middleware. It does not contact the identity provider or AWS: keys are
// fetched on the first request, so a server starts even when its IdP is
// down. Background key refreshes stop when ctx is done or at Close;
// background credential renewals stop at Close.
func New(ctx context.Context, o Options) (*Middleware, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenCacheSize == 0 {
		o.TokenCacheSize = cmp.Or(max(o.MaxUsers, 0), exchange.DefaultMaxUsers)
	}
	issuers := o.Issuers
	if o.Issuer != "" {
		issuers = append([]IssuerConfig{{Issuer: o.Issuer, JWKSURL: o.JWKSURL, Audience: o.Audience}}, issuers...)
	}
	v, err := NewVerifier(ctx, VerifierOptions{
		Issuers: issuers, Algorithms: o.Algorithms, Leeway: o.Leeway, HTTPClient: o.HTTPClient, Now: o.Now,
		CacheTTL: o.TokenCacheTTL, CacheSize: o.TokenCacheSize, RefreshRateLimit: o.KeyRefreshInterval,
		MaxTokenSize: o.MaxTokenSize,
	})
	if err != nil {
		return nil, err
	}
	xo := o.Exchange
	sharedClock := xo.Now == nil
	if sharedClock {
		xo.Now = o.Now
	}
	x, err := exchange.New(xo)
	if err != nil {
		v.Close()
		return nil, errors.Join(ErrNoExchange, err)
	}
	m := &Middleware{o: o, verifier: v, onError: o.ErrorHandler, log: o.Logger, extract: o.Extractor, sharedClock: sharedClock}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.cache, err = exchange.NewCache(x, exchange.CacheOptions{
		MaxUsers: o.MaxUsers, RefreshWindow: o.RefreshWindow, RefusedTTL: o.RefusedTTL,
		MaxInFlight: o.MaxExchangesInFlight, RateLimit: o.ExchangeRateLimit, Timeout: o.ExchangeTimeout,
		Store: o.Store, Observe: m.logEvent,
	})
	if err != nil {
		v.Close()
		return nil, errors.Join(ErrNoExchange, err)
	}
	if m.onError == nil {
		m.onError = DefaultErrorHandler(o.Realm)
	}
	if m.extract == nil {
		m.extract = BearerExtractor
	}
	return m, nil
}

// Handler returns next wrapped: requests reach it with the caller's
// aws.Config and identity in their context (ctxcreds.Config,
// ctxcreds.IdentityFrom), or are answered by the error handler.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, err := m.Authenticate(r)
		if err != nil {
			m.HandleError(w, r, err)
			return
		}
		next.ServeHTTP(w, r2)
	})
}

// Authenticate is the middleware's whole decision for r, for framework
// adapters: it returns r carrying the caller's configuration and identity
// (or r itself when skipped or anonymous), or the failure to answer with
// [Middleware.HandleError].
func (m *Middleware) Authenticate(r *http.Request) (*http.Request, *Error) {
	m.requests.Add(1)
	if m.skip(r) {
		m.skipped.Add(1)
		return r, nil
	}
	ctx := r.Context()
	now := m.o.Now()
	raw, claims := m.rememberedBearer(r, now)
	if claims == nil {
		var err error
		if raw, err = m.extract(r); err != nil {
			return nil, m.failed(asError(err, KindInvalidRequest))
		}
		if raw == "" {
			if m.o.Optional {
				m.anonymous.Add(1)
				return r, nil
			}
			return nil, m.failed(errNoToken)
		}
	}
	caller, err := m.authorize(ctx, raw, claims, now)
	if err != nil {
		return nil, err
	}
	return r.WithContext(caller), nil
}

// Authorize is the middleware's decision for a bearer token already taken
// from its transport (an HTTP header, gRPC metadata...): it verifies token,
// obtains the caller's credentials, and returns ctx carrying the caller's
// aws.Config and identity (ctxcreds.Config, ctxcreds.IdentityFrom), or
// the refusal to answer in the transport's own way. An empty token is
// refused as missing, unless Options.Optional lets it through (ctx is then
// returned as it is). It counts the request in Stats as Authenticate does;
// Options.Extractor and Options.Skipper are the HTTP transport's and play
// no part here.
func (m *Middleware) Authorize(ctx context.Context, token string) (context.Context, *Error) {
	m.requests.Add(1)
	if token == "" {
		if m.o.Optional {
			m.anonymous.Add(1)
			return ctx, nil
		}
		return nil, m.failed(errNoToken)
	}
	now := m.o.Now()
	return m.authorize(ctx, token, m.verifier.remembered(token, now), now)
}

// authorize verifies raw unless claims (remembered at now) are given, and
// returns ctx with its caller.
func (m *Middleware) authorize(ctx context.Context, raw string, claims *Claims, now time.Time) (context.Context, *Error) {
	if claims == nil {
		var err error
		if claims, err = m.verifier.Verify(ctx, raw); err != nil {
			return nil, m.failed(asError(err, KindInvalidToken))
		}
		now = m.o.Now()
	}
	if !m.sharedClock {
		now = time.Time{}
	}
	creds, expires, err := m.cache.Credentials(ctx, exchange.UserKey{Issuer: claims.Issuer, Subject: claims.Subject}, raw, now)
	if err != nil {
		return nil, m.failedFor(ErrorFromExchange(err), claims)
	}
	return ctxcreds.WithCaller(ctx, &m.o.AWSConfig, creds, identityOf(claims, expires)), nil
}

// rememberedBearer is the hot path of the default extractor: when r holds
// one "Authorization: Bearer" header whose token the verifier remembers,
// it returns that token and its claims without scanning the token's bytes.
// Every remembered token came through BearerExtractor (the verifier is the
// middleware's own), so the bytes passed its checks when first seen; any
// other request, including one with a token in its query string, gets
// (_, nil) and goes through the extractor and a full Verify.
func (m *Middleware) rememberedBearer(r *http.Request, now time.Time) (string, *Claims) {
	if m.o.Extractor != nil || tokenOutsideHeader(r) {
		return "", nil
	}
	values := r.Header["Authorization"]
	if len(values) != 1 {
		return "", nil
	}
	raw, ok := cutScheme(values[0], "Bearer")
	if !ok {
		return "", nil
	}
	c := m.verifier.remembered(raw, now)
	if c == nil {
		return "", nil
	}
	return raw, c
}

var errNoToken = &Error{Kind: KindNoToken, Description: "a bearer token is required"}

// skip reports whether r passes untouched.
func (m *Middleware) skip(r *http.Request) bool {
	if !m.o.AuthenticatePreflight && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		return true
	}
	return m.o.Skipper != nil && m.o.Skipper(r)
}

// identityOf returns the identity of claims' user with credentials until
// expires, reusing the one made for the previous request with this token.
func identityOf(c *Claims, expires time.Time) *ctxcreds.Identity {
	if id := c.identity.Load(); id != nil && id.Expires().Equal(expires) {
		return id
	}
	id := ctxcreds.NewIdentity(c.Issuer, c.Subject, c.Raw, expires)
	c.identity.Store(id)
	return id
}

// asError returns err as an *Error, or a new one of kind k.
func asError(err error, k ErrorKind) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return newError(k, "", err)
}

// HandleError answers r with err through the error handler.
func (m *Middleware) HandleError(w http.ResponseWriter, r *http.Request, err *Error) {
	m.onError(w, r, err)
}

// failed counts and logs err.
func (m *Middleware) failed(err *Error) *Error { return m.failedFor(err, nil) }

// failedFor counts and logs err for the user of c (nil when unknown).
func (m *Middleware) failedFor(err *Error, c *Claims) *Error {
	if err.Kind > 0 && int(err.Kind) < len(m.errorsByKind) {
		m.errorsByKind[err.Kind].Add(1)
	}
	level := slog.LevelDebug
	switch err.Kind {
	case KindForbidden, KindUnavailable:
		level = slog.LevelWarn
	case KindInternal:
		level = slog.LevelWarn
		if m.internalShown.CompareAndSwap(false, true) {
			level = slog.LevelError // a configuration error: logged loudly once
		}
	}
	ctx := context.Background()
	if !m.log.Enabled(ctx, level) {
		return err
	}
	attrs := []slog.Attr{slog.String("kind", err.Kind.String()), slog.String("code", err.Code)}
	if c != nil {
		attrs = append(attrs, slog.String("user", UserHash(c.Issuer, c.Subject)))
	}
	var xe *exchange.Error
	if errors.As(err, &xe) {
		attrs = append(attrs, slog.String("aws_op", xe.Op), slog.String("aws_code", xe.Code))
	}
	m.log.LogAttrs(ctx, level, "tipkit: request refused", attrs...)
	return err
}

// logEvent logs an exchange, renewal, shared session or eviction: info on
// success, warn on failure (debug when only a fresh token can help), debug
// for evictions; a failure of the shared store is a warning (at most one a
// second).
func (m *Middleware) logEvent(ev exchange.CacheEvent) {
	level, msg := slog.LevelInfo, "tipkit: credentials obtained"
	switch {
	case ev.Op == "store":
		if m.log.Enabled(context.Background(), slog.LevelWarn) {
			m.log.LogAttrs(context.Background(), slog.LevelWarn, "tipkit: shared store failed: working alone for now",
				slog.String("error", ev.Err.Error()))
		}
		return
	case ev.Op == "shared":
		level, msg = slog.LevelDebug, "tipkit: credentials taken from the shared store"
	case ev.Op == "eviction":
		level, msg = slog.LevelDebug, "tipkit: user evicted"
	case errors.Is(ev.Err, exchange.ErrReauthenticate):
		level, msg = slog.LevelDebug, "tipkit: credentials need a fresh token"
	case ev.Err != nil:
		level, msg = slog.LevelWarn, "tipkit: credentials not obtained"
	}
	ctx := context.Background()
	if !m.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("op", ev.Op), slog.String("user", UserHash(ev.User.Issuer, ev.User.Subject))}
	if ev.Op != "eviction" {
		attrs = append(attrs, slog.Bool("background", ev.Background), slog.Duration("duration", ev.Duration))
	}
	var xe *exchange.Error
	switch {
	case errors.As(ev.Err, &xe):
		attrs = append(attrs, slog.String("failure", xe.Kind.String()), slog.String("aws_op", xe.Op), slog.String("aws_code", xe.Code))
	case ev.Err == nil && !ev.Expires.IsZero():
		attrs = append(attrs, slog.Time("expires", ev.Expires))
	}
	m.log.LogAttrs(ctx, level, msg, attrs...)
}

// UserHash returns the short, stable name under which logs show a user
// (exchange.UserKey.Hash): a hash of the issuer and subject, never the
// subject itself; the same as the user's RoleSessionName after "tipkit-".
func UserHash(issuer, subject string) string {
	return exchange.UserKey{Issuer: issuer, Subject: subject}.Hash()
}

// Close stops background key refreshes and credential renewals.
func (m *Middleware) Close() error {
	m.verifier.Close()
	return m.cache.Close()
}

// Stats counts what the middleware did since New.
type Stats struct {
	Requests  uint64 // requests seen
	Skipped   uint64 // passed untouched (skipper, CORS preflight)
	Anonymous uint64 // passed without a token (Options.Optional)

	TokenCacheHits uint64 // tokens accepted from memory, no signature check
	TokensVerified uint64 // tokens that passed a full verification
	TokensMerged   uint64 // requests that shared a concurrent request's verification of their token

	CredentialHits      uint64 // served cached credentials
	Exchanges           uint64 // tokens exchanged with IAM Identity Center
	Renewals            uint64 // credentials renewed (identity context, refresh token, newer token)
	MergedWaiters       uint64 // requests that waited on another request's exchange
	BackgroundRefreshes uint64 // renewals started ahead of expiry
	Evictions           uint64 // users holding credentials dropped by MaxUsers
	Dropped             uint64 // users without credentials yet (first exchange under way or failed) dropped by MaxUsers
	InFlight            int64  // exchanges and renewals under way now, background ones included (one that joined a request's counts again)
	Users               int    // users held now
	SharedSessions      uint64 // sessions taken from the Store, obtained by another replica (no AWS call)
	StoreFailures       uint64 // Store calls that failed; the flight worked alone

	// Errors counts failed requests by kind, indexed by ErrorKind.String().
	Errors map[string]uint64
}

// Stats returns the counters of m. Nothing in them names a user or a token.
func (m *Middleware) Stats() Stats {
	vs, cs := m.verifier.Stats(), m.cache.Stats()
	s := Stats{
		Requests: m.requests.Load(), Skipped: m.skipped.Load(), Anonymous: m.anonymous.Load(),
		TokenCacheHits: vs.CacheHits, TokensVerified: vs.Verified, TokensMerged: vs.Merged,
		CredentialHits: cs.Hits, Exchanges: cs.Exchanges, Renewals: cs.Renewals, MergedWaiters: cs.Merged,
		BackgroundRefreshes: cs.BackgroundRefreshes, Evictions: cs.Evictions, Dropped: cs.Dropped, InFlight: cs.InFlight, Users: m.cache.Len(),
		SharedSessions: cs.SharedHits, StoreFailures: cs.StoreFailures,
		Errors: map[string]uint64{},
	}
	for k := KindNoToken; k <= KindInternal; k++ {
		s.Errors[k.String()] = m.errorsByKind[k].Load()
	}
	return s
}
