package verify

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
)

// maxDiscoverySize bounds the discovery document read.
const maxDiscoverySize = 1 << 20

// keySource holds the keys of one issuer, fetched on first need.
type keySource struct {
	issuer   string
	jwksURL  string // "" for discovery
	audience []string
	client   *http.Client
	every    time.Duration   // RefreshRateLimit
	ctx      context.Context // the Verifier's lifetime
	tracer   trace.Tracer
	fetches  *fetchCounters

	// gen counts the refreshes that removed or changed a key; a token
	// remembered under an older gen is verified again.
	gen atomic.Uint64
	set atomic.Pointer[keySet] // nil until a first fetch succeeds

	mu      sync.Mutex
	loading chan struct{} // closed when the running first fetch ends
	retryAt time.Time     // no first fetch before then
	lastErr error
}

// keySet is the keyfunc of an issuer once its key set is fetched.
type keySet struct {
	kf      keyfunc.Keyfunc
	local   jwkset.Storage     // the keys last fetched
	limiter *rate.Limiter      // of refreshes for unknown key IDs
	ctx     context.Context    // the key set's lifetime: refreshes run on it
	stop    context.CancelFunc // ends the background refresh (Close does too)
	tracer  trace.Tracer
	fetches *fetchCounters

	// stale is set while the last refresh of the key set failed: a kid
	// it does not hold may then be a new key of the issuer, not a forgery.
	stale *atomic.Bool
	every time.Duration // the least time between refreshes for unknown kids

	mu         sync.Mutex
	refreshing chan struct{} // closed when the running refresh ends
}

// unknownKey refuses a token whose kid the key set does not hold: 401,
// unless the key set could not be refreshed, when the kid may be the
// issuer's new key and the answer is 503.
func (ks *keySet) unknownKey(err error) error {
	if !ks.stale.Load() {
		return err
	}
	return errKeysUnavailable(err, ks.every)
}

// errKeysUnavailable is the 503 of a token whose issuer's keys cannot be
// had now, to retry after retryAfter.
func errKeysUnavailable(err error, retryAfter time.Duration) *Error {
	return &Error{kind: kindUnavailable, Description: "the identity provider's signing keys are unavailable for now: retry later", Err: err, RetryAfter: retryAfter}
}

// key returns the verification key for t (whose kid checkHeader checked).
func (s *keySource) key(ctx context.Context, t *jwt.Token) (any, error) {
	ks, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	kid, _ := t.Header["kid"].(string)
	if !ks.has(ctx, kid) {
		return ks.refreshFor(ctx, t, kid)
	}
	return ks.kf.KeyfuncCtx(ctx)(t)
}

// has reports whether the key set holds kid.
func (ks *keySet) has(ctx context.Context, kid string) bool {
	_, err := ks.local.KeyRead(ctx, kid)
	return err == nil
}

// refreshFor returns the key of t, whose kid is unknown, after one refresh
// of the key set. The refresh runs on the key set's own context, detached
// from every request: a request that gives up (a client dropping its
// connection) neither aborts it nor counts as a failed refresh, and the
// refresh serves every request waiting on it. When none is running and
// the rate limit allows none, t is refused at once (keyfunc alone would
// wait for its limiter, then refresh again for each request).
func (ks *keySet) refreshFor(ctx context.Context, t *jwt.Token, kid string) (any, error) {
	ks.mu.Lock()
	wait := ks.refreshing
	if wait == nil && ks.has(ctx, kid) {
		// A refresh finished between the caller's look-up and now.
		ks.mu.Unlock()
		return ks.kf.KeyfuncCtx(ctx)(t)
	}
	if wait == nil && ks.limiter.Tokens() >= 1 {
		wait = make(chan struct{})
		ks.refreshing = wait
		go ks.refresh(kid, wait, trace.LinkFromContext(ctx))
	}
	ks.mu.Unlock()
	if wait == nil {
		return nil, ks.unknownKey(fmt.Errorf("%w (no refresh allowed now)", jwkset.ErrKeyNotFound))
	}
	select {
	case <-wait:
	case <-ctx.Done():
		// The refresh goes on for the others; this request is gone.
		return nil, errKeysUnavailable(ctx.Err(), ks.every)
	}
	if ks.has(ctx, kid) {
		return ks.kf.KeyfuncCtx(ctx)(t)
	}
	return nil, ks.unknownKey(fmt.Errorf("%w %q", jwkset.ErrKeyNotFound, kid))
}

