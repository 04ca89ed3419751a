package middleware_test

// The hardening suite: hostile and broken requests through the middleware,
// AWS and identity provider faults, and the secrets check that runs over
// all of it. The soak (soak_test.go) and the fuzz targets (fuzz_test.go)
// belong to it too.
//
// Every test of the suite logs through suiteLog, a debug-level JSON
// handler that keeps every record; each test checks at its end that no
// token or secret it met appears in its records, answers, error strings or
// Stats, and TestMain checks the whole capture once more against every
// secret of the run.

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// suiteLog captures every record of the hardening suite, at debug level.
var (
	suiteLogs    syncBuffer
	suiteLog     = slog.New(slog.NewJSONHandler(&suiteLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	suiteSecrets struct {
		sync.Mutex
		all   []string
		bytes int // the length of all's strings together
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		suiteSecrets.Lock()
		secrets := suiteSecrets.all
		suiteSecrets.Unlock()
		if leaks := leaked(suiteLogs.String(), secrets); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "hardening suite: %d secrets appear in the captured logs, e.g. %s\n", len(leaks), leaks[0])
			code = 1
		}
	}
	os.Exit(code)
}

// leaked returns a short description of each secret (or JWT segment of
// one, of 16 bytes or more) found in out. It indexes the secrets by their
// first 12 bytes and scans out once, so that tens of thousands of secrets
// are checked against megabytes of logs in well under a second.
func leaked(out string, secrets []string) []string {
	const prefix = 12
	byPrefix := map[string][]string{}
	add := func(s string) {
		if len(s) >= prefix {
			byPrefix[s[:prefix]] = append(byPrefix[s[:prefix]], s)
		}
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < prefix || seen[s] {
			continue
		}
		seen[s] = true
		add(s)
		if strings.Contains(s, ".") {
			for part := range strings.SplitSeq(s, ".") {
				if len(part) >= 16 {
					add(part)
				}
			}
		}
	}
	var found []string
	reported := map[string]bool{}
	for i := 0; i+prefix <= len(out); i++ {
		for _, s := range byPrefix[out[i:i+prefix]] {
			if strings.HasPrefix(out[i:], s) && !reported[s] {
				reported[s] = true
				found = append(found, fmt.Sprintf("secret %.10s...", s))
			}
		}
	}
	return found
}

func TestLeakedFindsSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
	for _, out := range []string{"x" + jwt + "y", `{"p":"eyJzdWIiOiJhbGljZSIsImV4cCI6MX0"}`, "sig c2lnbmF0dXJlLW9mLXRoZS10b2tlbg!"} {
		if len(leaked(out, []string{"short", jwt})) == 0 {
			t.Errorf("leak in %q not found", out)
		}
	}
	if got := leaked("nothing here", []string{jwt}); len(got) != 0 {
		t.Errorf("leaks found in nothing: %v", got)
	}
}

// exposureWatch collects, for one test, the secrets it met and what the
// middleware showed the world: answers, error strings and Stats. At the
// end of the test it checks that no secret was shown, nor logged in the
// test's part of suiteLogs.
type exposureWatch struct {
	logStart int
	rec      *awsRecorder
	stats    func() middleware.Stats

	mu      sync.Mutex
	secrets []string
	shown   strings.Builder
	errors  int
}

// newWatch starts watching; its check runs when t ends, after the
// middleware (built later, so closed earlier) has stopped.
func newWatch(t testing.TB, rec *awsRecorder) *exposureWatch {
	w := &exposureWatch{logStart: len(suiteLogs.String()), rec: rec}
	t.Cleanup(func() {
		w.check(t)
		if t.Failed() { // what tipkit logged, checked above to hold no secret
			logs := strings.Split(strings.TrimSpace(suiteLogs.String()[w.logStart:]), "\n")
			t.Logf("the last %d of %d log records of this test:\n%s", min(len(logs), 20), len(logs), strings.Join(logs[max(0, len(logs)-20):], "\n"))
		}
	})
	return w
}

func (w *exposureWatch) secret(s ...string) {
	w.mu.Lock()
	w.secrets = append(w.secrets, s...)
	w.mu.Unlock()
}

func (w *exposureWatch) show(s string) {
	w.mu.Lock()
	w.shown.WriteString(s)
	w.shown.WriteByte('\n')
	w.mu.Unlock()
}

// answer records what the client of a request saw.
func (w *exposureWatch) answer(r *httptest.ResponseRecorder) {
	w.show(fmt.Sprint(r.Code, r.Header(), r.Body.String()))
}

// errorHandler is the default error handler, also recording each error's
// string and every message of its chain.
func (w *exposureWatch) errorHandler() middleware.ErrorHandler {
	next := middleware.DefaultErrorHandler("tipkit-hardening")
	return func(rw http.ResponseWriter, r *http.Request, err *middleware.Error) {
		var chain []string
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			chain = append(chain, e.Error())
		}
		w.mu.Lock()
		w.errors++
		w.mu.Unlock()
		w.show(strings.Join(chain, " | ") + fmt.Sprintf(" %+v", err))
		next(rw, r, err)
	}
}

func (w *exposureWatch) check(t testing.TB) {
	if t.Failed() {
		return
	}
	w.mu.Lock()
	secrets := append([]string(nil), w.secrets...)
	shown := w.shown.String()
	w.mu.Unlock()
	if w.rec != nil {
		secrets = append(secrets, w.rec.allSecrets()...)
	}
	if w.stats != nil {
		shown += fmt.Sprintf("%+v", w.stats())
	}
	suiteSecrets.Lock()
	for _, s := range secrets {
		// A clone: a secret cut from an AWS answer would keep the whole
		// answer alive until TestMain's check.
		suiteSecrets.all = append(suiteSecrets.all, strings.Clone(s))
		suiteSecrets.bytes += len(s)
	}
	suiteSecrets.Unlock()
	logs := suiteLogs.String()[w.logStart:]
	if leaks := leaked(logs+shown, secrets); len(leaks) > 0 {
		t.Errorf("%d secrets shown in logs, answers, errors or stats: %v", len(leaks), leaks)
	}
}

// hardened returns a Middleware over env that logs to suiteLog, calls AWS
// through a recorder, and answers through the watch's error handler.
func hardened(t testing.TB, env *tiptest.Env, edit ...func(*middleware.Options)) (*middleware.Middleware, *exposureWatch) {
	t.Helper()
	rec := newRecorder()
	w := newWatch(t, rec)
	m := newMiddleware(t, env, append([]func(*middleware.Options){withRecorder(rec), func(o *middleware.Options) {
		o.Logger = suiteLog
		o.ErrorHandler = w.errorHandler()
	}}, edit...)...)
	w.stats = m.Stats
	return m, w
}

