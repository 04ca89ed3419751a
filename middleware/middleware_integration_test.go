package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// Lifetimes of the local services: credentials last 15 minutes (the
// exchange's default), the refresh window is 5 minutes, and identity
// contexts last one hour.
const (
	credsTTL   = 15 * time.Minute
	inWindow   = credsTTL - 4*time.Minute // 4 minutes left: inside the refresh window, outside CredentialsExpiryWindow
	pastCreds  = credsTTL + time.Minute
	pastIDCtxt = time.Hour + time.Minute
	waitLimit  = 5 * time.Second // bound of every poll
)

// awsRecorder is the HTTP client of the exchange's SDK clients. It passes
// each request on, remembers the grant type of every CreateTokenWithIAM and
// every secret AWS answered (identity contexts, Identity Center tokens,
// secret keys, session tokens), and can hold the requests of one operation
// until released.
type awsRecorder struct {
	next aws.HTTPClient

	mu      sync.Mutex
	grants  []string
	secrets []string
	gates   map[string]*gate
}

// gate holds the requests of one operation.
type gate struct {
	started chan struct{} // closed when the first request arrives
	once    sync.Once
	release chan struct{}
}

func newRecorder() *awsRecorder {
	return &awsRecorder{next: awshttp.NewBuildableClient().WithDialerOptions(), gates: map[string]*gate{}} // untraced dial: see exchange.withIdleConns
}

// hold makes the requests of op wait until the returned release is called
// (or their context ends). Calls of op already under way are not held.
func (a *awsRecorder) hold(op string) (started <-chan struct{}, release func()) {
	g := &gate{started: make(chan struct{}), release: make(chan struct{})}
	a.mu.Lock()
	a.gates[op] = g
	a.mu.Unlock()
	var once sync.Once
	return g.started, func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.gates, op)
			a.mu.Unlock()
			close(g.release)
		})
	}
}

// grantTypes returns the grant types of the CreateTokenWithIAM calls made.
func (a *awsRecorder) grantTypes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.grants...)
}

// allSecrets returns every secret value AWS answered.
func (a *awsRecorder) allSecrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.secrets...)
}

var xmlSecret = regexp.MustCompile(`<(SecretAccessKey|SessionToken)>([^<]+)</`)

func (a *awsRecorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	op := "CreateTokenWithIAM"
	if req.URL.Path != "/token" {
		form, _ := url.ParseQuery(string(body))
		op = form.Get("Action")
	}
	a.mu.Lock()
	if op == "CreateTokenWithIAM" {
		var in struct {
			GrantType string `json:"grantType"`
		}
		_ = json.Unmarshal(body, &in)
		a.grants = append(a.grants, in.GrantType)
	}
	g := a.gates[op]
	a.mu.Unlock()
	if g != nil {
		g.once.Do(func() { close(g.started) })
		select {
		case <-g.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}

	resp, err := a.next.Do(out)
	if err != nil {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if err != nil {
		return resp, nil // the SDK sees the short body and fails the call
	}
	var found []string
	if op == "CreateTokenWithIAM" {
		var tok struct {
			AccessToken, RefreshToken, IDToken string
			AWSAdditionalDetails               struct{ IdentityContext string }
		}
		_ = json.Unmarshal(answer, &tok)
		found = append(found, tok.AccessToken, tok.RefreshToken, tok.IDToken, tok.AWSAdditionalDetails.IdentityContext)
	}
	for _, m := range xmlSecret.FindAllSubmatch(answer, -1) {
		found = append(found, string(m[2]))
	}
	a.mu.Lock()
	for _, s := range found {
		if s != "" {
			a.secrets = append(a.secrets, s)
		}
	}
	a.mu.Unlock()
	return resp, nil
}

// withRecorder makes the exchange call AWS through rec.
func withRecorder(rec *awsRecorder) func(*middleware.Options) {
	return func(o *middleware.Options) { o.Exchange.Config.HTTPClient = rec }
}

// request returns a GET / with token as bearer token, if any.
func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// serve runs r through h.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// keyOf returns the access key whoAmI answered with, failing t unless w is
// a 200 for user.
func keyOf(t testing.TB, env *tiptest.Env, w *httptest.ResponseRecorder, user string) string {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", w.Code, w.Body.String())
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	if owner, ok := env.AWS.UserFor(body["key"]); !ok || owner != user || body["sub"] != user {
		t.Fatalf("request of %s served with credentials of %q (sub %q)", user, owner, body["sub"])
	}
	return body["key"]
}

// errorBody is the JSON body of a refusal.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// refusal checks that w is a refusal with status and error code, and
// returns its body.
func refusal(t testing.TB, w *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	var b errorBody
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != code {
		t.Fatalf("body %q, want error %q (%v)", w.Body.String(), code, err)
	}
	return b
}

// awsCalls counts every operation of the local AWS.
func awsCalls(env *tiptest.Env) map[string]int {
	calls := map[string]int{}
	for _, op := range []string{"CreateTokenWithIAM", "AssumeRole", "AssumeRoleWithWebIdentity"} {
		calls[op] = env.AWS.Calls(op)
	}
	return calls
}

// eventually polls cond until it holds, failing t after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCancelledRequestDoesNotFailOthers(t *testing.T) {
	env := tiptest.New(t)
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec))
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	// AssumeRole is slow, and held until release: the request is cancelled
	// while the exchange is certainly under way.
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 100 * time.Millisecond, Times: 1})
	started, release := rec.hold("AssumeRole")
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader := make(chan *httptest.ResponseRecorder, 1)
	go func() { leader <- serve(h, request(tok).WithContext(ctx)) }()
	<-started

	const others = 8
	results := make(chan *httptest.ResponseRecorder, others)
	for range others {
		go func() { results <- serve(h, request(tok)) }()
	}
	eventually(t, "the other requests to be verified", func() bool {
		s := m.Stats()
		return s.CacheHits+s.Verified == others+1
	})
	cancel()
	if w := <-leader; w.Code != http.StatusServiceUnavailable {
		t.Fatalf("cancelled request: status %d, want 503: %s", w.Code, w.Body.String())
	}
	release()
	for range others {
		keyOf(t, env, <-results, "alice")
	}
	if c, a := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"); c != 1 || a != 1 {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls, want one exchange", c, a)
	}
	if s := m.Stats(); s.Exchanges != 1 || s.Joined == 0 || s.Joined+s.Hits != others {
		t.Fatalf("stats %+v: want 1 exchange and the other requests merged or served from the cache", s)
	}
}

