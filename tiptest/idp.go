package tiptest

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of IdPOptions.
const (
	idpDefaultAudience = "tipkit-test"
	idpDefaultTokenTTL = time.Hour
)

// IdPOptions configures NewIdP. The zero value is ready to use.
type IdPOptions struct {
	// Clock gives the iat, nbf and exp of the tokens. Nil means NewClock().
	Clock *Clock
	// Audience is the aud claim of the tokens. Empty means "tipkit-test".
	Audience string
	// TokenTTL is the default token lifetime (exp - iat). Zero means one
	// hour; negative is an error (use WithLifetime to mint
	// an expired token).
	TokenTTL time.Duration
}

// IdP is a local OpenID Connect identity provider listening on 127.0.0.1.
// It signs JWTs with an RSA 2048 (RS256), an ECDSA P-256 (ES256) and an
// Ed25519 (EdDSA) key, and serves:
//
//	GET /.well-known/openid-configuration   the discovery document
//	GET /.well-known/jwks.json              the public keys (JWKS)
//	GET /token?user=NAME[&alg=ALG][&ttl=DURATION][&omit=CLAIM,...]
//	                                        a token for NAME as text/plain
//
// The ttl parameter of /token is a Go duration such as "5m" or "-1m" (a
// negative one gives an already expired token); omit names claims to leave
// out of the token, such as "jti" or "email".
//
// Keys can be rotated (RotateKeys, RetireOldKeys) and the discovery and JWKS
// endpoints can be made unavailable (SetDown). All methods are safe for
// concurrent use.
type IdP struct {
	clock    *Clock
	audience string
	ttl      time.Duration
	issuer   string

	srv       *http.Server
	served    chan struct{}
	closeOnce sync.Once

	mu        sync.RWMutex
	current   map[string]*signingKey // by alg
	published []*signingKey          // in publication order

	down         atomic.Bool
	jwksRequests atomic.Int64
}

// NewIdP generates the signing keys and starts the IdP's HTTP server on a
// free port of 127.0.0.1. Call Close to stop it.
func NewIdP(o IdPOptions) (*IdP, error) {
	if o.TokenTTL < 0 {
		return nil, fmt.Errorf("tiptest: IdPOptions.TokenTTL is negative (%v)", o.TokenTTL)
	}
	p := &IdP{
		clock:    o.Clock,
		audience: o.Audience,
		ttl:      o.TokenTTL,
		current:  make(map[string]*signingKey, len(idpAlgs)),
		served:   make(chan struct{}),
	}
	if p.clock == nil {
		p.clock = NewClock()
	}
	if p.audience == "" {
		p.audience = idpDefaultAudience
	}
	if p.ttl == 0 {
		p.ttl = idpDefaultTokenTTL
	}
	keys, err := newKeySet()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		p.current[k.alg] = k
		p.published = append(p.published, k)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tiptest: IdP listen: %w", err)
	}
	p.issuer = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc("/.well-known/jwks.json", p.handleJWKS)
	mux.HandleFunc("/token", p.handleToken)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return p, nil
}

