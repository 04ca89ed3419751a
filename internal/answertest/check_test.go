package answertest

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tipkit/tipkit/middleware"
)

// caseNamed returns the case of the table called name.
func caseNamed(t *testing.T, name string) Case {
	t.Helper()
	for _, c := range Cases() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return Case{}
}

// TestChecksCatchWrongStacks plays cases through stacks that get one thing
// wrong each and checks that Check or Same reports it: the table would
// otherwise pass anything.
func TestChecksCatchWrongStacks(t *testing.T) {
	stacks := map[string]struct {
		stack Stack
		cases []string
	}{
		"goes on after a failure": {
			stack: func(m *middleware.Middleware, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r2, err := m.Authenticate(r); err != nil {
						m.HandleError(w, r, err)
						next.ServeHTTP(w, r)
					} else {
						next.ServeHTTP(w, r2)
					}
				})
			},
			cases: []string{"no token", "aws 5xx"},
		},
		"answers in its own way": {
			stack: func(m *middleware.Middleware, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r2, err := m.Authenticate(r)
					if err != nil {
						var e *middleware.Error
						errors.As(err, &e)
						http.Error(w, err.Error(), e.Kind.Status())
						return
					}
					next.ServeHTTP(w, r2)
				})
			},
			cases: []string{"no token", "tampered signature", "throttled by sts", "custom error handler replaces the answer"},
		},
		"adds a header": {
			stack: func(m *middleware.Middleware, next http.Handler) http.Handler {
				h := m.Handler(next)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Framework", "1")
					h.ServeHTTP(w, r)
				})
			},
			cases: []string{"no token", "success"},
		},
		"passes the original request on": {
			stack: func(m *middleware.Middleware, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := m.Authenticate(r); err != nil {
						m.HandleError(w, r, err)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			cases: []string{"success"},
		},
		"echoes the token": {
			stack: func(m *middleware.Middleware, next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Seen", r.Header.Get("Authorization")+r.URL.RawQuery)
					m.Handler(next).ServeHTTP(w, r)
				})
			},
			cases: []string{"tampered signature", "token in the query string", "two authorization headers"},
		},
	}
	for name, s := range stacks {
		for _, cn := range s.cases {
			t.Run(name+"/"+cn, func(t *testing.T) {
				t.Parallel()
				c := caseNamed(t, cn)
				ref, _ := Play(t, c, NetHTTP)
				a, secrets := Play(t, c, s.stack)
				if Check(a, c.Want, secrets) == nil && Same(ref, a) == nil {
					t.Errorf("neither Check nor Same noticed; answer %d %v %q", a.Status, a.Header, a.Body)
				}
			})
		}
	}
}

func TestCheck(t *testing.T) {
	ok := Answer{
		Status: 401,
		Header: http.Header{
			"Www-Authenticate": {`Bearer realm="tipkit-test", error="invalid_token", error_description="x"`},
			"Content-Type":     {"application/json"},
		},
		Body: []byte(`{"error":"invalid_token","error_description":"obtain a fresh token"}`),
	}
	want := Want{Status: 401, Challenge: challenge("invalid_token"), Error: "invalid_token", Description: "fresh token"}
	if err := Check(ok, want, []string{"aaaa.bbbbbbbbbb.cccccccccc"}); err != nil {
		t.Fatalf("Check of a right answer: %v", err)
	}
	wrong := map[string]func(*Answer){
		"status": func(a *Answer) { a.Status = 400 },
		"challenge": func(a *Answer) {
			a.Header.Set("Www-Authenticate", `Bearer realm="tipkit-test", error="invalid_tokens"`)
		},
		"no challenge":        func(a *Answer) { a.Header.Del("Www-Authenticate") },
		"two challenges":      func(a *Answer) { a.Header.Add("Www-Authenticate", "Basic") },
		"retry-after":         func(a *Answer) { a.Header.Set("Retry-After", "5") },
		"content type":        func(a *Answer) { a.Header.Set("Content-Type", "text/plain") },
		"body":                func(a *Answer) { a.Body = []byte("invalid_token") },
		"error":               func(a *Answer) { a.Body = []byte(`{"error":"invalid_request"}`) },
		"description":         func(a *Answer) { a.Body = []byte(`{"error":"invalid_token"}`) },
		"reached":             func(a *Answer) { a.Reached = true },
		"token in the body":   func(a *Answer) { a.Body = append(a.Body, "aaaa.bbbbbbbbbb.cccccccccc"...) },
		"payload in a header": func(a *Answer) { a.Header.Set("X-Debug", "claims=bbbbbbbbbb") },
		"signature in a name": func(a *Answer) { a.Header.Set("X-Sig", "cccccccccc") },
	}
	for name, f := range wrong {
		a := ok
		a.Header = ok.Header.Clone()
		f(&a)
		if Check(a, want, []string{"aaaa.bbbbbbbbbb.cccccccccc"}) == nil {
			t.Errorf("%s: Check found nothing wrong", name)
		}
	}
	unavailable := Want{Status: 503, Error: "temporarily_unavailable", RetryAfter: true}
	for _, ra := range []string{"", "0", "soon", "1.5"} {
		a := Answer{Status: 503, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"error":"temporarily_unavailable"}`)}
		if ra != "" {
			a.Header.Set("Retry-After", ra)
		}
		if Check(a, unavailable, nil) == nil {
			t.Errorf("Retry-After %q: Check found nothing wrong", ra)
		}
	}
}

func TestTamperAndUnsigned(t *testing.T) {
	tok := "aaaa.bbbb.cccccccccccc"
	if got := tamper(tok); got == tok || len(got) != len(tok) {
		t.Errorf("tamper(%q) = %q", tok, got)
	}
	if got := unsigned(tok); !strings.HasSuffix(got, ".bbbb.") {
		t.Errorf("unsigned(%q) = %q", tok, got)
	}
	for _, short := range []string{"", "abc"} {
		if got := tamper(short); got == short {
			t.Errorf("tamper(%q) = %q", short, got)
		}
	}
	if got := unsigned("opaque"); got != "opaque" {
		t.Errorf("unsigned(opaque) = %q", got)
	}
}