func TestRefreshAheadServesOldCredentials(t *testing.T) {
	env := tiptest.New(t)
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec))
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	old := keyOf(t, env, get(t, h, tok), "alice")

	env.Clock.Advance(inWindow)
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 200 * time.Millisecond, Times: 1})
	started, release := rec.hold("AssumeRole")
	defer release()
	// AssumeRole is held until release: these requests cannot have waited
	// for it.
	for range 3 {
		if k := keyOf(t, env, get(t, h, tok), "alice"); k != old {
			t.Fatalf("served %s while the renewal runs, want the still-valid %s", k, old)
		}
	}
	<-started // the one background renewal reached AWS
	if s := m.Stats(); s.BackgroundRefreshes != 1 || s.InFlight != 1 {
		t.Fatalf("%d background refreshes, %d in flight, want 1 and 1", s.BackgroundRefreshes, s.InFlight)
	}
	release()
	settle(t, m) // the background renewal ends
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.Stats().InFlight; n != 0 {
		t.Fatalf("%d in flight after Close, want 0", n)
	}
	fresh := keyOf(t, env, get(t, h, tok), "alice")
	if fresh == old {
		t.Fatal("credentials not renewed")
	}
	if c, a := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"); c != 1 || a != 2 {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls, want 1 and 2 (identity context reused)", c, a)
	}
	if s := m.Stats(); s.Renewals != 1 || s.Exchanges != 1 {
		t.Fatalf("stats %+v: want 1 exchange and 1 renewal", s)
	}
}

func TestUserBound(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.MaxUsers = 3 })
	h := m.Handler(whoAmI(env))
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = env.IdP.Token(u)
		keyOf(t, env, get(t, h, tokens[u]), u)
	}
	if s := m.Stats(); s.Users != 3 || s.Evictions != 2 {
		t.Fatalf("%d users held and %d evicted, want 3 and 2", s.Users, s.Evictions)
	}
	keyOf(t, env, get(t, h, tokens["u2"]), "u2") // u3 is now the least recently used
	before := awsCalls(env)
	u0 := env.IdP.Token("u0") // u0 was evicted: its session is gone, a fresh token buys a new one
	keyOf(t, env, get(t, h, u0), "u0")
	if got := env.AWS.Calls("CreateTokenWithIAM"); got != before["CreateTokenWithIAM"]+1 {
		t.Fatalf("evicted user served without a new exchange (%d calls)", got)
	}
	before = awsCalls(env)
	for _, u := range []string{"u2", "u4", "u0"} {
		keyOf(t, env, get(t, h, tokens[u]), u)
	}
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("users held made AWS calls: %v then %v", before, after)
	}
	if s := m.Stats(); s.Users != 3 || s.Evictions != 3 {
		t.Fatalf("%d users held and %d evicted, want 3 and 3 (u3 evicted)", s.Users, s.Evictions)
	}
	// u3's token was exchanged and its session evicted: only a fresh token helps.
	b := refusal(t, get(t, h, tokens["u3"]), http.StatusUnauthorized, "invalid_token")
	if !strings.Contains(b.Description, "fresh token") {
		t.Fatalf("description %q does not ask for a fresh token", b.Description)
	}
}

