package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// Issuer describes one trusted issuer of tokens.
type Issuer struct {
	// Issuer is the exact iss claim of the issuer's tokens. Required.
	Issuer string
	// JWKSURL is the URL of the issuer's JSON Web Key Set. Empty means
	// OpenID Connect discovery: the jwks_uri of the document at
	// Issuer+"/.well-known/openid-configuration", whose issuer must equal
	// Issuer. Either URL must be https, or http on a loopback host.
	JWKSURL string
	// Audience lists the audiences accepted from this issuer: a token's aud
	// must contain at least one of them. Required.
	Audience []string
}

// Options configures New. Zero values mean the defaults
// given with each field.
type Options struct {
	// Issuers lists the trusted issuers; at least one. The iss claim of a
	// token picks the one that verifies it: a token whose iss is not listed
	// is refused without fetching anything.
	Issuers []Issuer
	// Algorithms lists the accepted signing algorithms (the alg header),
	// among RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and
	// EdDSA. Default: RS256, RS384, RS512, PS256, ES256, ES384, EdDSA.
	// "none", the HMAC algorithms and unknown names are refused by New
	// (ErrConfig).
	Algorithms []string
	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Default 30 seconds; a negative value means none.
	Leeway time.Duration
	// HTTPClient fetches discovery documents and key sets. Default: a
	// client with a 10 second timeout that follows at most 5 redirects, and
	// only to https URLs (or http on a loopback host), as the configured
	// and discovered URLs must be. A client given here keeps its own
	// redirect policy.
	HTTPClient *http.Client
	// Now gives the time of every check of exp, nbf and iat, and of the
	// expiry of remembered tokens. Default time.Now.
	Now func() time.Time
	// CacheTTL bounds how long a verified token is remembered, keyed by its
	// exact bytes, so that later requests with it skip the signature check;
	// it is never remembered beyond its exp. Default 5 minutes; a negative
	// value turns the memory off.
	CacheTTL time.Duration
	// CacheSize bounds how many tokens are remembered; when full, the one
	// that expires first is forgotten. Default 100,000. Memory use is at
	// most about CacheSize times (MaxTokenSize plus its claims).
	CacheSize int
	// RefreshRateLimit is the minimum interval between two key set fetches
	// triggered by requests: for a token signed with an unknown key ID, or
	// to retry a failed first fetch. Tokens with unknown key IDs that
	// arrive during a refresh wait for it; later ones within the interval
	// are refused at once. Default 10 seconds. Key sets are also refreshed
	// hourly in the background.
	RefreshRateLimit time.Duration
	// MaxTokenSize is the largest token, in bytes, that Verify reads;
	// longer ones are refused unread. Default 16 KiB.
	MaxTokenSize int
	// TracerProvider receives a span per key set fetch that a token
	// triggered (the first fetch of an issuer, or one for an unknown key
	// ID), linked to the request that triggered it. Default: the global
	// provider (otel.GetTracerProvider).
	TracerProvider trace.TracerProvider
	// MeterProvider receives tipkit.jwks.fetches, the key set fetches by
	// tipkit.result (ok or error), the hourly background refreshes
	// included. Default: the global provider (otel.GetMeterProvider).
	MeterProvider metric.MeterProvider
}

// Defaults of Options.
const (
	DefaultLeeway           = 30 * time.Second
	DefaultCacheTTL         = 5 * time.Minute
	DefaultCacheSize        = 100_000
	DefaultRefreshRateLimit = 10 * time.Second
	DefaultMaxTokenSize     = 16 << 10
)

// Fixed settings.
const (
	fetchTimeout    = 10 * time.Second // one discovery or key set request
	refreshInterval = time.Hour        // background refresh of a key set
)

var (
	defaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}
	knownAlgorithms   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// Claims are the verified claims of a token.
type Claims struct {
	// Issuer (iss), Subject (sub, never empty) and ID (jti, "" when absent
	// or not a string).
	Issuer, Subject, ID string
	// Audience is the aud claim.
	Audience []string
	// Expires (exp), NotBefore (nbf) and IssuedAt (iat); zero when absent
	// (exp is always present).
	Expires, NotBefore, IssuedAt time.Time
	// Raw holds every claim of the token, as decoded from JSON (numbers are
	// float64). It is shared by every request that presents the same
	// token: treat it as read-only.
	Raw map[string]any

	// Memo belongs to the code that verified the claims: a value it derives
	// from them once per verified token, reused by every request that
	// presents the token again (the middleware keeps the request's identity
	// there). The verifier neither reads nor writes it.
	Memo atomic.Value
}

