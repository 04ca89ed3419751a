package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tipkit/tipkit/middleware"
)

// serviceName is the OpenTelemetry service.name of the example.
const serviceName = "tipkit-example-nethttp"

// telemetry is the example's OpenTelemetry SDK. The middleware's metrics
// go to a meter provider that the Prometheus exporter reads, served on
// /metrics; with -trace-stdout, the middleware's spans (exchanges, the AWS
// SDK's calls beneath them, key set fetches) and the server's own span of
// each request are printed on the spans writer. The providers reach the
// middleware through its Options, not through the otel globals.
type telemetry struct {
	spans       io.Writer // where -trace-stdout prints
	traceStdout bool

	registry *prometheus.Registry
	meters   *sdkmetric.MeterProvider
	tracers  trace.TracerProvider
	printer  *sdktrace.TracerProvider // nil without -trace-stdout
	tracer   trace.Tracer
}

// newTelemetry returns the example's telemetry, printing spans on spans
// with -trace-stdout. Nothing is built before the flags are parsed.
func newTelemetry(spans io.Writer) *telemetry { return &telemetry{spans: spans} }

// flags registers -trace-stdout.
func (t *telemetry) flags(fs *flag.FlagSet) {
	fs.BoolVar(&t.traceStdout, "trace-stdout", false,
		"print the spans of requests, exchanges, AWS calls and key set fetches on stdout, as JSON")
}

// options builds the providers on first use and gives them to the
// middleware. It runs once the flags are parsed and before the router is
// built.
func (t *telemetry) options(o *middleware.Options) error {
	if err := t.start(); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	o.TracerProvider, o.MeterProvider = t.tracers, t.meters
	return nil
}

// start builds the meter provider with its Prometheus exporter and, with
// -trace-stdout, the tracer provider that prints spans; without it, the
// tracer provider is a no-op one and no span is recorded.
func (t *telemetry) start() error {
	if t.meters != nil {
		return nil
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(serviceName)))
	if err != nil {
		return err
	}
	// A registry of the example's own, not prometheus.DefaultRegisterer:
	// /metrics shows the OpenTelemetry metrics only, and two servers in one
	// process (the tests) do not collide. The naming is spelled out: dots
	// become underscores, units become suffixes (s: _seconds; a unit in
	// braces such as {flight} adds none) and counters end in _total.
	t.registry = prometheus.NewRegistry()
	exporter, err := otelprometheus.New(
		otelprometheus.WithRegisterer(t.registry),
		otelprometheus.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return err
	}
	t.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res))
	t.tracers = noop.NewTracerProvider()
	if t.traceStdout {
		printer, err := stdouttrace.New(stdouttrace.WithWriter(t.spans), stdouttrace.WithPrettyPrint())
		if err != nil {
			return err
		}
		// Batched, as a real exporter would be; a short timeout prints the
		// spans of a curl command within a second.
		t.printer = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(printer, sdktrace.WithBatchTimeout(time.Second)),
			sdktrace.WithResource(res))
		t.tracers = t.printer
	}
	t.tracer = t.tracers.Tracer("github.com/tipkit/tipkit/examples/nethttp")
	return nil
}

// metrics serves the metrics in the Prometheus text format.
func (t *telemetry) metrics() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// shutdown prints the spans not printed yet and stops the providers.
func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	if t.printer != nil {
		errs = append(errs, t.printer.Shutdown(ctx))
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// traced gives each request to h a server span, the parent of the
// middleware's exchange spans: a child of the caller's span when the
// request carries a W3C traceparent, named after the route of routes it
// matches ("GET /files/{key...}"). The span holds the method, the route
// and the status code, not the path or the query: here those name users'
// files.
func (t *telemetry) traced(routes *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := knownMethod(r.Method)
		name, attrs := method, []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method)}
		if _, pattern := routes.Handler(r); pattern != "" {
			route := pattern[strings.IndexByte(pattern, ' ')+1:] // "GET /files" -> "/files"
			name += " " + route
			attrs = append(attrs, semconv.HTTPRoute(route))
		}
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(ctx))
		status := cmp.Or(sw.status, http.StatusOK)
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, "")
		}
	})
}

// knownMethod returns method, or "_OTHER" for a method HTTP does not
// define, as OpenTelemetry's HTTP conventions ask, so that span names
// stay few.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "_OTHER"
}

// statusWriter remembers the status code of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
