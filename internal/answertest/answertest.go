// Package answertest is the table of HTTP answers that the middleware gives,
// for checking that every way of mounting it answers alike.
//
// Each [Case] is a request, the state of a local identity provider and AWS
// (package tiptest) that the request meets, and the answer DESIGN.md
// section 3 asks for. [Run] plays every case through the net/http
// [middleware.Middleware.Handler], which is the reference, and through each
// given [Stack] (a web framework's adapter), then checks that each answer is
// the expected one and that the frameworks' answers are byte for byte those
// of net/http: status, every header, body, and whether the next handler ran.
//
// [RunGRPC] plays the same table over gRPC, through a [GRPCStack] (a gRPC
// adapter's interceptors) on a server over an in-memory connection, as
// unary calls and as streams whose "authorization" metadata carries the
// request's Authorization header values. Each answer must be the gRPC
// status DESIGN.md section 3 gives for the net/http answer to the same
// case ([CheckGRPC]): its code, the same description as message, the same
// delay in a google.rpc.RetryInfo detail on 503. Cases that need a part of
// HTTP that gRPC calls lack are marked HTTPOnly and skipped.
//
// The package is imported only by tests.
package answertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// Realm is the realm of the challenges in the answers of the table.
const Realm = "tipkit-test"

// Stack mounts m in front of next the way one web framework does, and
// returns the whole as an http.Handler. Requests reach next with the
// request as the framework passes it on.
type Stack func(m *middleware.Middleware, next http.Handler) http.Handler

// NetHTTP is the reference Stack: m.Handler(next).
func NetHTTP(m *middleware.Middleware, next http.Handler) http.Handler { return m.Handler(next) }

// Answer is what a stack answered to one request.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
	// Reached tells whether the next handler ran.
	Reached bool
}

// Want is the expected answer of a Case.
type Want struct {
	// Status is the HTTP status.
	Status int
	// Challenge is the expected WWW-Authenticate: the header equals it, or
	// starts with it followed by ", ". Empty means no such header.
	Challenge string
	// Error is the "error" member of the JSON body. Empty means the body is
	// not checked as JSON.
	Error string
	// Description, when not empty, must appear in the body's
	// error_description.
	Description string
	// Body, when not empty, is the whole body.
	Body string
	// RetryAfter means a Retry-After header of at least one second;
	// otherwise there must be none.
	RetryAfter bool
	// Reached means the next handler runs; otherwise it must not.
	Reached bool
	// User is the tiptest user whose credentials the next handler receives
	// (checked with tiptest's AWS.UserFor); empty means it receives none.
	User string
}

// Case is one line of the table.
type Case struct {
	// Name names the case in test output.
	Name string
	// Options, when not nil, changes the middleware's options
	// (middlewaretest.Options with [WithRealm]) before the middleware is
	// built.
	Options func(env *tiptest.Env, o *middleware.Options)
	// Prepare readies env and returns the request whose answer is checked,
	// with the secrets (tokens) that no answer may contain. It may send
	// earlier requests through serve, for example to spend a token.
	Prepare func(env *tiptest.Env, serve func(*http.Request) Answer) (r *http.Request, secrets []string, err error)
	// Want is the expected answer.
	Want Want
	// HTTPOnly, when not empty, says why the case has no counterpart over
	// gRPC (see [RunGRPC]): it needs a part of HTTP that gRPC calls do not
	// have, such as a query string, or an option of the HTTP transport.
	HTTPOnly string
}

// WithRealm sets [Realm] as the realm of o. The table's middleware is
// middlewaretest.New(t, env, WithRealm): it trusts env's identity provider
// and exchanges tokens with env's AWS through its application role.
func WithRealm(o *middleware.Options) { o.Realm = Realm }

// newMiddleware returns the table's middleware over env, with the options
// of c.
func newMiddleware(t testing.TB, env *tiptest.Env, c Case) *middleware.Middleware {
	t.Helper()
	return middlewaretest.New(t, env, WithRealm, func(o *middleware.Options) {
		if c.Options != nil {
			c.Options(env, o)
		}
	})
}

// challenge returns the expected WWW-Authenticate prefix for an error code.
func challenge(code string) string {
	return `Bearer realm="` + Realm + `", error="` + code + `"`
}

