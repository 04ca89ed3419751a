package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// telemetry is an OpenTelemetry SDK that records everything in memory.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// withTelemetry makes the middleware report to tel.
func (tel *telemetry) options(o *middleware.Options) {
	o.TracerProvider, o.MeterProvider = tel.tp, tel.mp
}

// traced wraps h in a request span, as otelhttp would.
func (tel *telemetry) traced(h http.Handler) http.Handler {
	tracer := tel.tp.Tracer("test")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// named returns the ended spans called name.
func (tel *telemetry) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// byID indexes the ended spans by span ID.
func (tel *telemetry) byID() map[trace.SpanID]sdktrace.ReadOnlySpan {
	m := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range tel.spans.Ended() {
		m[s.SpanContext().SpanID()] = s
	}
	return m
}

// metrics collects the metrics, keyed by name.
func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum returns the value of the counter name at the point whose attributes
// hold all of attrs.
func sum(t *testing.T, ms map[string]metricdata.Metrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s is a %T", name, m.Data)
	}
	var total int64
	for _, p := range points {
		match := true
		for _, a := range attrs {
			if v, ok := p.Attributes.Value(a.Key); !ok || v != a.Value {
				match = false
			}
		}
		if match {
			total += p.Value
		}
	}
	return total
}

// dump renders every span and metric point recorded, for a search of
// what must never be there.
func (tel *telemetry) dump(t *testing.T) string {
	var b strings.Builder
	for _, s := range tel.spans.Ended() {
		fmt.Fprintf(&b, "%s %v %v %v\n", s.Name(), s.Attributes(), s.Status(), s.Links())
		for _, e := range s.Events() {
			fmt.Fprintf(&b, "  event %s %v\n", e.Name, e.Attributes)
		}
	}
	for name, m := range tel.metrics(t) {
		fmt.Fprintf(&b, "%s %+v\n", name, m.Data)
	}
	return b.String()
}

