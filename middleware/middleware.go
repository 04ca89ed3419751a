package middleware

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/verify"
)

// Options configures a [Middleware]. Each setting has one name: the
// verification of tokens, the exchange and the per-user credentials are
// configured in their own packages' options, nested here. Zero values take
// the defaults given with each field.
type Options struct {
	// Issuer and Audience are a shortcut for one trusted issuer whose keys
	// are found through OpenID Connect discovery: they add
	// verify.Issuer{Issuer: Issuer, Audience: Audience} to Verify.Issuers.
	// Issuer is the exact iss of its tokens; a token's aud must contain
	// one of Audience.
	Issuer   string
	Audience []string

	// Verify configures the verification of tokens: further issuers (with
	// explicit key set URLs), algorithms, leeway, the HTTP client of key
	// set fetches and the least time between those requests trigger, the
	// memory of verified tokens and the largest token read. Its Now
	// defaults to Now; its CacheSize defaults to Cache.MaxUsers, so that
	// the memory held stays flat however many users pass through.
	Verify verify.Options
	// Exchange configures the trusted identity propagation exchange. Its
	// WebTokenProvider must be nil (New refuses it): each request brings
	// its user's token, and only that user's tokens renew the user's
	// credentials. Its Now defaults to Now, and then one clock reading per
	// request serves both the token check and the credentials. Its HashKey
	// also keys the user hash of the middleware's log records.
	Exchange exchange.Options
	// Cache configures the per-user credentials: MaxUsers, RefreshWindow,
	// RefusedTTL, UnavailableTTL (also the Retry-After of the 503 answers
	// it remembers), MaxInFlight (exchanges in flight for all users),
	// RateLimit (exchanges per second, under the account's STS quota),
	// Timeout (of one shared exchange), Store (sessions shared by the
	// replicas of a service; see the redisstore package) and Logger (which
	// defaults to Logger).
	Cache exchange.CacheOptions
	// AWSConfig is the base of each user's aws.Config (region, endpoint,
	// HTTP client, retryer); its Credentials are replaced by the user's.
	// When its Region is empty, New takes Exchange.Config.Region (the
	// region of IAM Identity Center); when both are empty, New fails with
	// ErrRegion rather than every handler later.
	AWSConfig aws.Config

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
	// only as exchange.Exchanger.UserHash; no token or secret is ever
	// logged).
	// Default: nothing is logged.
	Logger *slog.Logger
	// Now is the clock of token checks and credential expiry; default
	// time.Now. It is Verify.Now and Exchange.Now when those are nil.
	Now func() time.Time
	// TracerProvider receives the spans of exchanges and renewals (children
	// of the span of the request that led them, with the AWS SDK's spans
	// beneath) and of key set fetches; MeterProvider the metrics
	// tipkit.requests (by tipkit.outcome), tipkit.exchanges,
	// tipkit.exchange.duration, tipkit.users, tipkit.exchanges.in_flight,
	// tipkit.store.fallbacks and tipkit.jwks.fetches. They are the
	// providers of Verify and Exchange when those are nil. No span or
	// metric carries a token, a secret or a user identifier. Default: the
	// global providers (otel.GetTracerProvider, otel.GetMeterProvider), as
	// in otelhttp. A request served from memory starts no span and records
	// no measurement: the counters are observed when metrics are collected.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Middleware verifies requests and hands their handlers the caller's AWS
// configuration. It is safe for concurrent use.
type Middleware struct {
	o        Options
	verifier *verify.Verifier
	cache    *exchange.Cache
	onError  ErrorHandler
	x        *exchange.Exchanger
	log      *slog.Logger
	extract  Extractor
	// retryAfter is the Retry-After of a 503 for AWS: as long as the Cache
	// answers the failure from memory.
	retryAfter time.Duration
	// sharedClock: the exchange reads the same clock, so one reading per
	// request serves both the token check and the credential lookup.
	sharedClock bool

	ok            atomic.Uint64 // requests that reached the handler with a caller
	reg           metric.Registration
	skipped       atomic.Uint64
	anonymous     atomic.Uint64
	errorsByKind  [KindInternal + 1]atomic.Uint64
	internalShown atomic.Bool
}

// ErrNoExchange is returned by New when Options.Exchange cannot build an
// exchange; it wraps the exchange package's configuration error.
var ErrNoExchange = errors.New("middleware: invalid Exchange options")

// errWebTokenProvider is returned by New when Options.Exchange has a
// WebTokenProvider: its token names one identity, and renewing any user's
// credentials with it would hand that identity's credentials to the user.
var errWebTokenProvider = fmt.Errorf("%w: Exchange.WebTokenProvider must be nil: each user's credentials are obtained and renewed with that user's own tokens", ErrNoExchange)

// ErrRegion is returned by New when neither Options.AWSConfig nor
// Options.Exchange.Config names a region: every AWS call of a handler
// would fail with "Missing Region".
var ErrRegion = errors.New("middleware: AWSConfig.Region (or Exchange.Config.Region) is required")

// New checks o, builds the verifier and the exchange, and returns the
// Middleware. It does not contact the identity provider or AWS: keys are
// fetched on the first request, so a server starts even when its IdP is
// down. Background key refreshes stop when ctx is done or at Close;
// background credential renewals stop at Close.
func New(ctx context.Context, o Options) (*Middleware, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AWSConfig.Region == "" {
		if o.AWSConfig.Region = o.Exchange.Config.Region; o.AWSConfig.Region == "" {
			return nil, ErrRegion
		}
	}
	if o.Exchange.WebTokenProvider != nil {
		return nil, errWebTokenProvider
	}
	vo := o.Verify
	if vo.CacheSize == 0 {
		vo.CacheSize = cmp.Or(max(o.Cache.MaxUsers, 0), exchange.DefaultMaxUsers)
	}
	if o.Issuer != "" || len(o.Audience) > 0 {
		vo.Issuers = append([]verify.Issuer{{Issuer: o.Issuer, Audience: o.Audience}}, vo.Issuers...)
	}
	if vo.Now == nil {
		vo.Now = o.Now
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if vo.TracerProvider == nil {
		vo.TracerProvider = o.TracerProvider
	}
	if vo.MeterProvider == nil {
		vo.MeterProvider = o.MeterProvider
	}
	v, err := verify.New(ctx, vo)
	if err != nil {
		return nil, err
	}
	xo := o.Exchange
	sharedClock := xo.Now == nil
	if sharedClock {
		xo.Now = o.Now
	}
	if xo.TracerProvider == nil {
		xo.TracerProvider = o.TracerProvider
	}
	if xo.MeterProvider == nil {
		xo.MeterProvider = o.MeterProvider
	}
	x, err := exchange.New(xo)
	if err != nil {
		v.Close()
		return nil, errors.Join(ErrNoExchange, err)
	}
	m := &Middleware{o: o, verifier: v, x: x, onError: o.ErrorHandler, log: o.Logger, extract: o.Extractor, sharedClock: sharedClock,
		retryAfter: cmp.Or(o.Cache.UnavailableTTL, exchange.DefaultUnavailableTTL)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	co := o.Cache
	if co.Logger == nil {
		co.Logger = o.Logger
	}
	m.cache, err = exchange.NewCache(x, co)
	if err != nil {
		v.Close()
		return nil, errors.Join(ErrNoExchange, err)
	}
	if err := m.register(o.MeterProvider.Meter("github.com/tipkit/tipkit/middleware")); err != nil {
		v.Close()
		_ = m.cache.Close()
		return nil, fmt.Errorf("middleware: the meter provider refused the instruments: %w", err)
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
	if token == "" {
		if m.o.Optional {
			m.anonymous.Add(1)
			return ctx, nil
		}
		return nil, m.failed(errNoToken)
	}
	now := m.o.Now()
	claims := m.verifier.Remembered(token, now)
	if claims == nil && !isB64Token(token) {
		// A token seen for the first time is read as the Authorization
		// header's would be: one b64token of printable ASCII.
		return nil, m.failed(errMalformedToken)
	}
	return m.authorize(ctx, token, claims, now)
}

var errMalformedToken = newError(KindInvalidRequest, "the token is malformed", nil)

// AuthorizeBearer is [Middleware.Authorize] for a transport that carries
// the values of an Authorization header (gRPC's "authorization" metadata):
// it reads them as BearerExtractor reads the header (one value, the Bearer
// scheme in any case, one b64token; another scheme is no token), then
// decides as Authorize does. A token verified before is recognised without
// scanning its bytes again, as the net/http middleware does.
func (m *Middleware) AuthorizeBearer(ctx context.Context, values []string) (context.Context, *Error) {
	now := m.o.Now()
	if len(values) == 1 {
		if raw, ok := cutScheme(values[0], "Bearer"); ok {
			if c := m.verifier.Remembered(raw, now); c != nil {
				return m.authorize(ctx, raw, c, now)
			}
		}
	}
	token, err := fromHeader(values, "Bearer")
	switch {
	case err != nil:
		return nil, m.failed(asError(err, KindInvalidRequest))
	case token == "" && m.o.Optional:
		m.anonymous.Add(1)
		return ctx, nil
	case token == "":
		return nil, m.failed(errNoToken)
	}
	return m.authorize(ctx, token, nil, now)
}

// authorize verifies raw unless claims (remembered at now) are given, and
// returns ctx with its caller.
func (m *Middleware) authorize(ctx context.Context, raw string, claims *verify.Claims, now time.Time) (context.Context, *Error) {
	if claims == nil {
		var err error
		if claims, err = m.verifier.Verify(ctx, raw); err != nil {
			return nil, m.failed(ErrorFromVerify(err))
		}
		now = m.o.Now()
	}
	if !m.sharedClock {
		now = time.Time{}
	}
	creds, sess, err := m.cache.Credentials(ctx, exchange.UserKey{Issuer: claims.Issuer, Subject: claims.Subject}, raw, now)
	if err != nil {
		e := ErrorFromExchange(err)
		if e.Kind == KindUnavailable && e.RetryAfter == 0 {
			// The client retries when the Cache no longer answers the
			// failure from memory.
			c := *e
			c.RetryAfter = m.retryAfter
			e = &c
		}
		return nil, m.failedFor(e, claims)
	}
	m.ok.Add(1)
	id := claims.Identity(sess.Expires, ctxcreds.AWSUser{UserID: sess.UserID, IdentityStoreID: sess.IdentityStoreID})
	return ctxcreds.WithCaller(ctx, &m.o.AWSConfig, creds, id), nil
}

// rememberedBearer is the hot path of the default extractor: when r holds
// one "Authorization: Bearer" header whose token the verifier remembers,
// it returns that token and its claims without scanning the token's bytes.
// Every remembered token came through BearerExtractor (the verifier is the
// middleware's own), so the bytes passed its checks when first seen; any
// other request, including one with a token in its query string, gets
// (_, nil) and goes through the extractor and a full Verify.
func (m *Middleware) rememberedBearer(r *http.Request, now time.Time) (string, *verify.Claims) {
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
	c := m.verifier.Remembered(raw, now)
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
func (m *Middleware) failedFor(err *Error, c *verify.Claims) *Error {
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
		attrs = append(attrs, slog.String("user", m.x.UserHash(exchange.UserKey{Issuer: c.Issuer, Subject: c.Subject})))
	}
	var xe *exchange.Error
	if errors.As(err, &xe) {
		attrs = append(attrs, slog.String("aws_op", xe.Op), slog.String("aws_code", xe.Code))
	}
	m.log.LogAttrs(ctx, level, "tipkit: request refused", attrs...)
	return err
}

// Close stops background key refreshes and credential renewals, and
// unregisters the metrics.
func (m *Middleware) Close() error {
	m.verifier.Close()
	return errors.Join(m.reg.Unregister(), m.cache.Close())
}

// Stats counts what the middleware did since New.
type Stats struct {
	Requests  uint64 // requests seen: OK, Skipped, Anonymous and Errors together
	OK        uint64 // reached the handler with a caller
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
		OK: m.ok.Load(), Skipped: m.skipped.Load(), Anonymous: m.anonymous.Load(),
		TokenCacheHits: vs.CacheHits, TokensVerified: vs.Verified, TokensMerged: vs.Merged,
		CredentialHits: cs.Hits, Exchanges: cs.Exchanges, Renewals: cs.Renewals, MergedWaiters: cs.Merged,
		BackgroundRefreshes: cs.BackgroundRefreshes, Evictions: cs.Evictions, Dropped: cs.Dropped, InFlight: cs.InFlight, Users: m.cache.Len(),
		SharedSessions: cs.SharedHits, StoreFailures: cs.StoreFailures,
		Errors: map[string]uint64{},
	}
	s.Requests = s.OK + s.Skipped + s.Anonymous
	for k := KindNoToken; k <= KindInternal; k++ {
		n := m.errorsByKind[k].Load()
		s.Errors[k.String()] = n
		s.Requests += n
	}
	return s
}

// register observes the middleware's own counters (those Stats reads) as
// tipkit.requests, by tipkit.outcome: ok, skipped, anonymous, or the OAuth
// error code of the answer (missing_token, invalid_request, invalid_token,
// access_denied, temporarily_unavailable, server_error).
func (m *Middleware) register(meter metric.Meter) error {
	requests, err := meter.Int64ObservableCounter("tipkit.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests seen by the tipkit middleware, by outcome"))
	if err != nil {
		return err
	}
	outcome := func(v string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("tipkit.outcome", v)))
	}
	ok, skipped, anonymous := outcome("ok"), outcome("skipped"), outcome("anonymous")
	var byKind [KindInternal + 1]metric.ObserveOption
	for k := KindNoToken; k <= KindInternal; k++ {
		byKind[k] = outcome(k.code())
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(requests, int64(m.ok.Load()), ok)
		o.ObserveInt64(requests, int64(m.skipped.Load()), skipped)
		o.ObserveInt64(requests, int64(m.anonymous.Load()), anonymous)
		for k := KindNoToken; k <= KindInternal; k++ {
			o.ObserveInt64(requests, int64(m.errorsByKind[k].Load()), byKind[k])
		}
		return nil
	}, requests)
	return err
}
