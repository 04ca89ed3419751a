package middleware

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
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
	// memory of verified tokens and the largest token read. Its CacheSize
	// defaults to Cache.MaxUsers, so that the memory held stays flat however
	// many users pass through. Its Now, TracerProvider and MeterProvider
	// are for verify.New alone: here they are Now, TracerProvider and
	// MeterProvider below, and New refuses options that set both.
	Verify verify.Options
	// Exchange configures the trusted identity propagation exchange. Its
	// WebTokenProvider must be nil (New refuses it): each request brings
	// its user's token, and only that user's tokens renew the user's
	// credentials. Its HashKey also keys the user hash of the middleware's
	// log records. Its Now and TracerProvider are for exchange.New alone:
	// here they are Now and TracerProvider below, and New refuses options
	// that set both.
	Exchange exchange.Options
	// Cache configures the per-user credentials: MaxUsers, BackgroundRefreshWindow,
	// RefusedTTL, UnavailableTTL (also the Retry-After of the 503 answers
	// it remembers), MaxInFlight (exchanges in flight for all users),
	// RateLimit (exchanges per second, under the account's STS quota),
	// Timeout (of one shared exchange) and Store (sessions shared by the
	// replicas of a service; see the redisstore package). Its Logger and
	// MeterProvider are for exchange.NewCache alone: here they are Logger
	// and MeterProvider below, and New refuses options that set both.
	Cache exchange.CacheOptions
	// AWSConfig is the base of each user's aws.Config (region, endpoint,
	// HTTP client, retryer); its Credentials are replaced by the user's.
	// When its Region is empty, New takes Exchange.Config.Region (the
	// region of IAM Identity Center); when both are empty, New fails with
	// ErrConfig rather than every handler later.
	AWSConfig aws.Config

	// Tenants, for a server that serves several customers, each with its
	// own identity provider and IAM Identity Center instance, lists them:
	// a token's iss picks its tenant, whose Issuers verify it and whose
	// Exchange exchanges it (see [Tenant]). Issuer, Audience, Exchange,
	// AWSConfig and Verify.Issuers are the one-tenant case: New refuses
	// options that set any of them and Tenants, and an issuer listed in
	// two tenants.
	//
	// Everything else is shared by the tenants: the verification settings
	// of Verify (one verifier holds every tenant's issuers, each with its
	// own keys), the clock, the telemetry, the logger and the answers.
	// Each tenant has a Cache of its own with the settings of Cache:
	// MaxUsers, MaxInFlight and RateLimit bound each tenant apart, so
	// that one customer's users and exchanges never evict or hold back
	// another's, and a process holds at most len(Tenants)×MaxUsers users
	// (Verify.CacheSize defaults to that). A Cache.Store is shared, each
	// tenant in a namespace of its own, named after Tenant.Name: renaming
	// a tenant leaves its stored sessions behind.
	//
	// A Middleware's tenants are fixed: to add or remove one without a
	// restart, build a new Middleware with New and swap it in (see the
	// example of New). The new one knows the sessions of the old one
	// only through a Store they share: without one, a token the old one
	// exchanged is refused by IAM Identity Center (403), as after a
	// restart, and its user needs a fresh token.
	Tenants []Tenant

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
	// only as exchange.Exchanger.UserHash, with their Tenant.Name when
	// there are Tenants; no token or secret is ever logged).
	// Default: nothing is logged.
	Logger *slog.Logger
	// Now is the clock of token checks and credential expiry; default
	// time.Now.
	Now func() time.Time
	// TracerProvider receives the spans of exchanges and renewals (children
	// of the span of the request that led them, with the AWS SDK's spans
	// beneath) and of key set fetches; MeterProvider the metrics
	// tipkit.requests (by tipkit.outcome), tipkit.exchanges,
	// tipkit.exchange.duration, tipkit.users, tipkit.exchanges.in_flight,
	// tipkit.store.fallbacks and tipkit.jwks.fetches. No span or
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
	// tenants are the tenants of Options.Tenants, or the one tenant of
	// the top-level fields; byIssuer finds a tenant by issuer when there
	// are several (nil when one).
	tenants  []*tenant
	byIssuer map[string]*tenant
	onError  ErrorHandler
	log      *slog.Logger
	extract  Extractor
	// retryAfter is the Retry-After of a 503 for AWS: as long as the Cache
	// answers the failure from memory.
	retryAfter time.Duration

	ok            atomic.Uint64 // requests that reached the handler with a caller
	reg           metric.Registration
	skipped       atomic.Uint64
	anonymous     atomic.Uint64
	errorsByKind  [KindInternal + 1]atomic.Uint64
	internalShown atomic.Bool
}