// get returns a GET request of path, with "Authorization: Bearer token"
// when token is not empty.
func get(path, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// bearer returns a Prepare that sends a GET of "/" with the token that
// tok mints.
func bearer(tok func(env *tiptest.Env) string) func(*tiptest.Env, func(*http.Request) Answer) (*http.Request, []string, error) {
	return func(env *tiptest.Env, _ func(*http.Request) Answer) (*http.Request, []string, error) {
		t := tok(env)
		return get("/", t), []string{t}, nil
	}
}

// request returns a Prepare that sends r, built by mk, with no secret.
func request(mk func() *http.Request) func(*tiptest.Env, func(*http.Request) Answer) (*http.Request, []string, error) {
	return func(*tiptest.Env, func(*http.Request) Answer) (*http.Request, []string, error) {
		return mk(), nil, nil
	}
}

// tamper returns tok with one byte of its signature changed.
func tamper(tok string) string {
	b := []byte(tok)
	if len(b) == 0 {
		return "A"
	}
	i := max(0, len(b)-8) // well inside the signature, away from padding bits
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// unsigned returns a token of alg "none" carrying the claims of tok.
func unsigned(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tok
	}
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}

// Cases returns the table: one case for every answer of DESIGN.md section
// 3, and for the ways a request reaches the handler.
func Cases() []Case {
	const spentHint = "fresh token"
	return []Case{
		{
			Name:    "no token",
			Prepare: request(func() *http.Request { return get("/", "") }),
			Want:    Want{Status: 401, Challenge: `Bearer realm="` + Realm + `"`, Error: "missing_token"},
		},
		{
			Name: "basic credentials count as no token",
			Prepare: request(func() *http.Request {
				r := get("/", "")
				r.SetBasicAuth("alice", "secret-password")
				return r
			}),
			Want: Want{Status: 401, Challenge: `Bearer realm="` + Realm + `"`, Error: "missing_token"},
		},
		{
			Name: "bearer scheme without a token",
			Prepare: request(func() *http.Request {
				r := get("/", "")
				r.Header.Set("Authorization", "Bearer ")
				return r
			}),
			Want: Want{Status: 401, Challenge: challenge("invalid_request"), Error: "invalid_request"},
		},
		{
			Name: "malformed authorization header",
			Prepare: func(env *tiptest.Env, _ func(*http.Request) Answer) (*http.Request, []string, error) {
				tok := env.IdP.Token("alice")
				r := get("/", "")
				r.Header.Set("Authorization", "Bearer "+tok+" "+tok)
				return r, []string{tok}, nil
			},
			Want: Want{Status: 401, Challenge: challenge("invalid_request"), Error: "invalid_request"},
		},
		{
			Name: "bytes outside printable ascii",
			Prepare: request(func() *http.Request {
				r := get("/", "")
				r.Header.Set("Authorization", "Bearer abc\x01def\xff")
				return r
			}),
			Want: Want{Status: 401, Challenge: challenge("invalid_request"), Error: "invalid_request"},
		},
		{
			Name: "two authorization headers",
			Prepare: func(env *tiptest.Env, _ func(*http.Request) Answer) (*http.Request, []string, error) {
				a, b := env.IdP.Token("alice"), env.IdP.Token("bob")
				r := get("/", "")
				r.Header.Add("Authorization", "Bearer "+a)
				r.Header.Add("Authorization", "Bearer "+b)
				return r, []string{a, b}, nil
			},
			Want: Want{Status: 401, Challenge: challenge("invalid_request"), Error: "invalid_request"},
		},
		{
			Name: "token in the query string",
			Prepare: func(env *tiptest.Env, _ func(*http.Request) Answer) (*http.Request, []string, error) {
				tok := env.IdP.Token("alice")
				return get("/?access_token="+tok, ""), []string{tok}, nil
			},
			Want:     Want{Status: 401, Challenge: challenge("invalid_request"), Error: "invalid_request"},
			HTTPOnly: "gRPC calls have no query string",
		},
		{
			Name:    "not a jwt",
			Prepare: bearer(func(*tiptest.Env) string { return "not-a-jwt-at-all" }),
			Want:    Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name:    "tampered signature",
			Prepare: bearer(func(env *tiptest.Env) string { return tamper(env.IdP.Token("alice")) }),
			Want:    Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name:    "alg none",
			Prepare: bearer(func(env *tiptest.Env) string { return unsigned(env.IdP.Token("alice")) }),
			Want:    Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name: "expired token",
			Prepare: bearer(func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithLifetime(-time.Hour))
			}),
			Want: Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name: "wrong audience",
			Prepare: bearer(func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"aud": "someone-else"}))
			}),
			Want: Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name: "wrong issuer",
			Prepare: bearer(func(env *tiptest.Env) string {
				return env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": "https://idp.invalid"}))
			}),
			Want: Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name:    "token too large",
			Prepare: bearer(func(*tiptest.Env) string { return strings.Repeat("a", 17<<10) }),
			Want:    Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name: "user unknown to identity center",
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.RemoveUser("mallory")
				return env.IdP.Token("mallory")
			}),
			Want: Want{Status: 403, Challenge: challenge("access_denied"), Error: "access_denied"},
		},
		{
			Name: "sts refuses the user",
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "AccessDenied"})
				return env.IdP.Token("alice")
			}),
			Want: Want{Status: 403, Challenge: challenge("access_denied"), Error: "access_denied"},
		},
		{
			Name:    "throttled by sts",
			Options: func(_ *tiptest.Env, o *middleware.Options) { o.Exchange.MaxAttempts = 1 },
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "Throttling"})
				return env.IdP.Token("alice")
			}),
			Want: Want{Status: 503, Error: "temporarily_unavailable", RetryAfter: true},
		},
		{
			Name:    "aws 5xx",
			Options: func(_ *tiptest.Env, o *middleware.Options) { o.Exchange.MaxAttempts = 1 },
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Code: "InternalServerException"})
				return env.IdP.Token("alice")
			}),
			Want: Want{Status: 503, Error: "temporarily_unavailable", RetryAfter: true},
		},
		{
			Name:    "aws too slow",
			Options: func(_ *tiptest.Env, o *middleware.Options) { o.Cache.Timeout = 150 * time.Millisecond },
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.SetFault("CreateTokenWithIAM", tiptest.Fault{Latency: 10 * time.Second})
				return env.IdP.Token("alice")
			}),
			Want: Want{Status: 503, Error: "temporarily_unavailable", RetryAfter: true},
		},
		{
			Name: "identity provider unreachable",
			Prepare: bearer(func(env *tiptest.Env) string {
				tok := env.IdP.Token("alice")
				env.IdP.SetDown(true)
				return tok
			}),
			Want: Want{Status: 503, Error: "temporarily_unavailable", RetryAfter: true},
		},
		{
			Name: "configuration error found at run time",
			Options: func(_ *tiptest.Env, o *middleware.Options) {
				o.Exchange.ApplicationArn = "arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-ffffffffffffffff"
			},
			Prepare: bearer(func(env *tiptest.Env) string { return env.IdP.Token("alice") }),
			Want:    Want{Status: 500, Error: "server_error"},
		},
		{
			Name: "spent token after the credentials expired",
			Prepare: func(env *tiptest.Env, serve func(*http.Request) Answer) (*http.Request, []string, error) {
				tok := env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
				if a := serve(get("/", tok)); a.Status != http.StatusOK {
					return nil, nil, fmt.Errorf("first request: status %d, body %s", a.Status, a.Body)
				}
				env.Clock.Advance(2 * time.Hour) // credentials and identity context expired
				return get("/", tok), []string{tok}, nil
			},
			Want: Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token", Description: spentHint},
		},
		{
			Name:    "success",
			Prepare: bearer(func(env *tiptest.Env) string { return env.IdP.Token("alice") }),
			Want:    Want{Status: 200, Reached: true, User: "alice"},
		},
		{
			Name: "success, lower-case scheme",
			Prepare: func(env *tiptest.Env, _ func(*http.Request) Answer) (*http.Request, []string, error) {
				tok := env.IdP.Token("bob")
				r := get("/", "")
				r.Header.Set("Authorization", "bearer "+tok)
				return r, []string{tok}, nil
			},
			Want: Want{Status: 200, Reached: true, User: "bob"},
		},
		{
			Name: "cors preflight passes untouched",
			Prepare: request(func() *http.Request {
				r := httptest.NewRequest(http.MethodOptions, "/", nil)
				r.Header.Set("Origin", "https://app.example.com")
				r.Header.Set("Access-Control-Request-Method", http.MethodGet)
				return r
			}),
			Want:     Want{Status: 200, Reached: true},
			HTTPOnly: "CORS preflights are HTTP requests",
		},
		{
			Name: "skipped by the middleware's skipper",
			Options: func(_ *tiptest.Env, o *middleware.Options) {
				o.Skipper = func(r *http.Request) bool { return r.URL.Path == "/health" }
			},
			Prepare:  request(func() *http.Request { return get("/health", "") }),
			Want:     Want{Status: 200, Reached: true},
			HTTPOnly: "Options.Skipper picks HTTP requests (grpctip has WithSkipper)",
		},
		{
			Name:    "optional: no token goes on anonymously",
			Options: func(_ *tiptest.Env, o *middleware.Options) { o.Optional = true },
			Prepare: request(func() *http.Request { return get("/", "") }),
			Want:    Want{Status: 200, Reached: true},
		},
		{
			Name:    "optional: a bad token is still refused",
			Options: func(_ *tiptest.Env, o *middleware.Options) { o.Optional = true },
			Prepare: bearer(func(env *tiptest.Env) string { return tamper(env.IdP.Token("alice")) }),
			Want:    Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token"},
		},
		{
			Name: "custom error handler replaces the answer",
			Options: func(_ *tiptest.Env, o *middleware.Options) {
				o.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err *middleware.Error) {
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
					w.Header().Set("X-Refused", err.Kind.String())
					w.WriteHeader(http.StatusTeapot)
					_, _ = io.WriteString(w, "refused: "+err.Code+"\n")
				}
			},
			Prepare: bearer(func(env *tiptest.Env) string {
				env.AWS.RemoveUser("mallory")
				return env.IdP.Token("mallory")
			}),
			Want:     Want{Status: http.StatusTeapot, Body: "refused: access_denied\n"},
			HTTPOnly: "Options.ErrorHandler writes HTTP answers",
		},
		{
			Name: "custom error handler writes a status only",
			Options: func(_ *tiptest.Env, o *middleware.Options) {
				o.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err *middleware.Error) {
					w.WriteHeader(err.Kind.Status())
				}
			},
			Prepare:  request(func() *http.Request { return get("/", "") }),
			Want:     Want{Status: http.StatusUnauthorized},
			HTTPOnly: "Options.ErrorHandler writes HTTP answers",
		},
	}
}

