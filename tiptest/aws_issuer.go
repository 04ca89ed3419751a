package tiptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Caching of the trusted token issuer's keys (wall clock).
const (
	issuerKeysMaxAge = 5 * time.Minute
	// issuerRefetchInterval bounds the refetches caused by an unknown kid.
	issuerRefetchInterval = 2 * time.Second
	issuerMaxDocument     = 1 << 20
	minRSABits            = 2048
)

// tokenAlgs are the JWS algorithms accepted in tokens of the issuer.
var tokenAlgs = []string{algRS256, algES256, algEdDSA}

// issuerKey is one public key of the trusted token issuer.
type issuerKey struct {
	kid string
	alg string // may be empty
	kty string
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// issuerKeys fetches the issuer's keys through OpenID Connect discovery and
// caches them.
type issuerKeys struct {
	issuer string
	client *http.Client

	mu        sync.Mutex
	keys      []issuerKey
	fetchedAt time.Time // last successful fetch
	missAt    time.Time // last refetch caused by an unknown kid
}

func newIssuerKeys(issuer string, client *http.Client) *issuerKeys {
	return &issuerKeys{issuer: issuer, client: client}
}

// candidates returns the keys that may have signed a token with this kid
// (every key fitting alg when kid is empty). It fetches the keys when none
// are cached or the cache is old, and refetches once on an unknown kid
// unless it did so less than issuerRefetchInterval ago.
func (k *issuerKeys) candidates(ctx context.Context, kid, alg string) ([]any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fetched := false
	if k.keys == nil || time.Since(k.fetchedAt) > issuerKeysMaxAge {
		if err := k.fetchLocked(ctx); err != nil && k.keys == nil {
			return nil, err
		}
		fetched = true
	}
	found := k.matchLocked(kid, alg)
	if len(found) == 0 && kid != "" && !fetched && time.Since(k.missAt) >= issuerRefetchInterval {
		k.missAt = time.Now()
		if err := k.fetchLocked(ctx); err != nil {
			return nil, err
		}
		found = k.matchLocked(kid, alg)
	}
	return found, nil
}

// matchLocked returns the cached keys usable for kid and alg.
func (k *issuerKeys) matchLocked(kid, alg string) []any {
	var found []any
	for _, key := range k.keys {
		if (kid == "" || key.kid == kid) && (key.alg == "" || key.alg == alg) && ktyFits(key.kty, alg) {
			found = append(found, key.key)
		}
	}
	return found
}

// ktyFits reports whether a key of type kty can verify alg.
func ktyFits(kty, alg string) bool {
	switch alg {
	case algRS256:
		return kty == "RSA"
	case algES256:
		return kty == "EC"
	case algEdDSA:
		return kty == "OKP"
	}
	return false
}

// fetchLocked reads the discovery document, checks its issuer and reads
// the JWKS it names.
func (k *issuerKeys) fetchLocked(ctx context.Context) error {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	discoveryURL := strings.TrimSuffix(k.issuer, "/") + "/.well-known/openid-configuration"
	if err := k.getJSON(ctx, discoveryURL, &doc); err != nil {
		return err
	}
	if doc.Issuer != k.issuer || doc.JWKSURI == "" {
		return fmt.Errorf("discovery document of %s names issuer %q and jwks_uri %q", k.issuer, doc.Issuer, doc.JWKSURI)
	}
	var set jwkSet
	if err := k.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return err
	}
	keys := make([]issuerKey, 0, len(set.Keys))
	for _, j := range set.Keys {
		if key, ok := parseIssuerJWK(j); ok {
			keys = append(keys, key)
		}
	}
	k.keys, k.fetchedAt = keys, time.Now()
	return nil
}

// getJSON GETs url and decodes its JSON body into v.
func (k *issuerKeys) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, issuerMaxDocument))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// parseIssuerJWK decodes a signing key of a JWKS; it skips keys of other
// uses and types, and malformed keys.
func parseIssuerJWK(j jwk) (issuerKey, bool) {
	if j.Use != "" && j.Use != "sig" {
		return issuerKey{}, false
	}
	var key any
	var err error
	switch {
	case j.Kty == "RSA":
		key, err = rsaFromJWK(j.N, j.E)
	case j.Kty == "EC" && j.Crv == "P-256":
		key, err = ecFromJWK(j.X, j.Y)
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		key, err = ed25519FromJWK(j.X)
	default:
		return issuerKey{}, false
	}
	if err != nil {
		return issuerKey{}, false
	}
	return issuerKey{kid: j.Kid, alg: j.Alg, kty: j.Kty, key: key}, true
}

func rsaFromJWK(n, e string) (*rsa.PublicKey, error) {
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	modulus := new(big.Int).SetBytes(nb)
	exponent := new(big.Int).SetBytes(eb)
	if modulus.BitLen() < minRSABits || !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
		return nil, errors.New("unacceptable RSA key")
	}
	return &rsa.PublicKey{N: modulus, E: int(exponent.Int64())}, nil
}