// newKeySet generates one key per algorithm of idpAlgs.
func newKeySet() ([]*signingKey, error) {
	keys := make([]*signingKey, 0, len(idpAlgs))
	for _, alg := range idpAlgs {
		k, err := newSigningKey(alg)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Close stops the HTTP server and closes its connections. It is safe to
// call more than once.
func (p *IdP) Close() {
	p.closeOnce.Do(func() {
		_ = p.srv.Close()
		<-p.served
	})
}

// Issuer returns the issuer URL, "http://127.0.0.1:PORT" with no trailing
// slash. It is the iss claim of every token and the base of every endpoint.
func (p *IdP) Issuer() string { return p.issuer }

// JWKSURL returns the URL of the JWKS, Issuer()+"/.well-known/jwks.json".
func (p *IdP) JWKSURL() string { return p.issuer + "/.well-known/jwks.json" }

// Audience returns the default aud claim of the tokens.
func (p *IdP) Audience() string { return p.audience }

// Clock returns the clock that gives the tokens' iat, nbf and exp.
func (p *IdP) Clock() *Clock { return p.clock }

// RotateKeys makes a fresh key the current signing key of every algorithm.
// The previous keys stay in the JWKS, so tokens signed before the rotation
// still verify, until RetireOldKeys.
func (p *IdP) RotateKeys() {
	keys, err := newKeySet()
	if err != nil {
		// Key generation reads crypto/rand, which does not fail.
		panic(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		p.current[k.alg] = k
		p.published = append(p.published, k)
	}
}

// RetireOldKeys removes from the JWKS every key but the current one of each
// algorithm. Tokens signed with a retired key no longer verify.
func (p *IdP) RetireOldKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := make([]*signingKey, 0, len(idpAlgs))
	for _, k := range p.published {
		if p.current[k.alg] == k {
			kept = append(kept, k)
		}
	}
	p.published = kept
}

// SetDown makes the discovery document and the JWKS answer 503 Service
// Unavailable while down is true. The /token endpoint keeps working.
func (p *IdP) SetDown(down bool) { p.down.Store(down) }

// JWKSRequests returns how many times the JWKS was served successfully
// (requests answered 503 because of SetDown are not counted).
func (p *IdP) JWKSRequests() int { return int(p.jwksRequests.Load()) }

// KeyIDs returns the kid of the current signing key of each algorithm,
// keyed by algorithm ("RS256", "ES256", "EdDSA").
func (p *IdP) KeyIDs() map[string]string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ids := make(map[string]string, len(p.current))
	for alg, k := range p.current {
		ids[alg] = k.kid
	}
	return ids
}

// PublicKey returns the public key of the current key of alg ("RS256",
// "ES256" or "EdDSA"): a *rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey, as the JWKS publishes it; nil for another alg. Tests
// use it to forge tokens an attacker could make from public material.
func (p *IdP) PublicKey(alg string) crypto.PublicKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	k := p.current[alg]
	if k == nil {
		return nil
	}
	return k.priv.(crypto.Signer).Public()
}

// TokenOption changes one token minted by IdP.Token.
type TokenOption func(*tokenSpec)

// tokenSpec collects the TokenOptions of one IdP.Token call.
type tokenSpec struct {
	alg         string
	lifetime    time.Duration
	hasLifetime bool
	claims      map[string]any
	header      map[string]any
}

// WithAlg chooses the signing algorithm: "RS256" (the default), "ES256" or
// "EdDSA". Token panics on any other value.
func WithAlg(alg string) TokenOption {
	return func(s *tokenSpec) { s.alg = alg }
}

// WithLifetime sets exp to iat + d instead of iat + the IdP's TokenTTL.
// A negative d gives a token that is already expired.
func WithLifetime(d time.Duration) TokenOption {
	return func(s *tokenSpec) { s.lifetime, s.hasLifetime = d, true }
}

// WithClaims adds or overrides claims; a claim whose value is nil is
// removed from the token (for instance {"exp": nil} or {"jti": nil}).
// Several WithClaims apply in order.
func WithClaims(c map[string]any) TokenOption {
	return func(s *tokenSpec) {
		if s.claims == nil {
			s.claims = make(map[string]any, len(c))
		}
		for k, v := range c {
			s.claims[k] = v
		}
	}
}

// WithHeader adds or overrides JOSE header fields such as kid, crit, jku or
// even alg (the signature is still made with the key chosen by WithAlg); a
// field whose value is nil is removed from the header.
// Several WithHeader apply in order.
func WithHeader(h map[string]any) TokenOption {
	return func(s *tokenSpec) {
		if s.header == nil {
			s.header = make(map[string]any, len(h))
		}
		for k, v := range h {
			s.header[k] = v
		}
	}
}