// Stats counts what a Verifier did since it was created.
type Stats struct {
	// CacheHits counts tokens served from memory, without a signature check.
	CacheHits uint64
	// Verified counts tokens that passed a full verification.
	Verified uint64
	// Merged counts requests that waited for the verification of the same
	// token by a concurrent request instead of checking it themselves.
	Merged uint64
	// Remembered is the number of tokens in memory now.
	Remembered int
}

// Verifier checks tokens against the key sets of trusted issuers. It is
// safe for concurrent use.
type Verifier struct {
	issuers  map[string]*keySource
	algs     []string
	parser   *jwt.Parser
	now      func() time.Time
	maxSize  int
	cache    *tokenCache // nil when the memory is off
	stop     context.CancelFunc
	hits     atomic.Uint64
	verified atomic.Uint64
	merged   atomic.Uint64
	flight   singleflight.Group // concurrent verifications of one token
	fetches  *fetchCounters
	reg      metric.Registration
}

// New checks o and returns a Verifier. It never contacts an
// identity provider: discovery documents and key sets are fetched on the
// first token of each issuer, and a failed fetch is retried at most once
// per RefreshRateLimit; meanwhile Verify fails with ErrUnavailable.
// Background refreshes of key sets stop when ctx is done or at Close.
func New(ctx context.Context, o Options) (*Verifier, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	v := &Verifier{
		issuers: make(map[string]*keySource, len(o.Issuers)),
		algs:    o.Algorithms,
		now:     o.Now,
		maxSize: o.MaxTokenSize,
		stop:    stop,
		parser: jwt.NewParser(
			jwt.WithValidMethods(o.Algorithms),
			jwt.WithLeeway(o.Leeway),
			jwt.WithTimeFunc(o.Now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithStrictDecoding(),
		),
	}
	if o.CacheTTL > 0 {
		v.cache = newTokenCache(o.CacheSize, o.CacheTTL)
	}
	tracer := o.TracerProvider.Tracer(instrumentation)
	v.fetches = new(fetchCounters)
	var err error
	if v.reg, err = v.fetches.register(o.MeterProvider.Meter(instrumentation)); err != nil {
		stop()
		return nil, &configError{"the MeterProvider refused the instruments: " + err.Error()}
	}
	for _, ic := range o.Issuers {
		v.issuers[ic.Issuer] = &keySource{
			issuer:   ic.Issuer,
			jwksURL:  ic.JWKSURL,
			audience: slices.Clone(ic.Audience),
			client:   o.HTTPClient,
			every:    o.RefreshRateLimit,
			ctx:      ctx,
			tracer:   tracer,
			fetches:  v.fetches,
		}
	}
	return v, nil
}

// check validates o and fills in its defaults.
func (o *Options) check() error {
	if len(o.Issuers) == 0 {
		return &configError{"Options.Issuers: at least one issuer is required"}
	}
	seen := make(map[string]bool, len(o.Issuers))
	for _, ic := range o.Issuers {
		switch {
		case ic.Issuer == "" || seen[ic.Issuer] || !issuerURL(ic.Issuer):
			return &configError{fmt.Sprintf("Issuer.Issuer %q: an issuer must be an http(s) URL with a host, no query or fragment, listed once", ic.Issuer)}
		case ic.JWKSURL == "" && !fetchableURL(ic.Issuer) || ic.JWKSURL != "" && !fetchableURL(ic.JWKSURL):
			return &configError{fmt.Sprintf("Issuer.JWKSURL of issuer %q (or the issuer, when the key set is found by discovery) must be an https URL, or http on a loopback host", ic.Issuer)}
		case len(ic.Audience) == 0 || slices.Contains(ic.Audience, ""):
			return &configError{fmt.Sprintf("Issuer.Audience of issuer %q: at least one non-empty audience is required", ic.Issuer)}
		}
		seen[ic.Issuer] = true
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = defaultAlgorithms
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(knownAlgorithms, a) {
			return &configError{fmt.Sprintf("Options.Algorithms: %q is refused: algorithms must be asymmetric JWS algorithms (none and HMAC are refused)", a)}
		}
	}
	o.Algorithms = slices.Clone(o.Algorithms)
	if o.CacheSize < 0 || o.MaxTokenSize < 0 || o.RefreshRateLimit < 0 {
		return &configError{"Options.CacheSize, MaxTokenSize and RefreshRateLimit must not be negative"}
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = DefaultLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: fetchTimeout, CheckRedirect: checkRedirect}
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
	o.CacheTTL = cmp.Or(o.CacheTTL, DefaultCacheTTL)
	o.CacheSize = cmp.Or(o.CacheSize, DefaultCacheSize)
	o.RefreshRateLimit = cmp.Or(o.RefreshRateLimit, DefaultRefreshRateLimit)
	o.MaxTokenSize = cmp.Or(o.MaxTokenSize, DefaultMaxTokenSize)
	return nil
}

// Verify checks raw and returns its claims. A token verified before and
// still valid is answered from memory, without a signature check or an
// allocation. Otherwise raw must be a JWS compact serialization of at most
// MaxTokenSize bytes, whose
//
//   - header has an accepted alg, a kid, no crit (no extension is
//     understood) and, if present, a typ of JWT or at+jwt (with or without
//     "application/", in any case); jku, x5u, x5c and jwk are ignored: keys
//     come only from the issuer's key set, by kid;
//   - iss names a configured issuer, whose key set holds the kid with a
//     matching algorithm and a valid signature;
//   - exp is present and, with nbf and iat when present, holds at Now
//     within Leeway;
//   - aud contains one of the issuer's audiences and sub is a non-empty
//     string.
//
// Every error is an *Error matching ErrInvalid, or ErrUnavailable when the
// issuer's keys have never been fetched successfully (or ctx ended while
// waiting for them). A key set that fails to refresh keeps its keys.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > v.maxSize {
		return nil, errTooLarge
	}
	if c := v.Remembered(raw); c != nil {
		return c, nil
	}
	// Concurrent first requests with one token (a client opening several
	// connections at once) share one signature check, run on the first
	// one's goroutine (a goroutine of its own would grow its stack for
	// every check). The others wait for it: a check is CPU only once the
	// issuer's keys are known; while they are being fetched, the first
	// request's deadline bounds the wait of all, and its 503 is theirs.
	led := false
	c, err, _ := v.flight.Do(raw, func() (any, error) {
		led = true
		return v.verify(ctx, raw)
	})
	if !led {
		v.merged.Add(1)
	}
	if err != nil {
		return nil, err
	}
	return c.(*Claims), nil
}