// answerExpiredInFlight answers 503 with Retry-After, and reports true, when
// err from a handler's Retrieve is the honest answer to credentials that
// expired after the middleware handed them over (the tiptest clock runs in
// real time too) and could not be renewed: a typed exchange error instead
// of expired credentials. Otherwise it writes nothing.
func answerExpiredInFlight(w http.ResponseWriter, env *tiptest.Env, id ctxcreds.Identity, err error) bool {
	var xe *exchange.Error
	if err == nil || id == (ctxcreds.Identity{}) || env.Clock.Now().Before(id.Expires()) || !errors.As(err, &xe) {
		return false
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "credentials expired in flight", http.StatusServiceUnavailable)
	return true
}

// settle waits until m has no exchange or renewal under way, so that moving
// the tiptest clock next cannot land in the middle of one (a background
// renewal signed before a jump of minutes would reach AWS after it).
func settle(t testing.TB, m *middleware.Middleware) {
	t.Helper()
	eventually(t, "no exchange or renewal under way", func() bool { return m.Stats().InFlight == 0 })
}

// checkedWhoAmI is whoAmI that also checks, on every request, that the
// credentials are the caller's by tiptest's AWS and not expired by its
// clock, and hands every secret it saw to w. It calls STS as the caller
// when callSTS is set.
func checkedWhoAmI(t testing.TB, env *tiptest.Env, w *exposureWatch, callSTS bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		cfg, ok := ctxcreds.Config(r.Context())
		id, idOK := ctxcreds.IdentityFrom(r.Context())
		if !ok || !idOK {
			http.Error(rw, "no config", http.StatusInternalServerError)
			return
		}
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if answerExpiredInFlight(rw, env, id, err) {
			return
		}
		if err != nil {
			http.Error(rw, "no credentials", http.StatusInternalServerError)
			return
		}
		w.secret(creds.SecretAccessKey, creds.SessionToken)
		if owner, _ := env.AWS.UserFor(creds.AccessKeyID); owner != id.Subject() {
			t.Errorf("a request of %q was handed credentials of %q", id.Subject(), owner)
		}
		if now := env.Clock.Now(); !now.Before(creds.Expires) {
			t.Errorf("credentials of %q served %v past their expiry", id.Subject(), now.Sub(creds.Expires))
		}
		if callSTS {
			if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
				http.Error(rw, "GetCallerIdentity failed", http.StatusBadGateway)
				return
			}
		}
		_ = json.NewEncoder(rw).Encode(map[string]string{"key": creds.AccessKeyID, "sub": id.Subject()})
	})
}

// allCalls counts every operation of the local AWS, GetCallerIdentity
// included.
func allCalls(env *tiptest.Env) map[string]int {
	calls := awsCalls(env)
	calls["GetCallerIdentity"] = env.AWS.Calls("GetCallerIdentity")
	return calls
}

var b64 = base64.RawURLEncoding.EncodeToString

// segments splits a compact JWS into its three parts.
func segments(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

// signRS256 signs header and payload, given as raw JSON, with key.
func signRS256(t testing.TB, key *rsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// signHS256 signs header and payload, given as raw JSON, with secret.
func signHS256(secret []byte, header, payload string) string {
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jwkOf is the public JWK of key under kid.
func jwkOf(key *rsa.PrivateKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}
}

// rawIssuer is an OpenID Connect issuer whose tokens are signed over JSON
// written by hand, so that a test can sign what no JSON encoder writes:
// duplicate members, members in any order.
type rawIssuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	kid  string
	hits atomic.Int64
}

func newRawIssuer(t testing.TB) *rawIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ri := &rawIssuer{key: key, kid: "raw-1"}
	ri.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = io.WriteString(w, mustJSON(map[string]string{"issuer": ri.srv.URL, "jwks_uri": ri.srv.URL + "/jwks.json"}))
		case "/jwks.json":
			_, _ = io.WriteString(w, mustJSON(map[string]any{"keys": []any{jwkOf(key, ri.kid)}}))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ri.srv.Close)
	return ri
}

func (ri *rawIssuer) URL() string { return ri.srv.URL }

// sign signs payload (raw JSON) with the issuer's key and kid.
func (ri *rawIssuer) sign(t testing.TB, payload string) string {
	return signRS256(t, ri.key, `{"alg":"RS256","typ":"JWT","kid":"`+ri.kid+`"}`, payload)
}

// claimsJSON returns the members of a valid claims set of user, without
// the braces, so that a test can add members (duplicates included) before
// or after them.
func claimsJSON(iss, aud, user string, now time.Time) string {
	return fmt.Sprintf(`"iss":%q,"aud":%q,"iat":%d,"nbf":%d,"exp":%d,"jti":%q,"email":%q`,
		iss, aud, now.Unix(), now.Unix(), now.Add(time.Hour).Unix(), rand.Text(), user+"@example.com")
}

// attacker is a server an attacker controls, serving its own key set and
// certificate, that counts how often it is asked for them.
type attacker struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	cert []byte // DER
	hits atomic.Int64
}

func newAttacker(t testing.TB) *attacker {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{key: key, cert: der}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		switch r.URL.Path {
		case "/jwks.json":
			_, _ = io.WriteString(w, mustJSON(map[string]any{"keys": []any{jwkOf(key, "evil")}}))
		case "/cert.pem":
			_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// manyClaims returns n distinct members `,"xy":0`, with two-byte names
// that no registered claim has, to append to a claims object.
func manyClaims(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"`)
		b.WriteByte(alphabet[i/len(alphabet)%len(alphabet)])
		b.WriteByte(alphabet[i%len(alphabet)])
		b.WriteString(`":0`)
	}
	return b.String()
}

// underCap wraps a token builder, failing t unless the token is within 2
// KiB under the middleware's default MaxTokenSize (so that the row tests
// what its name says: a large token that is read, not one refused by
// size).
func underCap(t testing.TB, tok func() string) func() string {
	return func() string {
		v := tok()
		if n := len(v); n >= verify.DefaultMaxTokenSize || n < verify.DefaultMaxTokenSize-2<<10 {
			t.Fatalf("token of %d bytes, want just under the cap of %d", n, verify.DefaultMaxTokenSize)
		}
		return v
	}
}

// overCap wraps a token builder, failing t unless the token is over the
// middleware's default MaxTokenSize.
func overCap(t testing.TB, tok func() string) func() string {
	return func() string {
		v := tok()
		if n := len(v); n <= verify.DefaultMaxTokenSize {
			t.Fatalf("token of %d bytes, want over the cap of %d", n, verify.DefaultMaxTokenSize)
		}
		return v
	}
}

// hostile is one row of TestHostileRequests.
type hostile struct {
	name   string
	before func()               // optional: runs before req
	req    func() *http.Request // built when the row runs
	status int
	code   string // error member of the JSON body
	desc   string // part of error_description; "" for any
}

// bearerReq returns a request builder with "Bearer "+tok() as its
// Authorization header.
func bearerReq(tok func() string) func() *http.Request {
	return func() *http.Request { return request(tok()) }
}

// headerReq returns a request builder with the given Authorization values
// (set as is, bypassing any check of net/http).
func headerReq(values ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = values
		return r
	}
}