// refresh fetches the key set once (keyfunc refreshes when asked for the
// unknown kid) on the key set's context, bounded by fetchTimeout, then
// closes done. A failure marks the key set stale (RefreshErrorHandler).
func (ks *keySet) refresh(kid string, done chan struct{}, link trace.Link) {
	ctx, cancel := context.WithTimeout(ks.ctx, fetchTimeout)
	defer cancel()
	ctx, span := ks.tracer.Start(ctx, "tipkit.jwks.fetch", trace.WithNewRoot(), trace.WithLinks(link),
		trace.WithAttributes(attribute.String("tipkit.jwks.reason", "unknown_kid")))
	failures := ks.fetches.failed.Load()
	_, _ = ks.kf.Storage().KeyRead(ctx, kid) // rate limited by ks.limiter, whose token the caller saw
	if ks.fetches.failed.Load() != failures {
		span.SetStatus(codes.Error, "fetch_failed")
	}
	span.End()

	ks.mu.Lock()
	ks.refreshing = nil
	ks.mu.Unlock()
	close(done)
}

// keys returns the key set, waiting for a first fetch if one is running or
// allowed to start.
func (s *keySource) keys(ctx context.Context) (*keySet, error) {
	if ks := s.set.Load(); ks != nil {
		return ks, nil
	}
	s.mu.Lock()
	wait := s.loading
	if wait == nil && s.set.Load() == nil && !time.Now().Before(s.retryAt) {
		wait = make(chan struct{})
		s.loading = wait
		go s.fetch(wait, trace.LinkFromContext(ctx))
	}
	s.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
		}
	}
	if ks := s.set.Load(); ks != nil {
		return ks, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return nil, errKeysUnavailable(errors.Join(ctx.Err(), s.lastErr), time.Until(s.retryAt))
}

// fetch makes a first fetch, on the Verifier's context so that no request
// giving up cancels it, and closes done.
func (s *keySource) fetch(done chan struct{}, link trace.Link) {
	_, span := s.tracer.Start(s.ctx, "tipkit.jwks.fetch", trace.WithNewRoot(), trace.WithLinks(link),
		trace.WithAttributes(attribute.String("tipkit.jwks.reason", "first")))
	ks, err := s.newKeySet()
	if err != nil {
		s.fetches.failed.Add(1)
		span.SetStatus(codes.Error, "fetch_failed")
	}
	span.End()
	s.mu.Lock()
	if err != nil {
		s.retryAt, s.lastErr = time.Now().Add(s.every), err
	} else {
		s.set.Store(ks)
	}
	s.loading = nil
	s.mu.Unlock()
	close(done)
}

// newKeySet discovers the key set URL if needed, fetches the key set, and
// builds its keyfunc. The key set is then refreshed hourly in the
// background, and for an unknown kid at most once per s.every; each
// refresh replaces the whole set.
func (s *keySource) newKeySet() (*keySet, error) {
	u := s.jwksURL
	if u == "" {
		var err error
		if u, err = s.discover(); err != nil {
			return nil, err
		}
	}
	ctx, stop := context.WithCancel(s.ctx)
	stale := new(atomic.Bool)
	local := &watchedStorage{Storage: jwkset.NewMemoryStorage(), gen: &s.gen, stale: stale, fetches: s.fetches}
	remote, err := jwkset.NewStorageFromHTTP(u, jwkset.HTTPClientStorageOptions{
		Client:          s.client,
		Ctx:             ctx,
		HTTPTimeout:     fetchTimeout,
		RefreshInterval: refreshInterval,
		RefreshErrorHandler: func(context.Context, error) {
			stale.Store(true)
			s.fetches.failed.Add(1)
		},
		Storage: local,
	})
	if err != nil {
		stop() // ends the refresh goroutine already started
		return nil, err
	}
	limiter := rate.NewLimiter(rate.Every(s.every), 1)
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{u: remote},
		PrioritizeHTTP:    true, // the given storage is empty: skip its miss (an error built per token)
		RateLimitWaitMax:  fetchTimeout,
		RefreshUnknownKID: limiter,
	})
	if err != nil {
		stop()
		return nil, err
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		stop()
		return nil, err
	}
	return &keySet{kf: kf, local: local, limiter: limiter, ctx: ctx, stop: stop, stale: stale, every: s.every, tracer: s.tracer, fetches: s.fetches}, nil
}