// Remembered returns the claims of raw when Verify accepted raw before and
// they are still valid (on Options.Now's clock), counting the hit; nil
// otherwise. It checks no signature and allocates nothing: it is the hot
// path of a server whose clients present the same token on every request.
func (v *Verifier) Remembered(raw string) *Claims {
	if len(raw) > v.maxSize {
		return nil
	}
	c := v.cache.get(raw, v.now())
	if c != nil {
		v.hits.Add(1)
	}
	return c
}

// verify is the full verification of Verify.
func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	var (
		src *keySource
		gen uint64
		mc  = jwt.MapClaims{}
	)
	tok, err := v.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		if err := checkHeader(t.Header); err != nil {
			return nil, err
		}
		iss, _ := mc["iss"].(string)
		if src = v.issuers[iss]; src == nil {
			return nil, errUnknownIssuer
		}
		gen = src.gen.Load() // before reading the key: see tokenCache
		return src.key(ctx, t)
	})
	if err != nil {
		return nil, v.refusal(tok, err)
	}
	c, err := newClaims(mc, src.audience)
	if err != nil {
		return nil, v.refusal(tok, err)
	}
	v.verified.Add(1)
	v.cache.put(raw, c, src, gen, v.now())
	return c, nil
}

// Stats returns the counters of v.
func (v *Verifier) Stats() Stats {
	return Stats{CacheHits: v.hits.Load(), Verified: v.verified.Load(), Merged: v.merged.Load(), Remembered: v.cache.len()}
}

// Close stops the background refreshes of key sets and unregisters the
// Verifier's metrics. Tokens in memory and keys already fetched keep
// working. Close may be called more than once.
func (v *Verifier) Close() {
	v.stop()
	_ = v.reg.Unregister()
}