// TestHostileRequests sends hostile or broken tokens and requests through
// m.Handler. Each is refused (401 invalid_token, or 401 invalid_request
// where the request itself is malformed, or 401 without an error code when
// it carries no bearer token) before any AWS call: the counters of every
// operation of the local AWS stay at zero, the next handler never runs,
// and the attacker's servers are never contacted. A lower-case scheme is
// then accepted (200): RFC 6750 schemes are case-insensitive.
//
// verify_test.go's TestVerifyAttacks runs a similar table against the
// Verifier alone; this one goes through extraction, verification and the
// error handler, and checks that AWS is never reached.
func TestHostileRequests(t *testing.T) {
	env := tiptest.New(t)
	raw := newRawIssuer(t)
	evil := newAttacker(t)
	m, watch := hardened(t, env, func(o *middleware.Options) {
		// A second trusted issuer whose tokens are signed over raw JSON.
		// Identity Center does not trust it: a token of it that passed
		// verification would show as an AWS call.
		o.Verify.Issuers = []verify.Issuer{{Issuer: raw.URL(), Audience: []string{env.IdP.Audience()}}}
		o.Verify.RefreshRateLimit = time.Millisecond // every unknown kid refreshes the key set
	})
	var reached atomic.Int32
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		checkedWhoAmI(t, env, watch, true).ServeHTTP(w, r)
	}))

	iss, aud, kids := env.IdP.Issuer(), env.IdP.Audience(), env.IdP.KeyIDs()
	now := env.Clock.Now()
	pub := env.IdP.PublicKey("RS256").(*rsa.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	tok := func(opts ...tiptest.TokenOption) func() string {
		return func() string { return env.IdP.Token("alice", opts...) }
	}
	claims := func(c map[string]any) func() string { return tok(tiptest.WithClaims(c)) }
	header := func(h map[string]any) func() string { return tok(tiptest.WithHeader(h)) }
	// forge puts header (raw JSON) on the payload and signature of a valid
	// token.
	forge := func(header string) func() string {
		return func() string {
			_, p, s := segments(env.IdP.Token("alice"))
			return b64([]byte(header)) + "." + p + "." + s
		}
	}
	// payload puts payload (raw JSON) between the header and signature of
	// a valid token.
	payload := func(payload string) func() string {
		return func() string {
			h, _, s := segments(env.IdP.Token("alice"))
			return h + "." + b64([]byte(payload)) + "." + s
		}
	}
	aliceClaims := "{" + claimsJSON(iss, aud, "alice", now) + `,"sub":"alice"}`
	evilSigned := func(header map[string]any) func() string {
		return func() string { return signRS256(t, evil.key, mustJSON(header), aliceClaims) }
	}
	rawSigned := func(members string) func() string {
		return func() string { return raw.sign(t, "{"+claimsJSON(raw.URL(), aud, "alice", now)+","+members+"}") }
	}
	kidHeader := func(kid string) func() string { return header(map[string]any{"kid": kid}) }
	var retired string // signed with a key the IdP then retires

	const (
		inv   = "invalid_token"
		badRq = "invalid_request"
	)
	rows := []hostile{
		{name: "alg none, signature kept", req: bearerReq(forge(`{"alg":"none","typ":"JWT","kid":"` + kids["RS256"] + `"}`)), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "alg none, empty signature", req: bearerReq(func() string {
			h, p, _ := segments(forge(`{"alg":"none","typ":"JWT"}`)())
			return h + "." + p + "."
		}), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "alg None (other case)", req: bearerReq(forge(`{"alg":"None","kid":"` + kids["RS256"] + `"}`)), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "HS256 signed with the RSA public key (PEM)", req: bearerReq(func() string {
			return signHS256(pemKey, `{"alg":"HS256","typ":"JWT","kid":"`+kids["RS256"]+`"}`, aliceClaims)
		}), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "HS256 signed with the RSA public key (DER)", req: bearerReq(func() string {
			return signHS256(der, `{"alg":"HS256","kid":"`+kids["RS256"]+`"}`, aliceClaims)
		}), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "RS256 header on the ES256 kid", req: bearerReq(kidHeader(kids["ES256"])), status: 401, code: inv, desc: "does not match its signing key"},
		{name: "unknown kid", req: bearerReq(kidHeader("no-such-key")), status: 401, code: inv, desc: "unknown key"},
		{name: "kid with a path", req: bearerReq(kidHeader("../../../../../../etc/passwd")), status: 401, code: inv, desc: "unknown key"},
		{name: "kid with SQL", req: bearerReq(kidHeader(`x' OR '1'='1'; DROP TABLE keys; --`)), status: 401, code: inv, desc: "unknown key"},
		{name: "kid with NUL and newline", req: bearerReq(kidHeader("a\x00\nb")), status: 401, code: inv, desc: "unknown key"},
		{name: "kid an object", req: bearerReq(header(map[string]any{"kid": map[string]any{"$ne": ""}})), status: 401, code: inv, desc: "no key ID"},
		{name: "jku to the attacker's key set, attacker's kid", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": "evil", "jku": evil.srv.URL + "/jwks.json"})), status: 401, code: inv, desc: "unknown key"},
		{name: "jku to the attacker's key set, issuer's kid", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": kids["RS256"], "jku": evil.srv.URL + "/jwks.json"})), status: 401, code: inv, desc: "signature is invalid"},
		{name: "x5u to the attacker's certificate", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": "evil", "x5u": evil.srv.URL + "/cert.pem"})), status: 401, code: inv, desc: "unknown key"},
		{name: "x5c with the attacker's certificate, issuer's kid", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": kids["RS256"], "x5c": []string{base64.StdEncoding.EncodeToString(evil.cert)}})), status: 401, code: inv, desc: "signature is invalid"},
		{name: "embedded jwk of the attacker, attacker's kid", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": "evil", "jwk": jwkOf(evil.key, "evil")})), status: 401, code: inv, desc: "unknown key"},
		{name: "embedded jwk of the attacker, issuer's kid", req: bearerReq(evilSigned(map[string]any{
			"alg": "RS256", "kid": kids["RS256"], "jwk": jwkOf(evil.key, kids["RS256"])})), status: 401, code: inv, desc: "signature is invalid"},
		{name: "crit naming a registered header", req: bearerReq(header(map[string]any{"crit": []string{"exp"}, "exp": 1})), status: 401, code: inv, desc: "header extensions"},
		{name: "crit naming an unknown extension", req: bearerReq(header(map[string]any{"crit": []string{"x-evil"}, "x-evil": true})), status: 401, code: inv, desc: "header extensions"},
		{name: "typ logout+jwt", req: bearerReq(header(map[string]any{"typ": "logout+jwt"})), status: 401, code: inv, desc: "type is not accepted"},
		{name: "wrong issuer", req: bearerReq(claims(map[string]any{"iss": "https://evil.example"})), status: 401, code: inv, desc: "issuer is not trusted"},
		{name: "issuer with a trailing slash", req: bearerReq(claims(map[string]any{"iss": iss + "/"})), status: 401, code: inv, desc: "issuer is not trusted"},
		{name: "wrong audience", req: bearerReq(claims(map[string]any{"aud": "someone-else"})), status: 401, code: inv, desc: "another audience"},
		{name: "audience array without ours", req: bearerReq(claims(map[string]any{"aud": []string{"a", "b", aud + "x"}})), status: 401, code: inv, desc: "another audience"},
		{name: "empty audience array", req: bearerReq(claims(map[string]any{"aud": []string{}})), status: 401, code: inv, desc: "another audience"},
		{name: "expired beyond the leeway", req: bearerReq(tok(tiptest.WithLifetime(-time.Minute))), status: 401, code: inv, desc: "expired"},
		{name: "no exp", req: bearerReq(claims(map[string]any{"exp": nil})), status: 401, code: inv, desc: "no expiration time"},
		{name: "nbf in the future", req: bearerReq(claims(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), status: 401, code: inv, desc: "not valid yet"},
		{name: "iat far in the future", req: bearerReq(claims(map[string]any{"iat": now.Add(24 * time.Hour).Unix()})), status: 401, code: inv, desc: "issue time is in the future"},
		{name: "missing sub", req: bearerReq(claims(map[string]any{"sub": nil})), status: 401, code: inv, desc: "no subject"},
		{name: "empty sub", req: bearerReq(claims(map[string]any{"sub": ""})), status: 401, code: inv, desc: "no subject"},
		{name: "sub not a string", req: bearerReq(claims(map[string]any{"sub": []string{"alice", "bob"}})), status: 401, code: inv, desc: "no subject"},
		{name: "tampered payload (sub changed)", req: bearerReq(payload(`{"iss":"` + iss + `","aud":"` + aud + `","sub":"admin","exp":` + fmt.Sprint(now.Add(time.Hour).Unix()) + `}`)), status: 401, code: inv, desc: "signature is invalid"},
		{name: "truncated signature", req: bearerReq(func() string { v := env.IdP.Token("alice"); return v[:len(v)-10] }), status: 401, code: inv},
		{name: "truncated to two segments", req: bearerReq(func() string { h, p, _ := segments(env.IdP.Token("alice")); return h + "." + p }), status: 401, code: inv, desc: "malformed"},
		{name: "extra segment", req: bearerReq(func() string { return env.IdP.Token("alice") + ".e30" }), status: 401, code: inv, desc: "malformed"},
		{name: "JWE-shaped (five segments)", req: bearerReq(func() string { return env.IdP.Token("alice") + ".a.b" }), status: 401, code: inv, desc: "malformed"},
		{name: "bad base64: standard alphabet in the payload", req: bearerReq(func() string {
			h, p, s := segments(env.IdP.Token("alice"))
			return h + "." + p[:10] + "+" + p[11:] + "." + s
		}), status: 401, code: inv, desc: "malformed"},
		{name: "bad base64: padding", req: bearerReq(func() string { return env.IdP.Token("alice") + "==" }), status: 401, code: inv, desc: "malformed"},
		{name: "bad base64: byte outside the token alphabet", req: bearerReq(func() string { return "*" + env.IdP.Token("alice")[1:] }), status: 401, code: badRq},
		{name: "header not JSON", req: bearerReq(forge("not json")), status: 401, code: inv, desc: "malformed"},
		{name: "claims not JSON", req: bearerReq(payload("[1,2")), status: 401, code: inv, desc: "malformed"},
		{name: "claims a JSON array", req: bearerReq(payload(`["sub","alice"]`)), status: 401, code: inv, desc: "malformed"},
		// Duplicate members: the last one counts, for the verifier as for
		// encoding/json and for RFC 7519 section 4. Signed by a trusted
		// issuer, so only the duplicate decides.
		{name: "duplicate aud: ours, then another", req: bearerReq(rawSigned(`"sub":"alice","aud":"someone-else"`)), status: 401, code: inv, desc: "another audience"},
		{name: "duplicate sub: a user, then empty", req: bearerReq(rawSigned(`"sub":"alice","sub":""`)), status: 401, code: inv, desc: "no subject"},
		{name: "duplicate iss: trusted, then another", req: bearerReq(rawSigned(`"sub":"alice","iss":"https://evil.example"`)), status: 401, code: inv, desc: "issuer is not trusted"},
		{name: "duplicate exp: valid, then past", req: bearerReq(rawSigned(`"sub":"alice","exp":1`)), status: 401, code: inv, desc: "expired"},
		{name: "duplicate alg: RS256, then none", req: bearerReq(func() string {
			return signRS256(t, raw.key, `{"alg":"RS256","kid":"`+raw.kid+`","alg":"none"}`, "{"+claimsJSON(raw.URL(), aud, "alice", now)+`,"sub":"alice"}`)
		}), status: 401, code: inv, desc: "algorithm is not accepted"},
		{name: "duplicate kid: known, then unknown", req: bearerReq(func() string {
			return signRS256(t, raw.key, `{"alg":"RS256","kid":"`+raw.kid+`","kid":"other"}`, "{"+claimsJSON(raw.URL(), aud, "alice", now)+`,"sub":"alice"}`)
		}), status: 401, code: inv, desc: "unknown key"},
		{name: "huge claims under the size cap, forged", req: bearerReq(payload(`{"sub":"alice",` + claimsJSON(iss, aud, "alice", now) + `,"pad":"` + strings.Repeat("x", 11<<10) + `"}`)), status: 401, code: inv, desc: "signature is invalid"},
		{name: "deeply nested claims under the size cap, forged", req: bearerReq(payload(`{"sub":"alice","n":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`)), status: 401, code: inv},
		// Thousands of claims in a token just under the size cap (about
		// 15 KiB): all of them are parsed (iss, aud and exp are valid, so
		// only the signature check refuses the forged one) ...
		{name: "thousands of claims under the size cap, forged", req: bearerReq(underCap(t, payload(`{"sub":"alice",`+claimsJSON(iss, aud, "alice", now)+manyClaims(1600)+`}`))), status: 401, code: inv, desc: "signature is invalid"},
		// ... and validly signed, the token is verified with all of them,
		// and refused by its audience, the one claim that is wrong.
		{name: "thousands of claims under the size cap, validly signed, wrong audience", req: bearerReq(underCap(t, func() string {
			return raw.sign(t, "{"+claimsJSON(raw.URL(), "someone-else", "alice", now)+`,"sub":"alice"`+manyClaims(1600)+"}")
		})), status: 401, code: inv, desc: "another audience"},
		// The same claims and more, over the cap: refused before parsing.
		{name: "thousands of claims over the size cap", req: bearerReq(overCap(t, func() string {
			return raw.sign(t, "{"+claimsJSON(raw.URL(), aud, "alice", now)+`,"sub":"alice"`+manyClaims(2400)+"}")
		})), status: 401, code: inv, desc: "too large"},
		{name: "over the size cap, validly signed", req: bearerReq(claims(map[string]any{"pad": strings.Repeat("x", 16<<10)})), status: 401, code: inv, desc: "too large"},
		{name: "over the size cap, 1 MiB", req: bearerReq(func() string { return strings.Repeat("a", 1<<20) }), status: 401, code: inv, desc: "too large"},
		{name: "Bearer with no token", req: headerReq("Bearer"), status: 401, code: badRq},
		{name: "Bearer with spaces only", req: headerReq("Bearer    "), status: 401, code: badRq},
		{name: "two tokens in one header", req: func() *http.Request {
			return headerReq("Bearer " + env.IdP.Token("alice") + ", Bearer " + env.IdP.Token("bob"))()
		}, status: 401, code: badRq},
		{name: "two Authorization headers", req: func() *http.Request {
			return headerReq("Bearer "+env.IdP.Token("alice"), "Bearer "+env.IdP.Token("alice"))()
		}, status: 401, code: badRq},
		{name: "valid token in the query string", req: func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/?access_token="+url.QueryEscape(env.IdP.Token("alice")), nil)
		}, status: 401, code: badRq},
		{name: "valid token in the query string, percent-encoded name", req: func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/?access%5Ftoken="+env.IdP.Token("alice"), nil)
		}, status: 401, code: badRq},
		{name: "valid token in a parsed form body, valid header too", req: func() *http.Request {
			r := request(env.IdP.Token("alice"))
			r.PostForm = url.Values{"access_token": {env.IdP.Token("bob")}}
			return r
		}, status: 401, code: badRq},
		{name: "non-ASCII bytes in the token", req: bearerReq(func() string { v := env.IdP.Token("alice"); return v[:20] + "é" + v[20:] }), status: 401, code: badRq},
		{name: "CR LF in the header", req: func() *http.Request {
			return headerReq("Bearer " + env.IdP.Token("alice") + "\r\nX-Injected: 1")()
		}, status: 401, code: badRq},
		{name: "Basic credentials", req: headerReq("Basic YWxpY2U6c2VjcmV0"), status: 401, code: "missing_token"},
		{name: "scheme glued to the token", req: func() *http.Request { return headerReq("Bearer" + env.IdP.Token("alice"))() }, status: 401, code: "missing_token"},
		// Last of the IdP-signed rows: once the IdP retires the key, a
		// token signed with it is refused as soon as the key set is
		// refreshed (here by a token with the new kid, itself refused).
		{name: "signature from a rotated-out key", before: func() {
			retired = env.IdP.Token("alice")
			env.IdP.RotateKeys()
			env.IdP.RetireOldKeys()
			w := serve(h, request(env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"aud": "someone-else"}))))
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("token with the new kid and a wrong audience: %d %s", w.Code, w.Body.String())
			}
		}, req: bearerReq(func() string { return retired }), status: 401, code: inv, desc: "unknown key"},
	}
	if len(rows) < 30 {
		t.Fatalf("%d rows", len(rows))
	}
	zero := fmt.Sprint(allCalls(env))
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if row.before != nil {
				row.before()
			}
			r := row.req()
			for _, v := range append(r.Header["Authorization"], r.URL.Query().Get("access_token"), r.PostForm.Get("access_token")) {
				if _, tk, _ := strings.Cut(v, " "); len(tk) >= 16 {
					watch.secret(tk)
				} else if len(v) >= 16 {
					watch.secret(v)
				}
			}
			w := serve(h, r)
			watch.answer(w)
			b := refusal(t, w, row.status, row.code)
			if !strings.Contains(b.Description, row.desc) {
				t.Errorf("error_description %q, want it to contain %q", b.Description, row.desc)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			switch {
			case !strings.HasPrefix(challenge, "Bearer"):
				t.Errorf("WWW-Authenticate %q", challenge)
			case row.code != "missing_token" && !strings.Contains(challenge, `error="`+row.code+`"`):
				t.Errorf("WWW-Authenticate %q, want error=%q", challenge, row.code)
			case row.code == "missing_token" && strings.Contains(challenge, "error="):
				t.Errorf("WWW-Authenticate %q, want no error code", challenge)
			}
			if got := fmt.Sprint(allCalls(env)); got != zero {
				t.Fatalf("AWS was called: %s", got)
			}
			if reached.Load() != 0 {
				t.Fatal("the next handler ran")
			}
		})
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("the attacker's server was contacted %d times", n)
	}
	if s := m.Stats(); s.Exchanges != 0 || s.Users != 0 || s.Verified != 0 {
		t.Errorf("stats after the hostile rows: %+v", s)
	}

	// RFC 6750 schemes are case-insensitive: these are served.
	for _, scheme := range []string{"bearer", "BEARER", "bEaReR"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		tk := env.IdP.Token("alice")
		watch.secret(tk)
		r.Header.Set("Authorization", scheme+" "+tk)
		w := serve(h, r)
		keyOf(t, env, w, "alice")
	}
	if c := env.AWS.Calls("CreateTokenWithIAM"); c != 1 {
		t.Errorf("%d CreateTokenWithIAM calls for alice's first accepted token, want 1", c)
	}
}