// discover returns the jwks_uri of the issuer's OpenID Connect discovery
// document.
func (s *keySource) discover() (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, fetchTimeout)
	defer cancel()
	u := strings.TrimSuffix(s.issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("verify: discovery answered %d", resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoverySize)).Decode(&doc); err != nil {
		return "", fmt.Errorf("verify: discovery document: %w", err)
	}
	switch {
	case doc.Issuer != s.issuer:
		return "", errors.New("verify: the discovery document names another issuer")
	case !fetchableURL(doc.JWKSURI):
		return "", &configError{fmt.Sprintf("the jwks_uri discovered for issuer %q must be an https URL, or http on a loopback host", s.issuer)}
	}
	return doc.JWKSURI, nil
}

// fetchableURL reports whether keys may be fetched from raw: an https URL,
// or an http one on a loopback host.
func fetchableURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		ip := net.ParseIP(u.Hostname())
		return u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
	}
	return false
}

// watchedStorage is the storage of a fetched key set. It bumps gen when a
// refresh removes a key or changes the key of a kid, so that tokens
// remembered before no longer skip the signature check.
type watchedStorage struct {
	jwkset.Storage
	mu      sync.Mutex // serializes replacements
	gen     *atomic.Uint64
	stale   *atomic.Bool // cleared by a successful refresh
	fetches *fetchCounters
}

// KeyReplaceAll replaces the keys with given and bumps gen if a key went.
func (w *watchedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	old, err := w.Storage.KeyReadAll(ctx)
	if err != nil {
		return err
	}
	if err := w.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	w.stale.Store(false)
	w.fetches.fetched.Add(1)
	for _, o := range old {
		if !slices.ContainsFunc(given, func(n jwkset.JWK) bool { return sameKey(o, n) }) {
			w.gen.Add(1)
			break
		}
	}
	return nil
}

// sameKey reports whether a and b have the same kid and public key.
func sameKey(a, b jwkset.JWK) bool {
	ka, ok := a.Key().(interface{ Equal(crypto.PublicKey) bool })
	return ok && a.Marshal().KID == b.Marshal().KID && ka.Equal(b.Key())
}

// instrumentation is the OpenTelemetry name of this package's tracer and
// meter.
const instrumentation = "github.com/tipkit/tipkit/verify"

// fetchCounters counts the key set fetches of a Verifier, all issuers
// together: fetched when a fetch replaced a key set, failed when one did
// not.
type fetchCounters struct {
	fetched, failed atomic.Uint64
}

// register observes the counters as tipkit.jwks.fetches.
func (f *fetchCounters) register(meter metric.Meter) (metric.Registration, error) {
	fetches, err := meter.Int64ObservableCounter("tipkit.jwks.fetches", metric.WithUnit("{fetch}"),
		metric.WithDescription("Fetches of identity providers' key sets, by result"))
	if err != nil {
		return nil, err
	}
	ok := metric.WithAttributeSet(attribute.NewSet(attribute.String("tipkit.result", "ok")))
	failed := metric.WithAttributeSet(attribute.NewSet(attribute.String("tipkit.result", "error")))
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(fetches, int64(f.fetched.Load()), ok)
		o.ObserveInt64(fetches, int64(f.failed.Load()), failed)
		return nil
	}, fetches)
}