// Next returns the handler placed behind the middleware in the table: it
// notes that it ran in *reached and answers 200 with a JSON body naming the
// tiptest user whose credentials it received ("" for none), after checking
// with STS GetCallerIdentity that the credentials work. It answers 500 when
// its configuration is unusable.
func Next(env *tiptest.Env, reached *bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*reached = true
		var body struct {
			User    string `json:"user"`
			Subject string `json:"subject"`
		}
		if id, ok := ctxcreds.IdentityFrom(r.Context()); ok {
			body.Subject = id.Subject()
		}
		if cfg, ok := ctxcreds.Config(r.Context()); ok {
			creds, err := cfg.Credentials.Retrieve(r.Context())
			if err != nil {
				http.Error(w, "credentials: "+err.Error(), http.StatusInternalServerError)
				return
			}
			if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
				http.Error(w, "GetCallerIdentity: "+err.Error(), http.StatusInternalServerError)
				return
			}
			body.User, _ = env.AWS.UserFor(creds.AccessKeyID)
		}
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	})
}

// Play plays c through stack against a fresh tiptest environment and
// returns the answer to c's request, with the secrets it must not hold.
func Play(t testing.TB, c Case, stack Stack) (Answer, []string) {
	t.Helper()
	env := tiptest.New(t)
	m := newMiddleware(t, env, c)
	var reached bool
	h := stack(m, Next(env, &reached))
	serve := func(r *http.Request) Answer {
		reached = false
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return Answer{Status: w.Code, Header: w.Header().Clone(), Body: bytes.Clone(w.Body.Bytes()), Reached: reached}
	}
	r, secrets, err := c.Prepare(env, serve)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return serve(r), secrets
}