// TestDuplicateClaimsCannotSmuggleIdentity signs, with an issuer that
// Identity Center trusts, claims sets holding the same member twice, or
// in two cases (Go's encoding/json matches struct fields
// case-insensitively). The last member counts everywhere: in the verifier
// (and so the cache key and the handler's identity), in the exchange's own
// reading of the token (the session name), and in Identity Center; so the
// identity tipkit verified is the identity whose credentials the handler
// gets, and never one named by another member.
func TestDuplicateClaimsCannotSmuggleIdentity(t *testing.T) {
	clock := tiptest.NewClock()
	ri := newRawIssuer(t)
	const aud = "dup-audience"
	a, err := tiptest.NewAWS(tiptest.AWSOptions{Clock: clock, Issuer: ri.URL(), Audiences: []string{aud}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	env := &tiptest.Env{AWS: a, Clock: clock, ApplicationArn: a.ApplicationArn(), AccessRoleArn: a.AccessRoleArn(),
		ApplicationRoleArn: a.ApplicationRoleArn()}
	rec := newRecorder()
	watch := newWatch(t, rec)
	var mu sync.Mutex
	named := map[string]bool{} // subjects the exchange named sessions after
	base := env.Config()
	base.Credentials = nil
	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer: ri.URL(), Audience: []string{aud}, AWSConfig: base, Now: clock.Now, Logger: suiteLog,
		ErrorHandler: watch.errorHandler(),
		Exchange: exchange.Options{
			ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn, ApplicationRoleArn: env.ApplicationRoleArn,
			Config: func() aws.Config { c := base.Copy(); c.HTTPClient = rec; return c }(),
			SessionNameFunc: func(_, subject string) string {
				mu.Lock()
				named[subject] = true
				mu.Unlock()
				return "s-" + unkeyedUserHash("", subject)
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	watch.stats = m.Stats
	h := m.Handler(checkedWhoAmI(t, env, watch, true))
	send := func(members string) *httptest.ResponseRecorder {
		t.Helper()
		tk := ri.sign(t, "{"+members+"}")
		watch.secret(tk)
		w := serve(h, request(tk))
		watch.answer(w)
		return w
	}
	now := clock.Now()
	std := func(user string) string { return claimsJSON(ri.URL(), aud, user, now) }

	bobKey := keyOf(t, env, send(std("bob")+`,"sub":"bob"`), "bob")

	// sub twice, bob's first: the token is mallory's (last member), and
	// its email is mallory's.
	k := keyOf(t, env, send(`"sub":"bob",`+std("mallory")+`,"sub":"mallory"`), "mallory")
	if k == bobKey {
		t.Fatal("mallory was served bob's credentials")
	}
	// email twice: Identity Center takes the last one, as tipkit takes the
	// last sub: both carol.
	keyOf(t, env, send(`"email":"bob@example.com",`+std("carol")+`,"sub":"carol"`), "carol")
	// aud twice, ours last: accepted (the last member counts); ours first
	// and another last: refused without an AWS call (TestHostileRequests).
	keyOf(t, env, send(`"aud":"someone-else",`+std("dave")+`,"sub":"dave","aud":"`+aud+`"`), "dave")
	// sub in two cases: "sub" is the subject; "Sub" is another claim,
	// which the exchange's own reading of the token must not take for the
	// subject either.
	keyOf(t, env, send(std("erin")+`,"sub":"erin","Sub":"zed","SUB":"zed"`), "erin")
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{"bob": true, "mallory": true, "carol": true, "dave": true, "erin": true}
	if fmt.Sprint(named) != fmt.Sprint(want) {
		t.Errorf("sessions named after the subjects %v, want exactly the verified ones %v", named, want)
	}
}

// faultRow is one AWS fault of TestAWSFaults.
type faultRow struct {
	name   string
	op     string
	fault  tiptest.Fault
	status int    // answer while the fault lasts
	code   string // error member of that answer
}

// TestAWSFaults injects each fault into the local AWS, first while a user's
// credentials are obtained for the first time, then while they are renewed
// after expiry, and checks the answer the package documents (ErrorKind) (503 with
// Retry-After for throttling, 5xx and timeouts; 403 for refusals), that no
// expired credentials are ever served meanwhile (checkedWhoAmI), and that
// the user is served again once the fault clears.
//
// Covered elsewhere, not repeated here: a throttled AssumeRole, a 5xx of
// CreateTokenWithIAM and a slow CreateTokenWithIAM each answered once
// (internal/answertest); a renewal failing with 5xx until the credentials
// expire (TestCredentialsNeverServedPastExpiry); a refusal remembered for
// RefusedTTL (TestRefusedUserIsRemembered, TestFailedRenewalIsRemembered).
func TestAWSFaults(t *testing.T) {
	const (
		unavailable = "temporarily_unavailable"
		denied      = "access_denied"
	)
	rows := []faultRow{
		{"CreateTokenWithIAM throttled beyond retries", "CreateTokenWithIAM", tiptest.Fault{Code: "SlowDownException"}, 503, unavailable},
		{"AssumeRole throttled beyond retries", "AssumeRole", tiptest.Fault{Code: "Throttling"}, 503, unavailable},
		{"AssumeRoleWithWebIdentity throttled beyond retries", "AssumeRoleWithWebIdentity", tiptest.Fault{Code: "Throttling"}, 503, unavailable},
		{"CreateTokenWithIAM 500", "CreateTokenWithIAM", tiptest.Fault{Code: "InternalServerException"}, 503, unavailable},
		{"AssumeRole 503", "AssumeRole", tiptest.Fault{Code: "ServiceUnavailable"}, 503, unavailable},
		{"AssumeRoleWithWebIdentity 500", "AssumeRoleWithWebIdentity", tiptest.Fault{Code: "InternalError"}, 503, unavailable},
		{"CreateTokenWithIAM slower than the exchange timeout", "CreateTokenWithIAM", tiptest.Fault{Latency: 5 * time.Second}, 503, unavailable},
		{"AssumeRole slower than the exchange timeout", "AssumeRole", tiptest.Fault{Latency: 5 * time.Second}, 503, unavailable},
		{"CreateTokenWithIAM refuses (AccessDeniedException)", "CreateTokenWithIAM", tiptest.Fault{Code: "AccessDeniedException"}, 403, denied},
		{"CreateTokenWithIAM refuses (InvalidGrantException)", "CreateTokenWithIAM", tiptest.Fault{Code: "InvalidGrantException"}, 403, denied},
		{"AssumeRole refuses (AccessDenied)", "AssumeRole", tiptest.Fault{Code: "AccessDenied"}, 403, denied},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			env := tiptest.New(t)
			m, watch := hardened(t, env, func(o *middleware.Options) { o.Cache.Timeout = 300 * time.Millisecond })
			h := m.Handler(checkedWhoAmI(t, env, watch, true))
			send := func(tok string) *httptest.ResponseRecorder {
				watch.secret(tok)
				w := serve(h, request(tok))
				watch.answer(w)
				return w
			}
			during := func(phase string, w *httptest.ResponseRecorder) {
				t.Helper()
				b := refusal(t, w, row.status, row.code)
				if ra := w.Header().Get("Retry-After"); (row.status == 503) != (ra != "") {
					t.Fatalf("%s: status %d with Retry-After %q", phase, w.Code, ra)
				}
				t.Logf("%s, during the fault: %d %s (%s)", phase, w.Code, b.Error, b.Description)
			}
			// The fault clears: past the memory of the failure, the user is
			// served again, with the same token if it was never spent, or
			// else after the 401 asking for a fresh one.
			after := func(phase string, tok string, spent bool) {
				t.Helper()
				env.AWS.ClearFaults()
				env.Clock.Advance(31 * time.Second) // past RefusedTTL and the 1 s memory of unavailability
				w := send(tok)
				if spent {
					b := refusal(t, w, http.StatusUnauthorized, "invalid_token")
					if !strings.Contains(b.Description, "fresh token") {
						t.Fatalf("%s: %q", phase, b.Description)
					}
					t.Logf("%s, fault cleared, same token: 401 invalid_token (%s)", phase, b.Description)
					w = send(env.IdP.Token("alice"))
				}
				keyOf(t, env, w, "alice")
				t.Logf("%s, fault cleared: 200", phase)
			}

			// Phase 1: the first exchange meets the fault.
			tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
			env.AWS.SetFault(row.op, row.fault)
			during("first exchange", send(tok))
			// The token is spent when CreateTokenWithIAM may have processed
			// it (it is never sent twice), unless it got an identity context
			// that renews the credentials: after a 5xx or a timeout of
			// CreateTokenWithIAM, and after a refusal.
			spent := row.op == "CreateTokenWithIAM" && row.fault.Code != "SlowDownException" || row.status == 403
			after("first exchange", tok, spent)

			// Phase 2: the renewal after expiry meets the fault; nothing
			// expired is served meanwhile.
			tok = env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
			send(tok) // served from the cache: tok is not exchanged
			env.AWS.SetFault(row.op, row.fault)
			env.Clock.Advance(pastCreds)
			w := send(tok)
			if row.op == "CreateTokenWithIAM" || row.op == "AssumeRoleWithWebIdentity" {
				// Renewal reuses the identity context (AssumeRole only) and
				// the application role's credentials are still valid: this
				// fault is not met.
				keyOf(t, env, w, "alice")
				return
			}
			during("renewal", w)
			after("renewal", tok, false) // refused: the session is dropped, and tok (never exchanged) buys a new one
		})
	}
}

// sender returns a function that sends tok through h and records the
// answer with w.
func sender(h http.Handler, w *exposureWatch) func(tok string) *httptest.ResponseRecorder {
	return func(tok string) *httptest.ResponseRecorder {
		w.secret(tok)
		r := serve(h, request(tok))
		w.answer(r)
		return r
	}
}

// TestIdentityContextRejected makes STS refuse the identity context held
// for a user when the credentials are renewed: as expired
// (ExpiredTokenException) the next renewal step is tried, which without a
// refresh token or an unspent token is the 401 asking for a fresh token;
// as invalid (InvalidIdentityToken) the user is refused, 403. Both recover
// with a fresh token; with the refresh grant, the expired context is
// replaced at once.
func TestIdentityContextRejected(t *testing.T) {
	for _, tc := range []struct {
		name          string
		code          string
		refreshGrant  bool
		status        int
		errCode, desc string
	}{
		{"expired context, no refresh grant", "ExpiredTokenException", false, 401, "invalid_token", "fresh token"},
		{"expired context, refresh grant", "ExpiredTokenException", true, 200, "", ""},
		{"invalid context", "InvalidIdentityToken", false, 403, "access_denied", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []tiptest.Option
			if tc.refreshGrant {
				opts = append(opts, tiptest.WithRefreshGrant())
			}
			env := tiptest.New(t, opts...)
			m, watch := hardened(t, env)
			send := sender(m.Handler(checkedWhoAmI(t, env, watch, true)), watch)
			tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
			keyOf(t, env, send(tok), "alice")
			env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: tc.code, Times: 1})
			env.Clock.Advance(pastCreds)
			w := send(tok)
			if tc.status == 200 {
				keyOf(t, env, w, "alice")
				return
			}
			if b := refusal(t, w, tc.status, tc.errCode); !strings.Contains(b.Description, tc.desc) {
				t.Fatalf("description %q", b.Description)
			}
			env.Clock.Advance(31 * time.Second) // past RefusedTTL
			keyOf(t, env, send(env.IdP.Token("alice")), "alice")
		})
	}
}