func TestUserBoundUnderLoad(t *testing.T) {
	env := tiptest.New(t)
	const maxUsers, users = 4, 24
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.MaxUsers = maxUsers })
	h := m.Handler(whoAmI(env))
	var wg sync.WaitGroup
	for i := range users {
		u := fmt.Sprintf("user%02d", i)
		tok := env.IdP.Token(u)
		wg.Go(func() {
			w := get(t, h, tok)
			var body map[string]string
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &body) != nil {
				t.Errorf("%s: status %d: %s", u, w.Code, w.Body.String())
				return
			}
			if owner, _ := env.AWS.UserFor(body["key"]); owner != u {
				t.Errorf("%s served with credentials of %q", u, owner)
			}
		})
	}
	wg.Wait()
	if s := m.Stats(); s.Users != maxUsers || s.Evictions != users-maxUsers {
		t.Fatalf("%d users held and %d evicted, want %d and %d", s.Users, s.Evictions, maxUsers, users-maxUsers)
	}
}

// IAM Identity Center's refusal of a token is remembered for that token:
// the same token is answered 403 from memory within RefusedTTL, while a
// fresh token of the user is tried at once (the user may have been set up
// meanwhile, or the first token may have been spent elsewhere).
func TestRefusedTokenIsRemembered(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.RefusedTTL = time.Minute })
	h := m.Handler(whoAmI(env))
	env.AWS.RemoveUser("mallory")
	tok := env.IdP.Token("mallory")
	w := get(t, h, tok)
	refusal(t, w, http.StatusForbidden, "access_denied")
	if !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="access_denied"`) {
		t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
	}
	before := awsCalls(env)
	if before["CreateTokenWithIAM"] != 1 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 1", before["CreateTokenWithIAM"])
	}
	for range 3 {
		refusal(t, get(t, h, tok), http.StatusForbidden, "access_denied")
	}
	env.Clock.Advance(30 * time.Second)
	refusal(t, get(t, h, tok), http.StatusForbidden, "access_denied")
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused token made AWS calls within RefusedTTL: %v then %v", before, after)
	}
	refusal(t, get(t, h, env.IdP.Token("mallory")), http.StatusForbidden, "access_denied") // a fresh token: asked at once
	if got := env.AWS.Calls("CreateTokenWithIAM"); got != 2 {
		t.Fatalf("%d CreateTokenWithIAM calls after a fresh token, want 2", got)
	}
	env.AWS.AddUser("mallory")
	keyOf(t, env, get(t, h, env.IdP.Token("mallory")), "mallory") // set up now: served at once
	if s := m.Stats(); s.Errors["forbidden"] != 6 {
		t.Fatalf("%d forbidden errors, want 6", s.Errors["forbidden"])
	}
}

func TestRenewalReusesIdentityContext(t *testing.T) {
	env := tiptest.New(t)
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec))
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	k1 := keyOf(t, env, get(t, h, tok), "alice")
	env.Clock.Advance(pastCreds)
	k2 := keyOf(t, env, get(t, h, tok), "alice")
	if k1 == k2 {
		t.Fatal("expired credentials served")
	}
	if g := rec.grantTypes(); len(g) != 1 || env.AWS.Calls("AssumeRole") != 2 {
		t.Fatalf("grants %v and %d AssumeRole calls: want one jwt-bearer and two AssumeRole", g, env.AWS.Calls("AssumeRole"))
	}
}

func TestRenewalWithRefreshGrant(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec))
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	k1 := keyOf(t, env, get(t, h, tok), "alice")
	env.Clock.Advance(pastIDCtxt) // credentials and identity context expired; the refresh token is not
	k2 := keyOf(t, env, get(t, h, tok), "alice")
	if k1 == k2 {
		t.Fatal("expired credentials served")
	}
	want := []string{"urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"}
	if g := rec.grantTypes(); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("CreateTokenWithIAM grants %v, want %v", g, want)
	}
	if s := m.Stats(); s.Exchanges != 1 || s.Renewals != 1 {
		t.Fatalf("stats %+v: want 1 exchange and 1 renewal", s)
	}
}

func TestRenewalWithNewerTokenThenFreshTokenNeeded(t *testing.T) {
	env := tiptest.New(t)
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec))
	h := m.Handler(whoAmI(env))
	tok1 := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	keyOf(t, env, get(t, h, tok1), "alice")

	// 50 min: the identity context renews the expired credentials, until 65 min.
	env.Clock.Advance(50 * time.Minute)
	k2 := keyOf(t, env, get(t, h, tok1), "alice")

	// 62 min: inside the refresh window, but the identity context expired at
	// 60 min and tok1 is spent: nothing renews, the credentials serve on.
	env.Clock.Advance(12 * time.Minute)
	before := awsCalls(env)
	if k := keyOf(t, env, get(t, h, tok1), "alice"); k != k2 {
		t.Fatalf("served %s, want the still-valid %s", k, k2)
	}
	settle(t, m) // the background renewal ends
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a renewal with nothing to renew with called AWS: %v then %v", before, after)
	}

	// 66 min: the credentials expired; tok1 cannot buy more.
	env.Clock.Advance(4 * time.Minute)
	w := get(t, h, tok1)
	b := refusal(t, w, http.StatusUnauthorized, "invalid_token")
	if !strings.Contains(b.Description, "obtain a fresh token") ||
		!strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("answer %q, WWW-Authenticate %q: want invalid_token asking for a fresh token",
			w.Body.String(), w.Header().Get("WWW-Authenticate"))
	}
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a spent token was sent to AWS: %v then %v", before, after)
	}

	// A newer token of alice buys a new exchange.
	tok2 := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	if k := keyOf(t, env, get(t, h, tok2), "alice"); k == k2 {
		t.Fatal("expired credentials served")
	}
	jwt := "urn:ietf:params:oauth:grant-type:jwt-bearer"
	if g := rec.grantTypes(); fmt.Sprint(g) != fmt.Sprint([]string{jwt, jwt}) {
		t.Fatalf("CreateTokenWithIAM grants %v, want two jwt-bearer (tok1 once, tok2 once)", g)
	}
}

func TestCredentialsNeverServedPastExpiry(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	k1 := keyOf(t, env, get(t, h, tok), "alice")

	env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "InternalError"})
	env.Clock.Advance(inWindow) // renewal fails in the background: the credentials serve on
	if k := keyOf(t, env, get(t, h, tok), "alice"); k != k1 {
		t.Fatalf("served %s, want %s", k, k1)
	}
	settle(t, m)                       // the background renewal ends
	env.Clock.Advance(5 * time.Minute) // expired, and AWS still fails
	w := get(t, h, tok)
	refusal(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	env.AWS.ClearFaults()
	env.Clock.Advance(2 * time.Second) // past the short memory of the failure
	if k := keyOf(t, env, get(t, h, tok), "alice"); k == k1 {
		t.Fatal("expired credentials served")
	}
}

func TestLongHandlerRenewsThroughCache(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	const steps = 3
	var keys []string
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, ok := ctxcreds.Config(r.Context())
		if !ok {
			http.Error(w, "no config", http.StatusInternalServerError)
			return
		}
		client := sts.NewFromConfig(cfg) // one client for the whole response
		for i := range steps {
			if _, err := client.GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
				fmt.Fprintf(w, "step %d: %v\n", i, err)
				return
			}
			creds, err := cfg.Credentials.Retrieve(r.Context())
			if err != nil {
				fmt.Fprintf(w, "step %d: %v\n", i, err)
				return
			}
			keys = append(keys, creds.AccessKeyID)
			fmt.Fprintf(w, "step %d ok\n", i)
			w.(http.Flusher).Flush()
			env.Clock.Advance(pastCreds) // the credentials of this step expire
		}
	}))
	w := get(t, h, env.IdP.Token("alice"))
	if want := "step 0 ok\nstep 1 ok\nstep 2 ok\n"; w.Body.String() != want {
		t.Fatalf("streamed %q, want %q", w.Body.String(), want)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if owner, _ := env.AWS.UserFor(k); owner != "alice" || seen[k] {
			t.Fatalf("keys %v: want %d distinct keys of alice", keys, steps)
		}
		seen[k] = true
	}
	if c, a := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"); c != 1 || a != steps {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls, want 1 and %d", c, a, steps)
	}
}

func TestSeveralIssuers(t *testing.T) {
	env := tiptest.New(t)
	other, err := tiptest.NewIdP(tiptest.IdPOptions{Clock: env.Clock, Audience: "other-audience"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Verify.Issuers = []verify.Issuer{{Issuer: other.Issuer(), Audience: []string{other.Audience()}}}
	})
	h := m.Handler(whoAmI(env))

	keyOf(t, env, get(t, h, env.IdP.Token("alice")), "alice")

	// other's token passes verification with other's keys; Identity Center
	// trusts only env.IdP and refuses it.
	before := awsCalls(env)
	refusal(t, get(t, h, other.Token("bob")), http.StatusForbidden, "access_denied")
	if after := awsCalls(env); after["CreateTokenWithIAM"] != before["CreateTokenWithIAM"]+1 {
		t.Fatalf("a verified token of the second issuer was not exchanged: %v then %v", before, after)
	}
	if other.JWKSRequests() == 0 {
		t.Fatal("the second issuer's keys were never fetched")
	}

	// A token naming one issuer but signed with the other's key is refused
	// before any AWS call.
	before = awsCalls(env)
	forged := []string{
		other.Token("alice", tiptest.WithClaims(map[string]any{"iss": env.IdP.Issuer(), "aud": env.IdP.Audience()})),
		other.Token("alice", tiptest.WithClaims(map[string]any{"iss": env.IdP.Issuer(), "aud": env.IdP.Audience()}),
			tiptest.WithHeader(map[string]any{"kid": env.IdP.KeyIDs()["RS256"]})),
		env.IdP.Token("bob", tiptest.WithClaims(map[string]any{"iss": other.Issuer(), "aud": other.Audience()})),
		env.IdP.Token("bob", tiptest.WithClaims(map[string]any{"iss": other.Issuer(), "aud": other.Audience()}),
			tiptest.WithHeader(map[string]any{"kid": other.KeyIDs()["RS256"]})),
		// The right key, but the audience of the other issuer.
		env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"aud": other.Audience()})),
	}
	for i, tok := range forged {
		w := get(t, h, tok)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("forged token %d: status %d, WWW-Authenticate %q", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if after := awsCalls(env); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("forged tokens reached AWS: %v then %v", before, after)
	}
}

// configCheck answers whether the request carries an AWS configuration.
var configCheck = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, ok := ctxcreds.Config(r.Context())
	fmt.Fprintf(w, "config=%t", ok)
})

func TestOptionalPreflightSkipper(t *testing.T) {
	env := tiptest.New(t)
	preflight := func() *http.Request {
		r := httptest.NewRequest(http.MethodOptions, "/", nil)
		r.Header.Set("Origin", "https://app.example.com")
		r.Header.Set("Access-Control-Request-Method", "POST")
		return r
	}

	t.Run("optional", func(t *testing.T) {
		m := newMiddleware(t, env, func(o *middleware.Options) { o.Optional = true })
		h := m.Handler(configCheck)
		if w := get(t, h, ""); w.Code != http.StatusOK || w.Body.String() != "config=false" {
			t.Fatalf("anonymous request: %d %q", w.Code, w.Body.String())
		}
		if w := get(t, h, env.IdP.Token("alice")); w.Code != http.StatusOK || w.Body.String() != "config=true" {
			t.Fatalf("signed-in request: %d %q", w.Code, w.Body.String())
		}
		for _, bad := range []string{"not-a-token", env.IdP.Token("alice", tiptest.WithLifetime(-time.Hour))} {
			refusal(t, get(t, h, bad), http.StatusUnauthorized, "invalid_token")
		}
		if s := m.Stats(); s.Anonymous != 1 || s.Errors["invalid_token"] != 2 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		m := newMiddleware(t, env)
		h := m.Handler(configCheck)
		if w := serve(h, preflight()); w.Code != http.StatusOK || w.Body.String() != "config=false" {
			t.Fatalf("preflight: %d %q", w.Code, w.Body.String())
		}
		plain := httptest.NewRequest(http.MethodOptions, "/", nil) // not a preflight
		refusal(t, serve(h, plain), http.StatusUnauthorized, "missing_token")
		if s := m.Stats(); s.Skipped != 1 {
			t.Fatalf("stats %+v", s)
		}
	})

	t.Run("authenticate preflight", func(t *testing.T) {
		m := newMiddleware(t, env, func(o *middleware.Options) { o.AuthenticatePreflight = true })
		h := m.Handler(configCheck)
		w := serve(h, preflight())
		refusal(t, w, http.StatusUnauthorized, "missing_token")
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") || strings.Contains(got, "error=") {
			t.Fatalf("WWW-Authenticate %q", got)
		}
		r := preflight()
		r.Header.Set("Authorization", "Bearer "+env.IdP.Token("alice"))
		if w := serve(h, r); w.Code != http.StatusOK || w.Body.String() != "config=true" {
			t.Fatalf("preflight with a token: %d %q", w.Code, w.Body.String())
		}
	})

	t.Run("skipper", func(t *testing.T) {
		m := newMiddleware(t, env, func(o *middleware.Options) {
			o.Skipper = func(r *http.Request) bool { return r.URL.Path == "/healthz" }
		})
		h := m.Handler(configCheck)
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Header.Set("Authorization", "Bearer not-a-token") // not even looked at
		if w := serve(h, r); w.Code != http.StatusOK || w.Body.String() != "config=false" {
			t.Fatalf("skipped request: %d %q", w.Code, w.Body.String())
		}
		refusal(t, get(t, h, ""), http.StatusUnauthorized, "missing_token")
		if s := m.Stats(); s.Skipped != 1 || s.Requests != 2 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestIdPDownAtStartup(t *testing.T) {
	env := tiptest.New(t)
	env.IdP.SetDown(true)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Verify.RefreshRateLimit = 20 * time.Millisecond })
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	w := get(t, h, tok)
	refusal(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
	if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	env.IdP.SetDown(false)
	eventually(t, "a 200 once the IdP is back", func() bool {
		w := get(t, h, tok)
		if w.Code == http.StatusOK {
			keyOf(t, env, w, "alice")
			return true
		}
		refusal(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return false
	})
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 1 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 1", n)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNoSecretInLogsBodiesOrStats(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	rec := newRecorder()
	var logs syncBuffer
	m := newMiddleware(t, env, withRecorder(rec), func(o *middleware.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	var mu sync.Mutex
	var userSecrets []string
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, _ := ctxcreds.Config(r.Context())
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if err != nil {
			http.Error(w, "no credentials", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		userSecrets = append(userSecrets, creds.SecretAccessKey, creds.SessionToken)
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))

	var tokens []string
	var answers []*httptest.ResponseRecorder
	send := func(tok string, status int) {
		t.Helper()
		tokens = append(tokens, tok)
		w := get(t, h, tok)
		if w.Code != status {
			t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
		}
		answers = append(answers, w)
	}
	send(env.IdP.Token("alice"), http.StatusOK)
	send(env.IdP.Token("alice"), http.StatusOK)
	env.AWS.RemoveUser("mallory")
	send(env.IdP.Token("mallory"), http.StatusForbidden)
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "InternalServerException"})
	send(env.IdP.Token("bob"), http.StatusServiceUnavailable)
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "InvalidClientException"})
	send(env.IdP.Token("carol"), http.StatusInternalServerError)
	send(env.IdP.Token("dave"), http.StatusInternalServerError)
	env.AWS.ClearFaults()
	send(env.IdP.Token("erin", tiptest.WithLifetime(-time.Hour)), http.StatusUnauthorized)
	send("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", http.StatusUnauthorized)
	send(env.IdP.Token("frank", tiptest.WithLifetime(3*time.Hour)), http.StatusOK)
	env.Clock.Advance(pastIDCtxt) // renewal by refresh token
	send(tokens[len(tokens)-1], http.StatusOK)
	settle(t, m) // the background renewal ends

	var exposed strings.Builder
	exposed.WriteString(logs.String())
	for _, w := range answers {
		exposed.WriteString(w.Body.String())
		fmt.Fprint(&exposed, w.Header())
	}
	fmt.Fprintf(&exposed, "%+v", m.Stats())
	out := exposed.String()

	secrets := append(append(tokens, userSecrets...), rec.allSecrets()...)
	if len(rec.allSecrets()) < 8 || len(userSecrets) < 6 {
		t.Fatalf("too few secrets seen (%d from AWS, %d from handlers): the test would prove nothing",
			len(rec.allSecrets()), len(userSecrets))
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(out, s) {
			t.Errorf("a secret %.12s... appears in logs, answers or stats", s)
		}
		// Parts of a JWT (its payload or signature) must not leak either.
		for part := range strings.SplitSeq(s, ".") {
			if len(part) >= 16 && strings.Contains(out, part) {
				t.Errorf("part %.12s... of a secret appears in logs, answers or stats", part)
			}
		}
	}
	for _, sub := range []string{"mallory", "carol", "dave", "erin"} {
		if strings.Contains(out, sub) {
			t.Errorf("subject %q appears in logs, answers or stats", sub)
		}
	}

	levels := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Level, Kind string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		levels[rec.Level+" "+rec.Kind]++
	}
	if levels["ERROR internal"] != 1 || levels["WARN internal"] != 1 {
		t.Errorf("log levels %v: want the configuration error at ERROR once, then WARN", levels)
	}
	if levels["WARN forbidden"] != 1 || levels["WARN unavailable"] != 1 || levels["DEBUG invalid_token"] != 2 {
		t.Errorf("log levels %v", levels)
	}
}

func TestStatsCounters(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.MaxUsers = 4 })
	h := m.Handler(whoAmI(env))

	refusal(t, get(t, h, ""), http.StatusUnauthorized, "missing_token")
	two := request("")
	two.Header.Add("Authorization", "Bearer a")
	two.Header.Add("Authorization", "Bearer b")
	refusal(t, serve(h, two), http.StatusUnauthorized, "invalid_request")
	refusal(t, get(t, h, "abc.def.ghi"), http.StatusUnauthorized, "invalid_token")

	alice := env.IdP.Token("alice")
	keyOf(t, env, get(t, h, alice), "alice")
	keyOf(t, env, get(t, h, alice), "alice")
	s := m.Stats()
	if s.Exchanges != 1 || s.Verified != 1 || s.CacheHits != 1 || s.Hits != 1 {
		t.Fatalf("after two requests of alice: %+v", s)
	}

	// A burst of bob's requests shares one exchange.
	const burst = 6
	bob := env.IdP.Token("bob")
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			if w := get(t, h, bob); w.Code != http.StatusOK {
				t.Errorf("bob: %d %s", w.Code, w.Body.String())
			}
		})
	}
	wg.Wait()
	s = m.Stats()
	// burst-1 requests merged into the exchange or (came late and) hit the
	// cache, besides alice's earlier hit.
	if s.Exchanges != 2 || s.Joined == 0 || s.Joined+s.Hits != (burst-1)+1 {
		t.Fatalf("after bob's burst: %+v: want 2 exchanges, the burst merged or served from the cache", s)
	}
	if s.Users != 2 || s.Evictions != 0 {
		t.Fatalf("%d users and %d evictions, want 2 and 0", s.Users, s.Evictions)
	}

	env.AWS.RemoveUser("carol")
	refusal(t, get(t, h, env.IdP.Token("carol")), http.StatusForbidden, "access_denied")
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "InternalServerException"})
	refusal(t, get(t, h, env.IdP.Token("dave")), http.StatusServiceUnavailable, "temporarily_unavailable")
	env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "UnauthorizedClientException"})
	refusal(t, get(t, h, env.IdP.Token("erin")), http.StatusInternalServerError, "server_error")
	env.AWS.ClearFaults()

	// Inside bob's refresh window his credentials are renewed in the
	// background.
	keyOf(t, env, get(t, h, bob), "bob")
	env.Clock.Advance(inWindow)
	keyOf(t, env, get(t, h, bob), "bob")
	settle(t, m) // the background renewal ends

	s = m.Stats()
	wantErrors := map[string]uint64{
		"no_token": 1, "invalid_request": 1, "invalid_token": 1, "forbidden": 1, "unavailable": 1, "internal": 1,
	}
	if fmt.Sprint(s.Errors) != fmt.Sprint(wantErrors) {
		t.Errorf("errors %v, want %v", s.Errors, wantErrors)
	}
	const requests = 3 + 2 + burst + 3 + 2
	if s.Requests != requests {
		t.Errorf("%d requests, want %d", s.Requests, requests)
	}
	if s.CacheHits+s.Verified+s.Merged != requests-3 {
		t.Errorf("%d token cache hits, %d verified and %d merged, want %d together", s.CacheHits, s.Verified, s.Merged, requests-3)
	}
	// carol, dave and erin never obtained credentials: they evicted nobody
	// (MaxUsers is 4) and are not counted as users held.
	if s.Evictions != 0 || s.Dropped != 0 || s.Users != 2 {
		t.Errorf("%d evictions, %d dropped and %d users, want 0, 0 and 2", s.Evictions, s.Dropped, s.Users)
	}
	if s.BackgroundRefreshes != 1 || s.Renewals != 1 {
		t.Errorf("%d background refreshes and %d renewals, want 1 and 1", s.BackgroundRefreshes, s.Renewals)
	}
}

func TestFailedRenewalIsRemembered(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.RefusedTTL = time.Minute })
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	k1 := keyOf(t, env, get(t, h, tok), "alice")

	// STS now refuses alice. Inside her refresh window her credentials
	// serve on, while one renewal fails; the refusal is remembered for
	// RefusedTTL, so later requests start no new renewal.
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "AccessDenied"})
	env.Clock.Advance(inWindow)
	if k := keyOf(t, env, get(t, h, tok), "alice"); k != k1 {
		t.Fatalf("served %s, want the still-valid %s", k, k1)
	}
	eventually(t, "the background renewal", func() bool { return env.AWS.Calls("AssumeRole") == 2 })
	for range 10 {
		settle(t, m) // a renewal the previous request started has called AWS
		if k := keyOf(t, env, get(t, h, tok), "alice"); k != k1 {
			t.Fatalf("served %s, want the still-valid %s", k, k1)
		}
	}
	settle(t, m) // the background renewal ends
	if n := env.AWS.Calls("AssumeRole"); n != 2 {
		t.Fatalf("%d AssumeRole calls, want 2: a refused renewal was retried on every request", n)
	}
	if s := m.Stats(); s.BackgroundRefreshes != 1 {
		t.Fatalf("%d background refreshes, want 1", s.BackgroundRefreshes)
	}
	env.Clock.Advance(5 * time.Minute) // expired: the refusal is the answer
	refusal(t, get(t, h, tok), http.StatusForbidden, "access_denied")
}

func TestUserEvictedDuringExchange(t *testing.T) {
	env := tiptest.New(t)
	rec := newRecorder()
	m := newMiddleware(t, env, withRecorder(rec), func(o *middleware.Options) { o.Cache.MaxUsers = 1 })
	h := m.Handler(whoAmI(env))
	alice, bob := env.IdP.Token("alice"), env.IdP.Token("bob")

	started, release := rec.hold("AssumeRole")
	defer release()
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- get(t, h, alice) }()
	<-started // alice's exchange is under way
	bobDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { bobDone <- get(t, h, bob) }() // drops alice's pending slot
	eventually(t, "bob to drop alice", func() bool { return m.Stats().Dropped == 1 })
	second := make(chan *httptest.ResponseRecorder, 1)
	go func() { second <- get(t, h, alice) }() // drops bob's pending slot, joins alice's exchange
	eventually(t, "alice to drop bob", func() bool { return m.Stats().Dropped == 2 })
	eventually(t, "alice to join her exchange under way", func() bool { return m.Stats().Joined == 1 })
	release()

	keyOf(t, env, <-first, "alice")
	keyOf(t, env, <-second, "alice")
	keyOf(t, env, <-bobDone, "bob")
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 2 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 2", n)
	}
}

// TestIdentityNamesTheIdentityCenterUser: the request's identity carries
// the user ID and identity store ID that IAM Identity Center returned with
// the exchange; requests of one token and expiry share one Identity, and a
// renewal keeps the IDs.
func TestIdentityNamesTheIdentityCenterUser(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	var got []ctxcreds.Identity
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		got = append(got, id)
	}))
	tokens := map[string]string{"alice": env.IdP.Token("alice"), "bob": env.IdP.Token("bob")}
	for _, user := range []string{"alice", "bob", "alice"} {
		if w := get(t, h, tokens[user]); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", user, w.Code, w.Body.String())
		}
		id := got[len(got)-1]
		if id.Subject() != user || id.AWSUserID() != env.AWS.UserID(user) || id.IdentityStoreID() != env.AWS.IdentityStoreID() {
			t.Fatalf("%s's identity: subject %q, Identity Center user %q of %q; want %q of %q",
				user, id.Subject(), id.AWSUserID(), id.IdentityStoreID(), env.AWS.UserID(user), env.AWS.IdentityStoreID())
		}
	}
	if got[0] != got[2] {
		t.Fatal("two requests of one token and expiry got two Identities")
	}
	env.Clock.Advance(pastCreds) // renewed with the identity context held
	if w := get(t, h, tokens["alice"]); w.Code != http.StatusOK {
		t.Fatalf("after renewal: %d %s", w.Code, w.Body.String())
	}
	if id := got[len(got)-1]; id == got[0] || id.AWSUserID() != env.AWS.UserID("alice") || !id.Expires().After(got[0].Expires()) {
		t.Fatalf("after renewal: Identity Center user %q, expires %v (before: %v)", id.AWSUserID(), id.Expires(), got[0].Expires())
	}
}