// A herd of three users, each with concurrent first requests: one exchange
// span per user, a child of the request span that led it, with the AWS
// SDK's spans beneath; the other requests carry an event. Metrics count
// the requests by outcome and the exchanges by result, and nothing
// recorded names a user or holds a token or a secret.
func TestTelemetry(t *testing.T) {
	env := tiptest.New(t)
	tel := newTelemetry(t)
	m := newMiddleware(t, env, tel.options)
	h := tel.traced(m.Handler(whoAmI(env)))
	env.AWS.SetFault("AssumeRole", tiptest.Fault{Latency: 200 * time.Millisecond, Times: 3})

	users := []string{"alice", "bob", "carol"}
	secrets := []string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range users {
		tok := env.IdP.Token(u)
		secrets = append(secrets, tok)
		for range 4 {
			wg.Go(func() {
				w := serve(h, request(tok))
				key := keyOf(t, env, w, u)
				mu.Lock()
				secrets = append(secrets, key)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	env.AWS.RemoveUser("mallory")
	mallory := env.IdP.Token("mallory")
	secrets = append(secrets, mallory)
	refusal(t, serve(h, request(mallory)), http.StatusForbidden, "access_denied")
	refusal(t, serve(h, request("")), http.StatusUnauthorized, "missing_token")

	// Spans: one exchange per user, each the child of a request span.
	ids := tel.byID()
	exchanges := tel.named("tipkit.exchange")
	if len(exchanges) != len(users)+1 {
		t.Fatalf("%d exchange spans, want %d (one per user, mallory's included)", len(exchanges), len(users)+1)
	}
	var refused int
	for _, s := range exchanges {
		parent, ok := ids[s.Parent().SpanID()]
		if !ok || parent.Name() != "request" || parent.SpanContext().TraceID() != s.SpanContext().TraceID() {
			t.Errorf("exchange span's parent is %v, want a request span", s.Parent())
		}
		if s.Status().Code == codes.Error {
			refused++
			if !hasAttr(s.Attributes(), "tipkit.result", "refused") || !hasAttrKey(s.Attributes(), "error.type") {
				t.Errorf("refused exchange span without its result and error type: %v", s.Attributes())
			}
		}
		var sdkChildren []string
		for _, c := range tel.spans.Ended() {
			if c.Parent().SpanID() == s.SpanContext().SpanID() {
				sdkChildren = append(sdkChildren, c.Name())
			}
		}
		if !containsSpan(sdkChildren, "CreateTokenWithIAM") {
			t.Errorf("exchange span's children %v hold no CreateTokenWithIAM span of the SDK", sdkChildren)
		}
	}
	if refused != 1 {
		t.Errorf("%d exchange spans failed, want 1 (mallory)", refused)
	}
	var joined int
	for _, s := range tel.named("request") {
		for _, e := range s.Events() {
			if e.Name == "tipkit.exchange.joined" {
				joined++
			}
		}
	}
	if joined == 0 {
		t.Error("no request span tells that it joined another request's exchange")
	}

	// Metrics.
	ms := tel.metrics(t)
	outcome := func(v string) attribute.KeyValue { return attribute.String("tipkit.outcome", v) }
	if n := sum(t, ms, "tipkit.requests", outcome("ok")); n != int64(4*len(users)) {
		t.Errorf("tipkit.requests{ok} = %d, want %d", n, 4*len(users))
	}
	if n := sum(t, ms, "tipkit.requests", outcome("access_denied")); n != 1 {
		t.Errorf("tipkit.requests{access_denied} = %d, want 1", n)
	}
	if n := sum(t, ms, "tipkit.requests", outcome("missing_token")); n != 1 {
		t.Errorf("tipkit.requests{missing_token} = %d, want 1", n)
	}
	op := attribute.String("tipkit.operation", "exchange")
	if n := sum(t, ms, "tipkit.exchanges", op, attribute.String("tipkit.result", "ok")); n != int64(len(users)) {
		t.Errorf("tipkit.exchanges{exchange,ok} = %d, want %d", n, len(users))
	}
	if n := sum(t, ms, "tipkit.exchanges", op, attribute.String("tipkit.result", "refused")); n != 1 {
		t.Errorf("tipkit.exchanges{exchange,refused} = %d, want 1", n)
	}
	if n := sum(t, ms, "tipkit.users"); n != int64(len(users)) {
		t.Errorf("tipkit.users = %d, want %d", n, len(users))
	}
	if n := sum(t, ms, "tipkit.jwks.fetches", attribute.String("tipkit.result", "ok")); n < 1 {
		t.Errorf("tipkit.jwks.fetches{ok} = %d, want at least 1", n)
	}
	h2, ok := ms["tipkit.exchange.duration"].Data.(metricdata.Histogram[float64])
	if !ok || ms["tipkit.exchange.duration"].Unit != "s" {
		t.Fatalf("tipkit.exchange.duration: %+v", ms["tipkit.exchange.duration"])
	}
	var count uint64
	for _, p := range h2.DataPoints {
		count += p.Count
	}
	if count != uint64(len(users)+1) {
		t.Errorf("tipkit.exchange.duration counted %d, want %d", count, len(users)+1)
	}
	if s := m.Stats(); s.OK != uint64(4*len(users)) || s.Requests != uint64(4*len(users)+2) {
		t.Errorf("Stats %+v disagrees with the metrics", s)
	}

	// Nothing personal or secret.
	all := tel.dump(t)
	for _, s := range append(secrets, users...) {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("telemetry holds %q", s)
		}
	}
	for _, s := range []string{"mallory", "@example.com"} {
		if strings.Contains(all, s) {
			t.Errorf("telemetry holds %q", s)
		}
	}
}

// A renewal in the background starts a trace of its own, linked to the
// request that triggered it; a request served from memory starts no span.
func TestTelemetryBackgroundRenewal(t *testing.T) {
	env := tiptest.New(t)
	tel := newTelemetry(t)
	m := newMiddleware(t, env, tel.options)
	h := tel.traced(m.Handler(whoAmI(env)))
	tok := env.IdP.Token("alice")
	keyOf(t, env, serve(h, request(tok)), "alice")
	before := len(tel.spans.Ended())
	keyOf(t, env, serve(h, request(tok)), "alice")
	if n := len(tel.spans.Ended()) - before; n != 1 {
		t.Fatalf("a request served from memory ended %d spans, want only its own request span", n)
	}
	env.Clock.Advance(inWindow)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(tok))
	eventually(t, "the background renewal", func() bool { return len(tel.named("tipkit.renewal")) == 1 })
	renewal := tel.named("tipkit.renewal")[0]
	if renewal.Parent().IsValid() {
		t.Fatalf("the background renewal has a parent %v, want a trace of its own", renewal.Parent())
	}
	requests := tel.named("request")
	last := requests[len(requests)-1]
	if links := renewal.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != last.SpanContext().SpanID() {
		t.Fatalf("the renewal's links %v do not name the request that triggered it", renewal.Links())
	}
}

func hasAttr(kvs []attribute.KeyValue, key, value string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == key && kv.Value.AsString() == value {
			return true
		}
	}
	return false
}

func hasAttrKey(kvs []attribute.KeyValue, key string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return true
		}
	}
	return false
}

func containsSpan(names []string, op string) bool {
	for _, n := range names {
		if strings.Contains(n, op) {
			return true
		}
	}
	return false
}