// TestBootstrapCredentialsExpire moves the clock through several lifetimes
// of the application role's credentials (1 hour) with requests going on:
// they are renewed with a current token of any user, users keep being
// served, and when no unexpired token is left the answer is the 401 asking
// for a fresh token.
func TestBootstrapCredentialsExpire(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	m, watch := hardened(t, env)
	send := sender(m.Handler(checkedWhoAmI(t, env, watch, true)), watch)
	alice := env.IdP.Token("alice", tiptest.WithLifetime(4*time.Hour))
	for step := range 18 { // 3 hours in steps of 10 minutes
		keyOf(t, env, send(alice), "alice")
		keyOf(t, env, send(env.IdP.Token(fmt.Sprint("user", step))), fmt.Sprint("user", step))
		settle(t, m)
		env.Clock.Advance(10 * time.Minute)
	}
	if n := env.AWS.Calls("AssumeRoleWithWebIdentity"); n < 3 {
		t.Fatalf("%d AssumeRoleWithWebIdentity calls over 3 hours, want at least 3", n)
	}
	// Only alice's token is left; the application role's credentials
	// expire after it: alice is served while her refresh token lasts...
	env.Clock.Advance(50 * time.Minute)
	keyOf(t, env, send(alice), "alice")
	// ...and once her token has expired too, she gets the 401.
	settle(t, m)
	env.Clock.Advance(90 * time.Minute)
	refusal(t, send(alice), http.StatusUnauthorized, "invalid_token")
	keyOf(t, env, send(env.IdP.Token("alice")), "alice")
}