// Reasons a token is refused before or besides the checks of jwt.
var (
	errUnknownIssuer = errors.New("unknown issuer")
	errCrit          = errors.New("crit header present")
	errType          = errors.New("typ header not accepted")
	errNoKeyID       = errors.New("no kid header")
	errNoSubject     = errors.New("no sub claim")
)

// refusals maps an error in the chain of a failed verification to the
// description of its answer; the first match wins.
var refusals = []struct {
	err  error
	desc string
}{
	{errUnknownIssuer, "the token's issuer is not trusted"},
	{errCrit, "the token requires header extensions that are not supported"},
	{errType, "the token's type is not accepted"},
	{errNoKeyID, "the token's header has no key ID"},
	{errNoSubject, "the token has no subject"},
	{jwkset.ErrKeyNotFound, "the token was signed with an unknown key"},
	{keyfunc.ErrKeyfunc, "the token's algorithm does not match its signing key"},
	{jwt.ErrTokenMalformed, "the token is malformed"},
	{jwt.ErrTokenExpired, "the token has expired"},
	{jwt.ErrTokenNotValidYet, "the token is not valid yet"},
	{jwt.ErrTokenUsedBeforeIssued, "the token's issue time is in the future"},
	{jwt.ErrTokenRequiredClaimMissing, "the token has no expiration time"},
	{jwt.ErrTokenInvalidAudience, "the token is meant for another audience"},
	{jwt.ErrInvalidType, "the token holds a claim of the wrong type"},
	{jwt.ErrTokenSignatureInvalid, "the token's signature is invalid"},
}

// refusal turns the error of a failed verification of tok into an *Error.
func (v *Verifier) refusal(tok *jwt.Token, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if tok != nil && (errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenUnverifiable)) {
		if alg, _ := tok.Header["alg"].(string); !slices.Contains(v.algs, alg) {
			return invalid("the token's signing algorithm is not accepted", err)
		}
	}
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return invalid(r.desc, err)
		}
	}
	return invalid("the token cannot be verified", err)
}

// checkHeader refuses a JOSE header with crit, with a typ other than JWT or
// at+jwt, or without a kid.
func checkHeader(h map[string]any) error {
	if _, ok := h["crit"]; ok {
		return errCrit
	}
	if typ, ok := h["typ"]; ok {
		s, _ := typ.(string)
		s = strings.TrimPrefix(strings.ToLower(s), "application/")
		if s != "jwt" && s != "at+jwt" {
			return errType
		}
	}
	if kid, _ := h["kid"].(string); kid == "" {
		return errNoKeyID
	}
	return nil
}

// newClaims checks sub and aud, which jwt leaves to us, and builds the
// Claims of mc.
func newClaims(mc jwt.MapClaims, audience []string) (*Claims, error) {
	sub, _ := mc["sub"].(string)
	if sub == "" {
		return nil, errNoSubject
	}
	aud, err := mc.GetAudience()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(audience, a) }) {
		return nil, jwt.ErrTokenInvalidAudience
	}
	c := &Claims{Subject: sub, Audience: aud, Raw: mc}
	c.Issuer, _ = mc["iss"].(string)
	c.ID, _ = mc["jti"].(string)
	c.Expires = timeOf(mc.GetExpirationTime())
	c.NotBefore = timeOf(mc.GetNotBefore())
	c.IssuedAt = timeOf(mc.GetIssuedAt())
	return c, nil
}

// timeOf returns the time of a claim already checked by jwt, zero if absent.
func timeOf(d *jwt.NumericDate, _ error) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// issuerURL reports whether raw can name an issuer: an http or https URL
// with a host, without user info, query or fragment, and without control
// characters or spaces. Whether keys may be fetched from it is checked
// apart (fetchableURL).
func issuerURL(raw string) bool {
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.Contains(raw, "#")
}

// checkRedirect is the redirect policy of the default HTTP client: a key
// set or discovery document is not fetched over plain http on the
// network, even through a redirect.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > 5 { // via holds the first request and the redirects followed
		return errors.New("verify: stopped after 5 redirects")
	}
	if !fetchableURL(req.URL.String()) {
		return errors.New("verify: refused a redirect to a URL that is neither https nor loopback")
	}
	return nil
}