// Check reports, as one error, how a differs from w and whether it holds
// one of secrets (or the payload or signature of one of them).
func Check(a Answer, w Want, secrets []string) error {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if a.Status != w.Status {
		fail("status %d, want %d", a.Status, w.Status)
	}
	ch, hasCh := a.Header["Www-Authenticate"]
	switch {
	case w.Challenge == "" && hasCh:
		fail("WWW-Authenticate %q, want none", ch)
	case w.Challenge != "" && (len(ch) != 1 || ch[0] != w.Challenge && !strings.HasPrefix(ch[0], w.Challenge+", ")):
		fail("WWW-Authenticate %q, want %q", ch, w.Challenge)
	}
	ra, hasRA := a.Header["Retry-After"]
	switch {
	case !w.RetryAfter && hasRA:
		fail("Retry-After %q, want none", ra)
	case w.RetryAfter:
		if n, err := strconv.Atoi(a.Header.Get("Retry-After")); len(ra) != 1 || err != nil || n < 1 {
			fail("Retry-After %q, want one whole number of seconds, at least 1", ra)
		}
	}
	if w.Error != "" {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if ct := a.Header.Get("Content-Type"); ct != "application/json" {
			fail("Content-Type %q, want application/json", ct)
		}
		if err := json.Unmarshal(a.Body, &body); err != nil {
			fail("body %q is not JSON: %v", a.Body, err)
		}
		if body.Error != w.Error {
			fail("error %q, want %q", body.Error, w.Error)
		}
		if !strings.Contains(body.Description, w.Description) {
			fail("error_description %q, want it to mention %q", body.Description, w.Description)
		}
	}
	if w.Body != "" && string(a.Body) != w.Body {
		fail("body %q, want %q", a.Body, w.Body)
	}
	if a.Reached != w.Reached {
		fail("next handler ran: %v, want %v", a.Reached, w.Reached)
	}
	if a.Reached && a.Status == http.StatusOK {
		var body struct {
			User string `json:"user"`
		}
		if err := json.Unmarshal(a.Body, &body); err != nil || body.User != w.User {
			fail("next handler received the credentials of %q (body %q), want %q", body.User, a.Body, w.User)
		}
	}
	for _, s := range secrets {
		if leak := Leak(a, s); leak != "" {
			fail("the answer holds the token: %s", leak)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "; "))
}