// Token returns a signed JWT for user. Its default claims are iss
// (Issuer()), sub (user), aud (Audience(), a string), iat and nbf (now by
// the IdP's Clock), exp (iat + TokenTTL), jti (128 random bits in hex,
// unique per call), email (user+"@example.com", or user itself if it
// contains "@") and name (user). Its header holds alg, typ "JWT" and the
// kid of the current key of the algorithm. Options change any of these.
//
// Token panics only on misuse: an algorithm other than RS256, ES256 and
// EdDSA, or a claim or header value that cannot be encoded as JSON.
func (p *IdP) Token(user string, opts ...TokenOption) string {
	s := tokenSpec{alg: algRS256}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	p.mu.RLock()
	key := p.current[s.alg]
	p.mu.RUnlock()
	if key == nil {
		panic(fmt.Sprintf("tiptest: IdP.Token: unsupported algorithm %q (want RS256, ES256 or EdDSA)", s.alg))
	}

	now := p.clock.Now()
	lifetime := p.ttl
	if s.hasLifetime {
		lifetime = s.lifetime
	}
	email := user + "@example.com"
	if strings.Contains(user, "@") {
		email = user
	}
	claims := jwt.MapClaims{
		"iss":   p.issuer,
		"sub":   user,
		"aud":   p.audience,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"jti":   newJTI(),
		"email": email,
		"name":  user,
	}
	for k, v := range s.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	t := jwt.NewWithClaims(key.method, claims)
	t.Header["kid"] = key.kid
	for k, v := range s.header {
		if v == nil {
			delete(t.Header, k)
		} else {
			t.Header[k] = v
		}
	}
	signed, err := t.SignedString(key.priv)
	if err != nil {
		panic(fmt.Sprintf("tiptest: IdP.Token: %v", err))
	}
	return signed
}

// newJTI returns 128 random bits in hex.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b[:])
}

// discovery is the OpenID Connect discovery document of the IdP.
type discovery struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
}

// errIdPDown is the body of the 503 answers while the IdP is down.
var errIdPDown = errors.New("identity provider unavailable")

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (p *IdP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if p.down.Load() {
		http.Error(w, errIdPDown.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, discovery{
		Issuer:                           p.issuer,
		JWKSURI:                          p.JWKSURL(),
		TokenEndpoint:                    p.issuer + "/token",
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: append([]string(nil), idpAlgs...),
		ClaimsSupported:                  []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "email", "name"},
	})
}

func (p *IdP) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if p.down.Load() {
		http.Error(w, errIdPDown.Error(), http.StatusServiceUnavailable)
		return
	}
	p.mu.RLock()
	set := jwkSet{Keys: make([]jwk, 0, len(p.published))}
	for _, k := range p.published {
		set.Keys = append(set.Keys, k.jwk)
	}
	p.mu.RUnlock()
	p.jwksRequests.Add(1)
	writeJSON(w, set)
}

func (p *IdP) handleToken(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	q := r.URL.Query()
	user := q.Get("user")
	if user == "" {
		http.Error(w, "missing query parameter user", http.StatusBadRequest)
		return
	}
	opts := make([]TokenOption, 0, 2)
	if alg := q.Get("alg"); alg != "" {
		if !knownAlg(alg) {
			http.Error(w, "unsupported alg: want RS256, ES256 or EdDSA", http.StatusBadRequest)
			return
		}
		opts = append(opts, WithAlg(alg))
	}
	if ttl := q.Get("ttl"); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil {
			http.Error(w, "invalid ttl: want a duration such as 15m or -1m", http.StatusBadRequest)
			return
		}
		opts = append(opts, WithLifetime(d))
	}
	if omit := q.Get("omit"); omit != "" {
		removed := map[string]any{}
		for _, claim := range strings.Split(omit, ",") {
			if claim = strings.TrimSpace(claim); claim != "" {
				removed[claim] = nil
			}
		}
		opts = append(opts, WithClaims(removed))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(p.Token(user, opts...)))
}
