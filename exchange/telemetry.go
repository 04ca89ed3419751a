package exchange

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation is the OpenTelemetry name of this package's tracer and
// meter.
const instrumentation = "github.com/tipkit/tipkit/exchange"

// The operations of a flight, as metric and span attributes.
const (
	opExchange = iota // a token traded with CreateTokenWithIAM
	opRenewal         // a session renewed (identity context, refresh token, newer token)
	opShared          // a session another replica obtained, taken from the Store
	numOps
)

var opNames = [numOps]string{"exchange", "renewal", "shared"}

// resultNames names the result of a flight: "ok", or the Kind of its error.
var resultNames = [kindReauthenticate + 1]string{"ok", "config", "refused", "unavailable", "reauthenticate"}

// cacheEvent is one exchange, renewal, eviction or Store failure of a
// Cache, logged and counted. It holds no token and no secret.
type cacheEvent struct {
	user       UserKey
	op         string // "exchange", "renewal", "shared", "eviction", "store"
	background bool   // a renewal started ahead of expiry
	err        error
	duration   time.Duration
	expires    time.Time
}

// telemetry holds a Cache's tracer, its instruments and its logger.
type telemetry struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	// durationOpts are the attribute sets of the duration histogram, made
	// once: [op][result].
	durationOpts [numOps][kindReauthenticate + 1][]metric.RecordOption
	reg          metric.Registration
	log          *slog.Logger
}

// newTelemetry registers c's instruments with the Exchanger's meter
// provider. The counters are observed from c's own (Stats reads the same
// ones), so a request served from memory costs no instrument at all.
func newTelemetry(c *Cache) (*telemetry, error) {
	t := &telemetry{tracer: c.x.o.TracerProvider.Tracer(instrumentation), log: c.o.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	meter := c.o.MeterProvider.Meter(instrumentation)
	var err error
	if t.duration, err = meter.Float64Histogram("tipkit.exchange.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of exchanges and renewals of users' credentials, waits for the AWS rate limit included"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)); err != nil {
		return nil, err
	}
	var resultAttrs [numOps][kindReauthenticate + 1]metric.ObserveOption
	for op := range numOps {
		for k := range resultNames {
			set := attribute.NewSet(attribute.String("tipkit.operation", opNames[op]), attribute.String("tipkit.result", resultNames[k]))
			t.durationOpts[op][k] = []metric.RecordOption{metric.WithAttributeSet(set)}
			resultAttrs[op][k] = metric.WithAttributeSet(set)
		}
	}
	flights, err := meter.Int64ObservableCounter("tipkit.exchanges", metric.WithUnit("{flight}"),
		metric.WithDescription("Exchanges and renewals of users' credentials, by operation and result"))
	if err != nil {
		return nil, err
	}
	// An up-down counter rather than a gauge: the Caches of a middleware's
	// tenants observe it under one MeterProvider, and their values add up
	// where a gauge would keep one of them.
	users, err := meter.Int64ObservableUpDownCounter("tipkit.users", metric.WithUnit("{user}"),
		metric.WithDescription("Users whose credentials are held in memory"))
	if err != nil {
		return nil, err
	}
	inFlight, err := meter.Int64ObservableUpDownCounter("tipkit.exchanges.in_flight", metric.WithUnit("{flight}"),
		metric.WithDescription("Exchanges and renewals under way"))
	if err != nil {
		return nil, err
	}
	fallbacks, err := meter.Int64ObservableCounter("tipkit.store.fallbacks", metric.WithUnit("{call}"),
		metric.WithDescription("Calls of the shared session store that failed, after which the replica worked alone"))
	if err != nil {
		return nil, err
	}
	t.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for op := range numOps {
			for k := range resultNames {
				// Zeros too: a series that first appears at 1 loses that
				// increment in rate() and increase().
				o.ObserveInt64(flights, int64(c.stats.results[op][k].Load()), resultAttrs[op][k])
			}
		}
		o.ObserveInt64(users, int64(c.len()))
		o.ObserveInt64(inFlight, c.stats.inFlight.Load())
		o.ObserveInt64(fallbacks, int64(c.stats.storeFailures.Load()))
		return nil
	}, flights, users, inFlight, fallbacks)
	return t, err
}