// ErrConfig matches every error of [New] for invalid options, including
// the verify and exchange packages' own (which match verify.ErrConfig or
// exchange.ErrConfig too); the message names the option.
var ErrConfig = errors.New("middleware: invalid options")

// configError is an error of New naming the option at fault; it matches
// ErrConfig.
type configError struct{ msg string }

func (e *configError) Error() string        { return "middleware: " + e.msg }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// checkOneName refuses options that set one setting under two names: a
// setting of the middleware and its copy in a nested package's options,
// which that package's own constructor takes when used alone.
func checkOneName(o *Options) error {
	for _, both := range []struct {
		top, nested string
		set         bool
	}{
		{"Now", "Verify.Now", o.Now != nil && o.Verify.Now != nil},
		{"Now", "Exchange.Now", o.Now != nil && o.Exchange.Now != nil},
		{"TracerProvider", "Verify.TracerProvider", o.TracerProvider != nil && o.Verify.TracerProvider != nil},
		{"TracerProvider", "Exchange.TracerProvider", o.TracerProvider != nil && o.Exchange.TracerProvider != nil},
		{"MeterProvider", "Verify.MeterProvider", o.MeterProvider != nil && o.Verify.MeterProvider != nil},
		{"MeterProvider", "Cache.MeterProvider", o.MeterProvider != nil && o.Cache.MeterProvider != nil},
		{"Logger", "Cache.Logger", o.Logger != nil && o.Cache.Logger != nil},
	} {
		if both.set {
			return &configError{both.top + " and " + both.nested + " are one setting: set " + both.top + " only"}
		}
	}
	if o.Exchange.WebTokenProvider != nil {
		// Its token names one identity, and renewing any user's
		// credentials with it would hand that identity's credentials to
		// the user.
		return &configError{"Exchange.WebTokenProvider must be nil: each user's credentials are obtained and renewed with that user's own tokens"}
	}
	return nil
}

// New checks o, builds the verifier and the exchange of each tenant, and
// returns the Middleware. Every problem of o is an error matching
// [ErrConfig] that names the option. New does not contact the identity
// provider or AWS: keys are fetched on the first request, so a server
// starts even when its IdP is down. Background key refreshes stop when ctx
// is done or at Close; credential renewals stop at Close.
func New(ctx context.Context, o Options) (*Middleware, error) {
	if err := checkOneName(&o); err != nil {
		return nil, err
	}
	tenants, err := tenantsOf(&o)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	vo := o.Verify
	if vo.CacheSize == 0 {
		vo.CacheSize = cmp.Or(max(o.Cache.MaxUsers, 0), exchange.DefaultMaxUsers) * len(tenants)
	}
	vo.Issuers = nil
	for _, t := range tenants {
		vo.Issuers = append(vo.Issuers, t.Issuers...)
	}
	vo.Now, vo.TracerProvider, vo.MeterProvider = o.Now, o.TracerProvider, o.MeterProvider
	v, err := verify.New(ctx, vo)
	if err != nil {
		return nil, fmt.Errorf("%w: Verify: %w", ErrConfig, err)
	}
	m := &Middleware{o: o, verifier: v, onError: o.ErrorHandler, log: o.Logger, extract: o.Extractor,
		retryAfter: cmp.Or(o.Cache.UnavailableTTL, exchange.DefaultUnavailableTTL)}
	if len(tenants) > 1 {
		m.byIssuer = make(map[string]*tenant, len(vo.Issuers))
	}
	for i, t := range tenants {
		built, err := newTenant(&o, t, i)
		if err != nil {
			m.closeTenants()
			v.Close()
			return nil, err
		}
		m.tenants = append(m.tenants, built)
		for _, is := range t.Issuers {
			if m.byIssuer != nil {
				m.byIssuer[is.Issuer] = built
			}
		}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if err := m.register(o.MeterProvider.Meter("github.com/tipkit/tipkit/middleware")); err != nil {
		v.Close()
		m.closeTenants()
		return nil, &configError{"the MeterProvider refused the instruments: " + err.Error()}
	}
	if m.onError == nil {
		m.onError = DefaultErrorHandler(o.Realm)
	}
	if m.extract == nil {
		m.extract = BearerExtractor
	}
	return m, nil
}

// closeTenants closes the Cache of every tenant built.
func (m *Middleware) closeTenants() error {
	var errs []error
	for _, t := range m.tenants {
		errs = append(errs, t.cache.Close())
	}
	return errors.Join(errs...)
}

// Handler returns next wrapped: requests reach it with the caller's
// aws.Config and identity in their context (ctxcreds.Config,
// ctxcreds.IdentityFrom), or are answered by the error handler.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, err := m.authenticate(r)
		if err != nil {
			m.onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r2)
	})
}