// TestIdPFaults: the identity provider's key endpoints go down after a
// first fetch (known keys keep working; a token with a new kid is answered
// 503, since it may be signed with the issuer's new key, and accepted once
// the IdP is back), and its keys rotate (a new kid
// is accepted after the refresh its first token triggers; once the old
// keys are retired and the key set refreshed, tokens signed with them are
// refused, even one accepted before). An IdP down at startup is
// TestIdPDownAtStartup.
func TestIdPFaults(t *testing.T) {
	t.Run("key set down", func(t *testing.T) {
		env := tiptest.New(t)
		fetches := &keyFetches{}
		m, watch := hardened(t, env, func(o *middleware.Options) {
			o.Verify.RefreshRateLimit = 50 * time.Millisecond
			o.Verify.HTTPClient = &http.Client{Transport: fetches}
		})
		send := sender(m.Handler(checkedWhoAmI(t, env, watch, false)), watch)
		alice := env.IdP.Token("alice")
		keyOf(t, env, send(alice), "alice")
		env.IdP.SetDown(true)
		keyOf(t, env, send(alice), "alice")
		keyOf(t, env, send(env.IdP.Token("bob")), "bob")                               // known kid, first seen
		keyOf(t, env, send(env.IdP.Token("carol", tiptest.WithAlg("ES256"))), "carol") // known kid of another algorithm
		env.IdP.RotateKeys()
		dave := env.IdP.Token("dave")
		w := send(dave)
		b := refusal(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
		if w.Header().Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		t.Logf("new kid while the key set is down: 503 temporarily_unavailable (%s)", b.Description)
		// Once the rate limit lets dave's token refresh the key set again,
		// the refresh fails too: 503 still.
		n := fetches.n.Load()
		eventually(t, "another key set fetch while the IdP is down", func() bool {
			refusal(t, send(dave), http.StatusServiceUnavailable, "temporarily_unavailable")
			return fetches.n.Load() > n
		})
		keyOf(t, env, send(alice), "alice")
		env.IdP.SetDown(false)
		eventually(t, "dave's token accepted once the IdP is back", func() bool { return send(dave).Code == http.StatusOK })
		keyOf(t, env, send(dave), "dave")
	})
	t.Run("key rotation", func(t *testing.T) {
		env := tiptest.New(t)
		fetches := &keyFetches{}
		m, watch := hardened(t, env, func(o *middleware.Options) {
			o.Verify.RefreshRateLimit = time.Millisecond
			o.Verify.HTTPClient = &http.Client{Transport: fetches}
		})
		send := sender(m.Handler(checkedWhoAmI(t, env, watch, false)), watch)
		alice := env.IdP.Token("alice")
		keyOf(t, env, send(alice), "alice")
		unsent := env.IdP.Token("alice")
		env.IdP.RotateKeys()
		keyOf(t, env, send(env.IdP.Token("bob")), "bob") // new kid: one refresh
		keyOf(t, env, send(alice), "alice")              // old kid, still published
		env.IdP.RetireOldKeys()
		unknown := env.IdP.Token("x", tiptest.WithHeader(map[string]any{"kid": "unknown"}))
		n := fetches.n.Load()
		eventually(t, "a key set refresh after the retirement", func() bool {
			refusal(t, send(unknown), http.StatusUnauthorized, "invalid_token") // refreshes, once the rate limit allows
			return fetches.n.Load() > n
		})
		if b := refusal(t, send(alice), http.StatusUnauthorized, "invalid_token"); !strings.Contains(b.Description, "unknown key") {
			t.Fatalf("token accepted before the retirement: %q", b.Description)
		}
		refusal(t, send(unsent), http.StatusUnauthorized, "invalid_token")
		keyOf(t, env, send(env.IdP.Token("alice")), "alice")
	})
}

// keyFetches is the identity provider's HTTP client as seen from the
// middleware: it counts the key set fetches, those the IdP answers 503
// included.
type keyFetches struct{ n atomic.Int64 }

func (k *keyFetches) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "jwks.json") {
		k.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestClockSkew runs the middleware's clock (Options.Now) apart from the
// clock of the IdP and AWS. Within the leeway (30 s) tokens are accepted
// either way; beyond it, a fresh token is refused as not yet valid and a
// short one as expired. Credentials are renewed early enough for a
// middleware clock up to CredentialsExpiryWindow (2 minutes) behind AWS's: the handler
// never holds credentials AWS considers expired.
func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skew     time.Duration
		lifetime time.Duration
		status   int
	}{
		{"20 s ahead", 20 * time.Second, time.Hour, 200},
		{"20 s behind", -20 * time.Second, time.Hour, 200},
		{"2 min behind: fresh token not valid yet", -2 * time.Minute, time.Hour, 401},
		{"2 min ahead: 1 min token expired", 2 * time.Minute, time.Minute, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tiptest.New(t)
			m, watch := hardened(t, env, func(o *middleware.Options) {
				o.Now = func() time.Time { return env.Clock.Now().Add(tc.skew) }
			})
			send := sender(m.Handler(checkedWhoAmI(t, env, watch, true)), watch)
			w := send(env.IdP.Token("alice", tiptest.WithLifetime(tc.lifetime)))
			if tc.status == 200 {
				keyOf(t, env, w, "alice")
				return
			}
			b := refusal(t, w, tc.status, "invalid_token")
			t.Logf("%s: %d invalid_token (%s)", tc.name, w.Code, b.Description)
		})
	}
	t.Run("90 s behind, credentials at expiry", func(t *testing.T) {
		env := tiptest.New(t)
		m, watch := hardened(t, env, func(o *middleware.Options) {
			o.Now = func() time.Time { return env.Clock.Now().Add(-90 * time.Second) }
		})
		send := sender(m.Handler(checkedWhoAmI(t, env, watch, true)), watch)
		past := env.Clock.Now().Add(-5 * time.Minute).Unix()
		tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour), tiptest.WithClaims(map[string]any{"iat": past, "nbf": past}))
		k1 := keyOf(t, env, send(tok), "alice")
		env.Clock.Advance(credsTTL + 10*time.Second) // expired for AWS, 80 s left for the middleware
		if k2 := keyOf(t, env, send(tok), "alice"); k2 == k1 {
			t.Fatal("credentials expired by AWS's clock were handed out")
		}
	})
}