// opOf returns the index of the operation name op, and whether it is one.
func opOf(op string) (int, bool) {
	for i, name := range opNames {
		if name == op {
			return i, true
		}
	}
	return 0, false
}

// kindOf returns the kind of err, 0 for nil (or an error of no kind).
func kindOf(err error) kind {
	var e *Error
	if errors.As(err, &e) && e.kind > 0 && int(e.kind) < len(resultNames) {
		return e.kind
	}
	return 0
}

// observe counts, records and logs ev.
func (c *Cache) observe(ev cacheEvent) {
	if op, ok := opOf(ev.op); ok {
		k := kindOf(ev.err)
		if ev.err != nil && k == 0 {
			k = kindUnavailable
		}
		c.stats.results[op][k].Add(1)
		c.tel.duration.Record(context.Background(), ev.duration.Seconds(), c.tel.durationOpts[op][k]...)
	}
	c.tel.logEvent(ev, c.x)
}

// logEvent logs ev: an exchange, renewal or shared session at info on
// success, warn on failure (debug when only a fresh token can help);
// evictions at debug; a Store failure at warn. Users appear as
// Exchanger.UserHash, never by name; no token or secret is logged.
func (t *telemetry) logEvent(ev cacheEvent, x *Exchanger) {
	level, msg := slog.LevelInfo, "tipkit: credentials obtained"
	switch {
	case ev.op == "store":
		level, msg = slog.LevelWarn, "tipkit: shared store failed: working alone for now"
	case ev.op == "eviction":
		level, msg = slog.LevelDebug, "tipkit: user evicted"
	case errors.Is(ev.err, ErrReauthenticate):
		level, msg = slog.LevelDebug, "tipkit: credentials need a fresh token"
	case ev.err != nil:
		level, msg = slog.LevelWarn, "tipkit: credentials not obtained"
	case ev.op == "shared":
		level, msg = slog.LevelDebug, "tipkit: credentials taken from the shared store"
	}
	ctx := context.Background()
	if !t.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("op", ev.op), slog.String("user", x.UserHash(ev.user))}
	if _, ok := opOf(ev.op); ok {
		attrs = append(attrs, slog.Bool("background", ev.background), slog.Duration("duration", ev.duration))
	}
	var xe *Error
	switch {
	case ev.op == "store":
		attrs = append(attrs, slog.String("error", ev.err.Error()))
	case errors.As(ev.err, &xe):
		attrs = append(attrs, slog.String("failure", xe.kind.String()), slog.String("aws_op", xe.Op), slog.String("aws_code", xe.Code))
		if xe.Code == codeSessionRefused && xe.Err != nil {
			// The operator's own error, as Options.Session returned it.
			attrs = append(attrs, slog.String("session_error", xe.Err.Error()))
		}
	case ev.err == nil && !ev.expires.IsZero():
		attrs = append(attrs, slog.Time("expires", ev.expires))
	}
	t.log.LogAttrs(ctx, level, msg, attrs...)
}

// startFlight starts the span of an exchange or renewal: a child of the
// span in ctx (the request that led the flight), or, for a renewal in the
// background, the root of a trace of its own linked to the request that
// triggered it.
func (t *telemetry) startFlight(ctx context.Context, renewal bool, link trace.Link) (context.Context, trace.Span) {
	name := "tipkit.exchange"
	if renewal {
		name = "tipkit.renewal"
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	if link.SpanContext.IsValid() {
		opts = append(opts, trace.WithLinks(link), trace.WithNewRoot())
	}
	return t.tracer.Start(ctx, name, opts...)
}

// endFlight ends span with the flight's outcome: on failure, the status
// Error with the error's kind, and its AWS code (or local reason) as
// error.type; never a message, a token or a user.
func endFlight(span trace.Span, op string, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("tipkit.operation", op))
		if err != nil {
			var xe *Error
			kind, code := kindUnavailable.String(), ""
			if errors.As(err, &xe) {
				kind, code = xe.kind.String(), xe.Code
			}
			span.SetAttributes(attribute.String("tipkit.result", kind))
			if code != "" {
				span.SetAttributes(attribute.String("error.type", code))
			}
			span.SetStatus(codes.Error, kind)
		} else {
			span.SetAttributes(attribute.String("tipkit.result", "ok"))
		}
	}
	span.End()
}
