package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

// run runs ex as `go run ./examples/nethttp args...` does, with no
// environment, flushes tel and returns the standard output.
func run(t *testing.T, ex demo.Example, tel *telemetry, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := ex.Run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	if err := tel.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if code != demo.ExitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestSelfTest runs the example's -selftest in-process, as CI runs it:
// two users through the same server and role, each seeing only their own
// files, and /metrics, read with no token before and after their
// requests, counting the exchanges and the requests.
func TestSelfTest(t *testing.T) {
	tel := newTelemetry(io.Discard)
	out := run(t, example(tel), tel, "-selftest")
	for _, want := range []string{"alice/notes.txt", "bob/plan.txt", "403", "OK:",
		"tipkit_exchanges_total", `tipkit_requests_total{tipkit_outcome="ok"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("the self-test output lacks %q:\n%s", want, out)
		}
	}
}

// recordUsers passes the self-test's check on and keeps the users it was
// given, with their tokens.
type recordUsers struct {
	demo.Check
	sent demo.Sent
}

func (r *recordUsers) After(ctx context.Context, w io.Writer, sent demo.Sent) (int, []string) {
	r.sent = sent
	return r.Check.After(ctx, w, sent)
}

// span is a span as stdouttrace prints it, with the fields checked here.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	SpanKind    trace.SpanKind
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
}

func (s span) attr(key string) any {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value
		}
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the span processor's goroutine
// and the test's.
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

// TestTraceStdout runs the self-test with -trace-stdout and reads the
// printed spans: a server span for each request; one exchange per user, a
// child of the server span of the request that led it; the AWS SDK's
// calls beneath the exchange; and no token, claim, user name or AWS key in
// any of them.
func TestTraceStdout(t *testing.T) {
	var printed syncBuffer
	tel := newTelemetry(&printed)
	ex := example(tel)
	users := &recordUsers{Check: ex.Check}
	ex.Check = users
	run(t, ex, tel, "-selftest", "-trace-stdout")

	text := printed.String()
	var spans []span
	for dec := json.NewDecoder(strings.NewReader(text)); ; {
		var s span
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the printed spans are not JSON: %v", err)
		}
		spans = append(spans, s)
	}
	byID := map[string]span{}
	count := map[string]int{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID] = s
		count[s.Name]++
	}
	parent := func(s span) span { return byID[s.Parent.SpanID] }

	servers := 0
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			servers++
			if s.attr("http.route") == nil || s.attr("http.response.status_code") == nil {
				t.Errorf("server span %s lacks its route or status: %+v", s.Name, s.Attributes)
			}
		}
	}
	if sent := users.sent.WithToken + users.sent.WithoutToken; servers != sent {
		t.Errorf("%d server spans for %d requests (the /metrics scrapes have none)", servers, sent)
	}
	if n := count["tipkit.exchange"]; n != len(users.sent.Users) {
		t.Errorf("%d tipkit.exchange spans, want one per user (%d); spans: %v", n, len(users.sent.Users), count)
	}
	for _, s := range spans {
		switch s.Name {
		case "tipkit.exchange":
			if p := parent(s); p.SpanKind != trace.SpanKindServer || p.Name != "GET /files" || p.SpanContext.TraceID != s.SpanContext.TraceID {
				t.Errorf("an exchange's parent is %q (kind %v), want the server span of the user's first request, GET /files", p.Name, p.SpanKind)
			}
		case "SSO OIDC.CreateTokenWithIAM", "STS.AssumeRole", "STS.AssumeRoleWithWebIdentity":
			if p := parent(s); p.Name != "tipkit.exchange" {
				t.Errorf("%s's parent is %q, want tipkit.exchange", s.Name, p.Name)
			}
		}
	}
	for _, name := range []string{"SSO OIDC.CreateTokenWithIAM", "STS.AssumeRole", "tipkit.jwks.fetch"} {
		if count[name] == 0 {
			t.Errorf("no %s span; spans: %v", name, count)
		}
	}
	if len(users.sent.Users) == 0 {
		t.Fatal("the check was given no users")
	}
	if leaks := leaked(text, users.sent.Users); len(leaks) > 0 {
		t.Errorf("the spans show %s", strings.Join(leaks, ", "))
	}
}

// TestMetricsCheckFails checks that the self-test's reading of /metrics
// is not vacuous: metrics that did not move, counts that do not match
// what was sent, and a token in the body each fail it.
func TestMetricsCheckFails(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImVtYWlsIjoiYWxpY2VAZXhhbXBsZS5jb20iLCJpc3MiOiJodHRwOi8vaWRwIn0.c2lnbmF0dXJl"
	var mu sync.Mutex
	body := "# TYPE tipkit_requests_total counter\ntipkit_requests_total{tipkit_outcome=\"ok\"} 3\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()

	c := &metricsCheck{}
	ctx := context.Background()
	if err := c.Before(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	body += "tipkit_requests_total{tipkit_outcome=\"missing_token\",user=\"alice@example.com\"} 1\n"
	mu.Unlock()
	var out bytes.Buffer
	sent := demo.Sent{Users: []demo.User{{Name: "alice", Token: token}}, WithToken: 4, WithoutToken: 1}
	checks, failed := c.After(ctx, &out, sent)
	got := strings.Join(failed, "\n")
	for _, want := range []string{
		"no tipkit_exchanges_total",
		"tipkit_exchanges_total did not move",
		`tipkit_requests_total{tipkit_outcome="ok"} moved by 0, want 4`,
		"alice's email claim",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the failures lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `tipkit_outcome="missing_token"`) {
		t.Errorf("the request without a token was counted, yet reported:\n%s", got)
	}
	if len(failed) >= checks || strings.Contains(got+out.String(), token) {
		t.Errorf("%d checks, %d failed, or the token shows:\n%s\n%s", checks, len(failed), got, out.String())
	}
}