// Authenticate is the middleware's whole decision for r, for framework
// adapters: it returns r carrying the caller's configuration and identity
// (or r itself when skipped or anonymous), or the refusal to answer with
// [Middleware.HandleError], an [*Error].
func (m *Middleware) Authenticate(r *http.Request) (*http.Request, error) {
	r2, err := m.authenticate(r)
	if err != nil {
		return nil, err
	}
	return r2, nil
}

func (m *Middleware) authenticate(r *http.Request) (*http.Request, *Error) {
	if m.skip(r) {
		m.skipped.Add(1)
		return r, nil
	}
	var (
		raw    string
		claims *verify.Claims
	)
	if m.o.Extractor == nil && !tokenOutsideHeader(r) {
		raw, claims = m.rememberedBearer(r.Header["Authorization"])
	}
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
	caller, err := m.authorize(r.Context(), raw, claims)
	if err != nil {
		return nil, err
	}
	return r.WithContext(caller), nil
}

// Authorize is the middleware's decision for a bearer token already taken
// from its transport (an HTTP header, gRPC metadata...): it verifies token,
// obtains the caller's credentials, and returns ctx carrying the caller's
// aws.Config and identity (ctxcreds.Config, ctxcreds.IdentityFrom), or
// the refusal, an [*Error], to answer in the transport's own way. An empty
// token is refused as missing, unless Options.Optional lets it through
// (ctx is then returned as it is). It counts the request in Stats as
// Authenticate does; Options.Extractor and Options.Skipper are the HTTP
// transport's and play no part here.
func (m *Middleware) Authorize(ctx context.Context, token string) (context.Context, error) {
	caller, err := m.authorizeToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return caller, nil
}

func (m *Middleware) authorizeToken(ctx context.Context, token string) (context.Context, *Error) {
	if token == "" {
		if m.o.Optional {
			m.anonymous.Add(1)
			return ctx, nil
		}
		return nil, m.failed(errNoToken)
	}
	claims := m.verifier.Remembered(token)
	if claims == nil && !isB64Token(token) {
		// A token seen for the first time is read as the Authorization
		// header's would be: one b64token of printable ASCII.
		return nil, m.failed(errMalformedToken)
	}
	return m.authorize(ctx, token, claims)
}

var errMalformedToken = newError(KindInvalidRequest, "the token is malformed", nil)

// AuthorizeBearer is [Middleware.Authorize] for a transport that carries
// the values of an Authorization header (gRPC's "authorization" metadata):
// it reads them as BearerExtractor reads the header (one value, the Bearer
// scheme in any case, one b64token; another scheme is no token), then
// decides as Authorize does. A token verified before is recognised without
// scanning its bytes again, as the net/http middleware does.
func (m *Middleware) AuthorizeBearer(ctx context.Context, values []string) (context.Context, error) {
	caller, err := m.authorizeBearer(ctx, values)
	if err != nil {
		return nil, err
	}
	return caller, nil
}