// Leak returns where a holds token, its payload or its signature (as
// written in the request), or "" when it holds none of them.
func Leak(a Answer, token string) string {
	pieces := []string{token}
	if parts := strings.Split(token, "."); len(parts) == 3 {
		pieces = append(pieces, parts[1], parts[2])
	}
	for _, p := range pieces {
		if len(p) < 8 {
			continue
		}
		if bytes.Contains(a.Body, []byte(p)) {
			return "in the body"
		}
		for k, vs := range a.Header {
			for _, v := range vs {
				if strings.Contains(v, p) {
					return "in header " + k
				}
			}
		}
	}
	return ""
}

// Same reports how b differs from the reference answer ref, or nil when
// they are byte-identical: status, header names and values, body, and
// whether the next handler ran.
func Same(ref, b Answer) error {
	var problems []string
	if ref.Status != b.Status {
		problems = append(problems, fmt.Sprintf("status %d, net/http %d", b.Status, ref.Status))
	}
	if !reflect.DeepEqual(ref.Header, b.Header) {
		problems = append(problems, fmt.Sprintf("header %v, net/http %v", b.Header, ref.Header))
	}
	if !bytes.Equal(ref.Body, b.Body) {
		problems = append(problems, fmt.Sprintf("body %q, net/http %q", b.Body, ref.Body))
	}
	if ref.Reached != b.Reached {
		problems = append(problems, fmt.Sprintf("next handler ran: %v, net/http %v", b.Reached, ref.Reached))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "; "))
}

// Run plays every case of [Cases] through net/http ([NetHTTP]) and through
// each of stacks, in parallel subtests. Each answer must be the case's
// expected one, and each stack's answer must be the same as net/http's.
func Run(t *testing.T, stacks map[string]Stack) {
	names := make([]string, 0, len(stacks))
	for name := range stacks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			ref, secrets := Play(t, c, NetHTTP)
			if err := Check(ref, c.Want, secrets); err != nil {
				t.Errorf("net/http: %v", err)
			}
			for _, name := range names {
				a, secrets := Play(t, c, stacks[name])
				if err := Check(a, c.Want, secrets); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if err := Same(ref, a); err != nil {
					t.Errorf("%s differs from net/http: %v", name, err)
				}
			}
		})
	}
}
