package middleware_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/goleak"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

var soakFor = flag.Duration("soak", 0, "how long TestSoak runs (default 25s)")

const (
	soakUsers     = 300
	soakClockSpan = 3 * time.Hour // of the tiptest clock, over the whole soak
	// soakContextTTL is the lifetime of identity contexts (tiptest's
	// default TokenTTL).
	soakContextTTL = time.Hour
)

// soakLedger is the HTTP client of every AWS call of the soak. It passes
// calls on and attributes them to users: CreateTokenWithIAM by the
// assertion's sub (or the user a refresh token was issued to), AssumeRole
// by its session name ("s-" + subject). For each user it keeps the expiry
// of every set of credentials AssumeRole issued, how many CreateTokenWithIAM
// calls were made (counted when sent) and how many of them failed, and how
// many AssumeRole answers refused the user or the identity context; for
// each jti, how many exchanges succeeded.
type soakLedger struct {
	next *http.Client
	env  *tiptest.Env

	mu          sync.Mutex
	attempts    map[string]int         // AssumeRole requests by user
	issued      map[string][]time.Time // expiry of each credentials issued, by user
	jtiExchange map[string]int         // successful jwt-bearer exchanges by jti
	refreshOf   map[string]string      // refresh token => user
	ctwi        map[string]int         // CreateTokenWithIAM calls by user, counted when sent
	ctwiFailed  map[string]int         // of which not answered 200 (an error, or no answer at all)
	arRefused   map[string]int         // AssumeRole answers neither 200, nor throttling, nor 5xx
	secrets     []string
	wrongOwner  []string
}

func (l *soakLedger) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	// A CreateTokenWithIAM call counts when it is sent: one that gets no
	// answer (its exchange timed out) may still have been processed.
	var user string
	if req.URL.Path == "/token" {
		l.mu.Lock()
		user = l.tokenUser(body)
		l.ctwi[user]++
		l.mu.Unlock()
	}
	noAnswer := func() {
		if req.URL.Path == "/token" {
			l.mu.Lock()
			l.ctwiFailed[user]++
			l.mu.Unlock()
		}
	}
	resp, err := l.next.Do(out)
	if err != nil {
		noAnswer()
		return resp, err
	}
	answer, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if rerr != nil {
		noAnswer()
		return resp, nil
	}
	l.note(req.URL.Path, body, resp.StatusCode, answer)
	return resp, nil
}

// tokenUser returns the user a CreateTokenWithIAM request body is for: the
// sub of its assertion, or the user its refresh token was issued to.
// l.mu must be held.
func (l *soakLedger) tokenUser(body []byte) string {
	var in struct{ GrantType, Assertion, RefreshToken string }
	_ = json.Unmarshal(body, &in)
	if in.GrantType != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return l.refreshOf[in.RefreshToken]
	}
	var c struct{ Sub string }
	_, p, _ := segments(in.Assertion)
	raw, _ := base64.RawURLEncoding.DecodeString(p)
	_ = json.Unmarshal(raw, &c)
	return c.Sub
}

var xmlCode = regexp.MustCompile(`<Code>([^<]*)</Code>`)