func (m *Middleware) authorizeBearer(ctx context.Context, values []string) (context.Context, *Error) {
	if raw, c := m.rememberedBearer(values); c != nil {
		return m.authorize(ctx, raw, c)
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
	return m.authorize(ctx, token, nil)
}

// rememberedBearer is the hot path: when values (of Authorization) are one
// "Bearer" value whose token the verifier remembers, it returns that token
// and its claims without scanning the token's bytes. Every remembered
// token passed BearerExtractor's checks (or the same checks of
// Authorize) when first seen, since the verifier is the middleware's own;
// anything else gets (_, nil) and goes through the full checks.
func (m *Middleware) rememberedBearer(values []string) (string, *verify.Claims) {
	if len(values) != 1 {
		return "", nil
	}
	raw, ok := cutScheme(values[0], "Bearer")
	if !ok {
		return "", nil
	}
	c := m.verifier.Remembered(raw)
	if c == nil {
		return "", nil
	}
	return raw, c
}

// authorize verifies raw unless its claims are given, and returns ctx with
// its caller.
func (m *Middleware) authorize(ctx context.Context, raw string, claims *verify.Claims) (context.Context, *Error) {
	if claims == nil {
		var err error
		if claims, err = m.verifier.Verify(ctx, raw); err != nil {
			return nil, m.failed(errorFromVerify(err))
		}
	}
	memo, _ := claims.Memo.Load().(*identityMemo)
	t := m.tenantOf(claims, memo)
	if t == nil {
		// The verifier accepts only the tenants' issuers.
		return nil, m.failed(newError(KindInternal, "the token's issuer has no tenant", nil))
	}
	creds, sess, err := t.cache.Credentials(ctx, exchange.UserKey{Issuer: claims.Issuer, Subject: claims.Subject}, raw)
	if err != nil {
		e := errorFromExchange(err)
		if e.Kind == KindUnavailable && e.RetryAfter == 0 {
			// The client retries when the Cache no longer answers the
			// failure from memory.
			c := *e
			c.RetryAfter = m.retryAfter
			e = &c
		}
		return nil, m.failedFor(e, t, claims)
	}
	m.ok.Add(1)
	return ctxcreds.WithCaller(ctx, &t.awsConfig, creds, identityOf(t, claims, memo, sess)), nil
}

// identityMemo is the request identity made of a token's claims, kept in
// the claims' Memo: every request that presents the token again shares it
// while the credentials' expiry and the AWS user stay the same, so that a
// request served from memory makes none. It also keeps the token's
// tenant, so that such a request looks up no tenant.
type identityMemo struct {
	expires time.Time
	user    ctxcreds.AWSUser
	id      ctxcreds.Identity
	tenant  *tenant
}

// identityOf returns the identity of the claims' user, of tenant t, whose
// session is sess; memo is the claims' memo (nil when none).
func identityOf(t *tenant, c *verify.Claims, memo *identityMemo, sess exchange.SessionInfo) ctxcreds.Identity {
	user := ctxcreds.AWSUser{UserID: sess.UserID, IdentityStoreID: sess.IdentityStoreID}
	if memo != nil && memo.expires.Equal(sess.Expires) && memo.user == user {
		return memo.id
	}
	id := withTenant(ctxcreds.NewIdentity(c.Issuer, c.Subject, c.Raw, sess.Expires, user), t)
	c.Memo.Store(&identityMemo{expires: sess.Expires, user: user, id: id, tenant: t})
	return id
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

// HandleError answers r with err through the error handler: the refusal
// returned by Authenticate, Authorize or AuthorizeBearer, or any other
// error, answered as an internal error (500).
func (m *Middleware) HandleError(w http.ResponseWriter, r *http.Request, err error) {
	m.onError(w, r, asError(err, KindInternal))
}

// failed counts and logs err.
func (m *Middleware) failed(err *Error) *Error { return m.failedFor(err, nil, nil) }

// failedFor counts and logs err for the user of c (nil when unknown), of
// tenant t.
func (m *Middleware) failedFor(err *Error, t *tenant, c *verify.Claims) *Error {
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
	if t != nil && t.name != "" {
		attrs = append(attrs, slog.String("tenant", t.name))
	}
	if t != nil && c != nil {
		attrs = append(attrs, slog.String("user", t.x.UserHash(exchange.UserKey{Issuer: c.Issuer, Subject: c.Subject})))
	}
	var xe *exchange.Error
	if errors.As(err, &xe) {
		attrs = append(attrs, slog.String("aws_op", xe.Op), slog.String("aws_code", xe.Code))
	}
	m.log.LogAttrs(ctx, level, "tipkit: request refused", attrs...)
	return err
}

// Close stops background key refreshes and every tenant's credential
// renewals, and unregisters the metrics.
func (m *Middleware) Close() error {
	m.verifier.Close()
	return errors.Join(m.reg.Unregister(), m.closeTenants())
}

// Stats counts what the middleware did since New: its requests, and the
// counters of its verifier (tokens) and its Cache (credentials), under
// those packages' own names. Nothing in them names a user or a token.
// OpenTelemetry (Options.MeterProvider) is the interface for metrics; Stats
// serves tests and tools.
type Stats struct {
	Requests  uint64 // requests seen: OK, Skipped, Anonymous and Errors together
	OK        uint64 // reached the handler with a caller
	Skipped   uint64 // passed untouched (skipper, CORS preflight)
	Anonymous uint64 // passed without a token (Options.Optional)
	// Errors counts failed requests by kind, indexed by ErrorKind.String().
	Errors map[string]uint64

	verify.Stats        // the verification of tokens
	exchange.CacheStats // the users' credentials
}

// Stats returns the counters of m.
func (m *Middleware) Stats() Stats {
	s := Stats{
		OK: m.ok.Load(), Skipped: m.skipped.Load(), Anonymous: m.anonymous.Load(),
		Errors: map[string]uint64{}, Stats: m.verifier.Stats(),
	}
	for _, t := range m.tenants {
		addCacheStats(&s.CacheStats, t.cache.Stats())
	}
	s.Requests = s.OK + s.Skipped + s.Anonymous
	for k := KindNoToken; k <= KindInternal; k++ {
		n := m.errorsByKind[k].Load()
		s.Errors[k.String()] = n
		s.Requests += n
	}
	return s
}

// addCacheStats adds every counter of b to a.
func addCacheStats(a *exchange.CacheStats, b exchange.CacheStats) {
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b)
	for i := range av.NumField() {
		switch f := av.Field(i); f.Kind() {
		case reflect.Uint64:
			f.SetUint(f.Uint() + bv.Field(i).Uint())
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + bv.Field(i).Int())
		}
	}
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