func ecFromJWK(x, y string) (*ecdsa.PublicKey, error) {
	xb, err1 := base64.RawURLEncoding.DecodeString(x)
	yb, err2 := base64.RawURLEncoding.DecodeString(y)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if len(xb) != 32 || len(yb) != 32 {
		return nil, errors.New("P-256 coordinates must be 32 bytes")
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
}

func ed25519FromJWK(x string) (ed25519.PublicKey, error) {
	xb, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil {
		return nil, err
	}
	if len(xb) != ed25519.PublicKeySize {
		return nil, errors.New("Ed25519 key must be 32 bytes")
	}
	return ed25519.PublicKey(xb), nil
}

// tokenProblem classifies a refused token.
type tokenProblem int

const (
	tokInvalid     tokenProblem = iota + 1 // signature, issuer, audience, claims
	tokExpired                             // exp is past
	tokUnreachable                         // the issuer's keys could not be read
)

// tokenError is a refused token. Its message never holds the token.
type tokenError struct {
	problem tokenProblem
	msg     string
}

// webToken is a verified token of the trusted issuer.
type webToken struct {
	subject  string
	audience string // the authorised audience it was issued for
	jti      string
	claims   jwt.MapClaims
}

// tokenTrust is what a token is verified against: the issuer it must
// name, the audiences of which its aud must hold one, and that issuer's
// keys. STS trusts the IAM OIDC identity provider (AWSOptions.Issuer and
// Audiences); CreateTokenWithIAM trusts the trusted token issuer and the
// audiences of the application's jwt-bearer grant (Setup).
type tokenTrust struct {
	issuer    string
	audiences []string
	keys      *issuerKeys
}

// errUnreachable marks a key fetch failure inside the key function.
var errUnreachable = errors.New("issuer keys unreachable")

// verifyWebToken verifies raw against tr: signature with a key of the
// issuer, alg, exact iss, aud among the audiences, exp (required), nbf and
// iat.
func (a *AWS) verifyWebToken(ctx context.Context, raw string, tr tokenTrust) (*webToken, *tokenError) {
	parser := jwt.NewParser(
		jwt.WithValidMethods(tokenAlgs),
		jwt.WithTimeFunc(a.clock.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(tr.issuer),
		jwt.WithIssuedAt(),
	)
	claims := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return tokenKeys(ctx, t, tr)
	})
	switch {
	case errors.Is(err, errUnreachable):
		return nil, &tokenError{problem: tokUnreachable, msg: "The identity provider could not be reached to verify the token."}
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &tokenError{problem: tokExpired, msg: a.expiredMessage(claims)}
	case err != nil:
		return nil, &tokenError{problem: tokInvalid, msg: "The token could not be validated: " + err.Error()}
	}
	aud, ok := matchAudience(claims, tr.audiences)
	if !ok {
		return nil, &tokenError{problem: tokInvalid, msg: "Incorrect token audience"}
	}
	return &webToken{
		subject:  stringClaim(claims, "sub"),
		audience: aud,
		jti:      stringClaim(claims, "jti"),
		claims:   claims,
	}, nil
}

// tokenKeys is the key function of verifyWebToken: it refuses critical
// header parameters and tokens of other issuers before any fetch.
func tokenKeys(ctx context.Context, t *jwt.Token, tr tokenTrust) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("critical header parameters are not supported")
	}
	claims, _ := t.Claims.(jwt.MapClaims)
	if iss, _ := claims["iss"].(string); iss != tr.issuer {
		return nil, errors.New("no trusted token issuer matches the iss claim")
	}
	kid, ok := t.Header["kid"].(string)
	if _, present := t.Header["kid"]; present && !ok {
		return nil, errors.New("kid is not a string")
	}
	keys, err := tr.keys.candidates(ctx, kid, t.Method.Alg())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key of the issuer matches the token's kid and alg")
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// matchAudience returns the first of the authorised audiences that the
// token's aud holds.
func matchAudience(claims jwt.MapClaims, authorised []string) (string, bool) {
	auds, err := claims.GetAudience()
	if err != nil {
		return "", false
	}
	for _, want := range authorised {
		if slices.Contains(auds, want) {
			return want, true
		}
	}
	return "", false
}

// expiredMessage is STS's message for an expired token.
func (a *AWS) expiredMessage(claims jwt.MapClaims) string {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "Token expired"
	}
	return fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d",
		a.clock.Now().Unix(), exp.Unix())
}

// stringClaim returns claim name if it is a string, else "".
func stringClaim(claims jwt.MapClaims, name string) string {
	s, _ := claims[name].(string)
	return s
}