// note attributes one call and its answer.
func (l *soakLedger) note(path string, body []byte, status int, answer []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if path == "/token" {
		var in struct{ GrantType, Assertion, RefreshToken string }
		_ = json.Unmarshal(body, &in)
		var outTok struct {
			AccessToken, RefreshToken, IDToken string
			AWSAdditionalDetails               struct{ IdentityContext string }
		}
		_ = json.Unmarshal(answer, &outTok)
		l.secrets = append(l.secrets, outTok.AccessToken, outTok.RefreshToken, outTok.IDToken, outTok.AWSAdditionalDetails.IdentityContext)
		user := l.tokenUser(body)
		if status != http.StatusOK {
			l.ctwiFailed[user]++
		}
		if in.GrantType == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			var c struct{ Jti string }
			_, p, _ := segments(in.Assertion)
			raw, _ := base64.RawURLEncoding.DecodeString(p)
			_ = json.Unmarshal(raw, &c)
			if status == http.StatusOK {
				l.jtiExchange[c.Jti]++
			}
		}
		if outTok.RefreshToken != "" && user != "" {
			l.refreshOf[outTok.RefreshToken] = user
		}
		return
	}
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") != "AssumeRole" && form.Get("Action") != "AssumeRoleWithWebIdentity" {
		return
	}
	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      time.Time
	}
	var res struct {
		AR  credentials `xml:"AssumeRoleResult>Credentials"`
		ARW credentials `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	_ = xml.Unmarshal(answer, &res)
	c := res.AR
	if c.AccessKeyID == "" {
		c = res.ARW
	}
	l.secrets = append(l.secrets, c.SecretAccessKey, c.SessionToken)
	if form.Get("Action") != "AssumeRole" {
		return
	}
	user := strings.TrimPrefix(form.Get("RoleSessionName"), "s-")
	l.attempts[user]++
	if status != http.StatusOK && status < 500 {
		if m := xmlCode.FindSubmatch(answer); m == nil || string(m[1]) != "Throttling" {
			l.arRefused[user]++
		}
	}
	if status == http.StatusOK {
		l.issued[user] = append(l.issued[user], c.Expiration)
		if owner, _ := l.env.AWS.UserFor(c.AccessKeyID); owner != user {
			l.wrongOwner = append(l.wrongOwner, fmt.Sprintf("session of %s issued credentials of %q", user, owner))
		}
	}
}

// soakClient is one user of the soak, with the token it presents.
type soakClient struct {
	name string

	mu          sync.Mutex
	token       string
	exp         time.Time
	fresh       int // tokens obtained after a 401 asking for one
	served      int
	first, last time.Time // of the tiptest clock, at the user's first and last request
}

// TestSoak runs hundreds of users against the middleware with random
// concurrency and random AWS faults while the tiptest clock moves through
// several lifetimes of the credentials (15 minutes), identity contexts and
// tokens (1 hour). On every answer it checks: a 200 carries credentials of
// the token's user (by tiptest's AWS) that have not expired (by its clock);
// any other answer is one the package documents for a fault (401 asking for a
// fresh token, 403, 503). At the end: each user's credentials were issued
// at most once per refresh period (one lifetime less the refresh window)
// and AssumeRole attempts stay within the retries of the flights the cache
// ran; each user's exchanges (CreateTokenWithIAM calls, either grant) stay
// within one per credential lifetime the clock moved through while the user
// made requests, plus the retries the faults caused; no token was exchanged
// twice; no secret was shown; after Close no
// goroutine is left and the heap is back near where it started.
//
// It runs 25 s by default (-soak=5m for longer) and not with -short.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped with -short")
	}
	d := 25 * time.Second
	if *soakFor > 0 {
		d = *soakFor
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	logStart := len(suiteLogs.String())
	suiteSecrets.Lock()
	secretsStart, secretsCount := suiteSecrets.bytes, len(suiteSecrets.all)
	suiteSecrets.Unlock()
	ignore := goleak.IgnoreCurrent()

	soak(t, d)

	if t.Failed() {
		return
	}
	goleak.VerifyNone(t, ignore)
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The logs and the secrets seen are kept on purpose, for TestMain's
	// check that no secret appears in any log of the package's tests.
	logs := uint64(len(suiteLogs.String()) - logStart)
	suiteSecrets.Lock()
	secrets := uint64(suiteSecrets.bytes-secretsStart) + uint64(len(suiteSecrets.all)-secretsCount)*16 // with their string headers
	suiteSecrets.Unlock()
	const slack = 16 << 20 // about 4x the growth seen: what the runtime and the test keep
	if after.HeapAlloc > before.HeapAlloc+logs+secrets+slack {
		t.Errorf("heap %d MiB after the soak, %d MiB before (%d MiB of logs and %d MiB of secrets kept)",
			after.HeapAlloc>>20, before.HeapAlloc>>20, logs>>20, secrets>>20)
	}
	t.Logf("heap: %d KiB before, %d KiB after, %d KiB of logs, %d KiB of secrets", before.HeapAlloc>>10, after.HeapAlloc>>10, logs>>10, secrets>>10)
}

// soak is the body of TestSoak: everything it builds is closed and
// unreachable when it returns.
func soak(t *testing.T, d time.Duration) {
	env, err := tiptest.NewEnv(tiptest.WithRefreshGrant())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	// Every HTTP client of the soak is one of these two transports, whose
	// idle connections are closed at the end.
	awsTransport, keysTransport := &http.Transport{}, &http.Transport{}
	defer awsTransport.CloseIdleConnections()
	defer keysTransport.CloseIdleConnections()
	transport := &http.Client{Transport: awsTransport}
	ledger := &soakLedger{next: transport, env: env, attempts: map[string]int{}, issued: map[string][]time.Time{},
		jtiExchange: map[string]int{}, refreshOf: map[string]string{},
		ctwi: map[string]int{}, ctwiFailed: map[string]int{}, arRefused: map[string]int{}}
	watch := &exposureWatch{logStart: len(suiteLogs.String())}

	base := env.Config()
	base.Credentials = nil
	base.HTTPClient = transport
	xcfg := base.Copy()
	xcfg.HTTPClient = ledger
	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer: env.IdP.Issuer(), Audience: []string{env.IdP.Audience()},
		Verify: verify.Options{HTTPClient: &http.Client{Transport: keysTransport, Timeout: 10 * time.Second}},
		Exchange: exchange.Options{
			ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn, ApplicationRoleArn: env.ApplicationRoleArn,
			Config:          xcfg,
			SessionNameFunc: func(_, subject string) string { return "s-" + subject },
		},
		AWSConfig:    base,
		Now:          env.Clock.Now,
		Logger:       suiteLog,
		ErrorHandler: watch.errorHandler(),
		Cache:        exchange.CacheOptions{Timeout: 2 * time.Second, MaxUsers: 2 * soakUsers},
	})
	if err != nil {
		t.Fatal(err)
	}
	watch.stats = m.Stats
	defer func() { _ = m.Close() }()

	var (
		okCount, bad  atomic.Int64
		expiredMidway atomic.Int64 // credentials that expired between the middleware and the handler
		statuses      sync.Map     // "status error" => *atomic.Int64
		credsMu       sync.Mutex
		creds         = map[string]bool{}        // access keys seen, their secrets handed to watch once
		handedOut     = map[string][]time.Time{} // expiry of each credentials handed to a handler, by user
	)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, _ := ctxcreds.Config(r.Context())
		id, _ := ctxcreds.IdentityFrom(r.Context())
		c, err := cfg.Credentials.Retrieve(r.Context())
		if answerExpiredInFlight(w, env, id, err) {
			expiredMidway.Add(1)
			return
		}
		if err != nil {
			http.Error(w, "no credentials", http.StatusInternalServerError)
			return
		}
		if owner, _ := env.AWS.UserFor(c.AccessKeyID); owner != id.Subject() {
			t.Errorf("a request of %s was handed credentials of %q", id.Subject(), owner)
		}
		if now := env.Clock.Now(); !now.Before(c.Expires) {
			t.Errorf("credentials of %s served %v past their expiry", id.Subject(), now.Sub(c.Expires))
		}
		credsMu.Lock()
		if !creds[c.AccessKeyID] {
			creds[c.AccessKeyID] = true
			watch.secret(c.SecretAccessKey, c.SessionToken)
			handedOut[id.Subject()] = append(handedOut[id.Subject()], c.Expires)
		}
		credsMu.Unlock()
		if rand.IntN(50) == 0 { // now and then, the credentials must work
			if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
				http.Error(w, "GetCallerIdentity failed", http.StatusBadGateway)
				return
			}
		}
		_, _ = io.WriteString(w, id.Subject())
	}))

	clients := make([]*soakClient, soakUsers)
	for i := range clients {
		clients[i] = &soakClient{name: fmt.Sprintf("user%03d", i)}
	}
	// tokenOf returns the client's token, minting a new one when it has
	// none or it expires within 10 minutes.
	tokenOf := func(c *soakClient) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.token == "" || env.Clock.Now().Add(10*time.Minute).After(c.exp) {
			c.token, c.exp = env.IdP.Token(c.name), env.Clock.Now().Add(time.Hour)
			watch.secret(c.token)
		}
		return c.token
	}
	call := func(c *soakClient) {
		tok := tokenOf(c)
		c.mu.Lock()
		if c.last = env.Clock.Now(); c.first.IsZero() {
			c.first = c.last
		}
		c.mu.Unlock()
		w := serve(h, request(tok))
		var b errorBody
		_ = json.Unmarshal(w.Body.Bytes(), &b)
		key := fmt.Sprint(w.Code, " ", b.Error)
		n, _ := statuses.LoadOrStore(key, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch {
		case w.Code == http.StatusOK && w.Body.String() == c.name:
			okCount.Add(1)
			c.mu.Lock()
			c.served++
			c.mu.Unlock()
		case w.Code == http.StatusUnauthorized && b.Error == "invalid_token" && strings.Contains(b.Description, "fresh token"):
			c.mu.Lock()
			if c.token == tok {
				c.token = ""
				c.fresh++
			}
			c.mu.Unlock()
		case w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "",
			w.Code == http.StatusForbidden && b.Error == "access_denied":
		default:
			if bad.Add(1) <= 5 {
				t.Errorf("%s: unexpected answer %d %s", c.name, w.Code, w.Body.String())
			}
		}
		if w.Code != http.StatusOK {
			watch.answer(w)
		}
	}

	faults := map[string][]tiptest.Fault{
		"CreateTokenWithIAM": {{}, {Code: "SlowDownException", Fraction: 0.2}, {Code: "SlowDownException", Fraction: 0.8},
			{Code: "InternalServerException", Fraction: 0.6}, {Latency: 30 * time.Millisecond, Fraction: 0.2},
			{Code: "AccessDeniedException", Fraction: 0.02}},
		"AssumeRole": {{}, {Code: "Throttling", Fraction: 0.2}, {Code: "Throttling", Fraction: 0.8},
			{Code: "InternalError", Fraction: 0.6}, {Latency: 30 * time.Millisecond, Fraction: 0.2},
			{Code: "AccessDenied", Fraction: 0.02}},
		"AssumeRoleWithWebIdentity": {{}, {Code: "Throttling", Fraction: 0.5}, {Code: "InternalError", Fraction: 0.5}},
	}
	start, clockStart := time.Now(), env.Clock.Now()
	rounds := 0
	for time.Since(start) < d {
		rounds++
		// The clock follows the soak's progress through soakClockSpan,
		// with jumps of up to 10 s more.
		target := clockStart.Add(time.Duration(float64(soakClockSpan) * float64(time.Since(start)) / float64(d)))
		if gap := target.Sub(env.Clock.Now()); gap > 0 {
			env.Clock.Advance(gap)
		}
		env.Clock.Advance(time.Duration(rand.Int64N(int64(10 * time.Second))))
		env.AWS.ClearFaults()
		if rounds%5 != 0 { // one round in five runs without faults
			for op, fs := range faults {
				if f := fs[rand.IntN(len(fs))]; f != (tiptest.Fault{}) {
					env.AWS.SetFault(op, f)
				}
			}
		}
		workers, requests := 1+rand.IntN(48), 20+rand.IntN(200)
		work := make(chan *soakClient)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for c := range work {
					call(c)
				}
			})
		}
		for range requests {
			work <- clients[rand.IntN(len(clients))]
		}
		close(work)
		wg.Wait()
	}
	env.AWS.ClearFaults()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	span := env.Clock.Now().Sub(clockStart)

	// Per user: credentials handed out at most once per refresh period
	// (one lifetime less the refresh window); credentials issued by AWS at
	// most once per flight of the cache (a flight that fails after AWS
	// answered, at its deadline, wastes one); AssumeRole attempts within
	// the retries of the flights.
	flights, failed := map[string]int{}, map[string]int{}
	for line := range strings.SplitSeq(suiteLogs.String()[watch.logStart:], "\n") {
		var rec struct{ Msg, Op, User string }
		if json.Unmarshal([]byte(line), &rec) == nil && (rec.Op == "exchange" || rec.Op == "renewal") {
			flights[rec.User]++
			if rec.Msg != "tipkit: credentials obtained" {
				failed[rec.User]++
			}
		}
	}
	period := 15*time.Minute - exchange.DefaultBackgroundRefreshWindow
	sorted := func(ts []time.Time) []time.Time {
		ts = slices.Clone(ts)
		slices.SortFunc(ts, time.Time.Compare)
		return ts
	}
	wasted := 0
	var ctwiTotal, ctwiBound, ctwiRetries, mostBeyondRetries, lifetimesOfMost, beyondContexts int
	ledger.mu.Lock()
	credsMu.Lock()
	for _, c := range clients {
		exp := sorted(handedOut[c.name])
		for i := 1; i < len(exp); i++ {
			if gap := exp[i].Sub(exp[i-1]); gap < period-5*time.Second {
				t.Errorf("%s: credentials handed out %v apart (expiring %v then %v), want at least %v",
					c.name, gap, exp[i-1], exp[i], period)
			}
		}
		if n := len(exp); n > int(span/period)+2+c.fresh {
			t.Errorf("%s: %d credentials handed out over %v", c.name, n, span)
		}
		f := flights[unkeyedUserHash(env.IdP.Issuer(), c.name)]
		if n := len(ledger.issued[c.name]); n > f {
			t.Errorf("%s: %d credentials issued by AWS for %d flights", c.name, n, f)
		}
		wasted += len(ledger.issued[c.name]) - len(exp)
		// A flight calls AssumeRole for at most three steps, each with up
		// to 4 attempts of up to 3 SDK attempts.
		if a := ledger.attempts[c.name]; a > 36*f {
			t.Errorf("%s: %d AssumeRole attempts for %d flights", c.name, a, f)
		}
		// Exchanges (CreateTokenWithIAM calls, either grant) stay within
		// one per credential lifetime the clock moved through while the
		// user made requests (idle users are not renewed), plus the
		// retries faults caused: each failed or unanswered call may be
		// tried again (by the SDK, the exchange's backoff, the next flight,
		// or with the fresh token the 401 asked for), and each refusal of
		// AssumeRole drops the session, whose replacement takes one more.
		lifetimes := 0
		if !c.first.IsZero() {
			lifetimes = int(c.last.Sub(c.first)/exchange.DefaultDuration) + 1
		}
		retries := ledger.ctwiFailed[c.name] + ledger.arRefused[c.name]
		if n := ledger.ctwi[c.name]; n > lifetimes+retries {
			t.Errorf("%s: %d CreateTokenWithIAM calls over %d credential lifetimes (%v of clock) with %d retries caused by faults (%d failed calls, %d AssumeRole refusals)",
				c.name, n, lifetimes, c.last.Sub(c.first).Round(time.Minute), retries, ledger.ctwiFailed[c.name], ledger.arRefused[c.name])
		}
		// Tighter: beyond those retries, Identity Center is called again
		// only when the identity context (an hour, as the refresh token
		// renews it) is about to expire; the credentials (15 minutes) are
		// renewed with it, through AssumeRole alone.
		contexts := 0
		if !c.first.IsZero() {
			contexts = int((c.last.Sub(c.first)+5*time.Second)/(soakContextTTL-time.Minute)) + 1
		}
		if n := ledger.ctwi[c.name]; n > contexts+retries {
			beyondContexts++
			t.Errorf("%s: %d CreateTokenWithIAM calls over %d identity contexts with %d retries caused by faults",
				c.name, n, contexts, retries)
		}
		ctwiTotal += ledger.ctwi[c.name]
		ctwiBound += lifetimes + retries
		ctwiRetries += retries
		if n := ledger.ctwi[c.name] - retries; n > mostBeyondRetries {
			mostBeyondRetries, lifetimesOfMost = n, lifetimes
		}
	}
	if n := ledger.ctwi[""]; n > 0 {
		t.Errorf("%d CreateTokenWithIAM calls not attributed to a user", n)
	}
	credsMu.Unlock()
	for jti, n := range ledger.jtiExchange {
		if n > 1 {
			t.Errorf("token %s exchanged %d times", jti, n)
		}
	}
	for _, w := range ledger.wrongOwner {
		t.Error(w)
	}
	issuedTotal, attemptsTotal := 0, 0
	for _, c := range clients {
		issuedTotal += len(ledger.issued[c.name])
		attemptsTotal += ledger.attempts[c.name]
	}
	watch.secret(ledger.secrets...)
	ledger.mu.Unlock()
	watch.check(t)

	var answers []string
	statuses.Range(func(k, v any) bool {
		answers = append(answers, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	s := m.Stats()
	t.Logf("%d CreateTokenWithIAM calls, bound %d (credential lifetimes + %d retries caused by faults); "+
		"most calls beyond retries for one user: %d, over %d lifetimes; %d users beyond one call per identity context plus retries",
		ctwiTotal, ctwiBound, ctwiRetries, mostBeyondRetries, lifetimesOfMost, beyondContexts)
	t.Logf("%d credentials issued but never handed out (renewed ahead and not used, or failed after AWS answered)", wasted)
	t.Logf("%d requests whose credentials expired between the middleware and the handler, and could not be renewed", expiredMidway.Load())
	t.Logf("%d rounds, %v of clock, %d users; answers %v; %d credentials issued in %d AssumeRole attempts; "+
		"%d AssumeRoleWithWebIdentity; stats: exchanges %d, renewals %d, background %d, merged %d",
		rounds, span.Round(time.Minute), soakUsers, answers, issuedTotal, attemptsTotal,
		env.AWS.Calls("AssumeRoleWithWebIdentity"), s.Exchanges, s.Renewals, s.BackgroundRefreshes, s.Joined)
	if okCount.Load() == 0 || span < 2*time.Hour {
		t.Errorf("%d requests served over %v of clock: the soak proved nothing", okCount.Load(), span)
	}
}

// unkeyedUserHash is the name logs give a user when Exchange.HashKey is
// not set (exchange.Exchanger.UserHash without a key).
func unkeyedUserHash(issuer, subject string) string {
	n := len(issuer)
	sum := sha256.Sum256([]byte(string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}) + issuer + subject))
	return hex.EncodeToString(sum[:12])
}
