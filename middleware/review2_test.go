package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// Exchange options with a WebTokenProvider (as copied from a job that runs
// as a service identity) are refused at New: renewing bob's credentials
// with the provider's token handed bob carol's credentials.
func TestWebTokenProviderRefused(t *testing.T) {
	env := tiptest.New(t)
	o := middlewaretest.Options(env)
	o.Exchange.WebTokenProvider = func(context.Context) (string, error) { return env.IdP.Token("carol"), nil }
	m, err := middleware.New(context.Background(), o)
	if err == nil {
		_ = m.Close()
		t.Fatal("New accepted Exchange.WebTokenProvider")
	}
	if !errors.Is(err, middleware.ErrConfig) || !strings.Contains(err.Error(), "WebTokenProvider") {
		t.Fatalf("New: %v, want ErrConfig naming WebTokenProvider", err)
	}

	// Without it, bob stays bob across the identity context's expiry: a
	// renewal with nothing of bob's to renew with asks bob for a fresh
	// token, and never hands out anyone else's credentials.
	m = newMiddleware(t, env)
	h := m.Handler(whoAmI(env))
	tok := env.IdP.Token("bob", tiptest.WithLifetime(4*time.Hour))
	keyOf(t, env, get(t, h, tok), "bob")
	env.Clock.Advance(3 * time.Hour)
	w := get(t, h, tok)
	refusal(t, w, http.StatusUnauthorized, "invalid_token")
}

// A 503 for AWS tells the client to come back when the middleware stops
// answering the failure from memory: Retry-After is Cache.UnavailableTTL,
// rounded up to whole seconds.
func TestRetryAfterIsTheRememberedWindow(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int
	}{{0, 1}, {3 * time.Second, 3}, {2500 * time.Millisecond, 3}} {
		env := tiptest.New(t)
		m := newMiddleware(t, env, func(o *middleware.Options) {
			o.Cache.UnavailableTTL = tc.ttl
			o.Exchange.MaxAttempts = 1
		})
		h := m.Handler(whoAmI(env))
		env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "Throttling"})
		tok := env.IdP.Token("alice")
		for i := range 2 { // the exchange's answer, then the remembered one
			w := get(t, h, tok)
			refusal(t, w, http.StatusServiceUnavailable, "temporarily_unavailable")
			if got, _ := strconv.Atoi(w.Header().Get("Retry-After")); got != tc.want {
				t.Fatalf("UnavailableTTL %v, answer %d: Retry-After %q, want %d", tc.ttl, i, w.Header().Get("Retry-After"), tc.want)
			}
		}
		if n := env.AWS.Calls("AssumeRole"); n != 1 {
			t.Fatalf("%d AssumeRole calls, want 1 (the second answer from memory)", n)
		}
		// Once the window has passed, the client's retry reaches AWS.
		env.AWS.ClearFaults()
		env.Clock.Advance(time.Duration(tc.want) * time.Second)
		keyOf(t, env, get(t, h, tok), "alice")
	}
}

// The user hash in log records is keyed by Exchange.HashKey: it is the
// Exchanger's UserHash, the same as the user's RoleSessionName suffix, and
// not the unkeyed hash.
func TestLoggedUserHashIsKeyed(t *testing.T) {
	env := tiptest.New(t)
	var logs bytes.Buffer
	key := []byte(strings.Repeat("s", 32))
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Exchange.HashKey = key
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	h := m.Handler(whoAmI(env))
	keyOf(t, env, get(t, h, env.IdP.Token("alice")), "alice")
	o := middlewaretest.Options(env)
	o.Exchange.HashKey = key
	x, err := exchange.New(o.Exchange)
	if err != nil {
		t.Fatal(err)
	}
	keyed := x.UserHash(exchange.UserKey{Issuer: env.IdP.Issuer(), Subject: "alice"})
	if !strings.Contains(logs.String(), "user="+keyed) {
		t.Fatalf("logs do not name alice by the keyed hash %s:\n%s", keyed, logs.String())
	}
	if unkeyed := unkeyedUserHash(env.IdP.Issuer(), "alice"); strings.Contains(logs.String(), unkeyed) {
		t.Fatalf("logs name alice by the unkeyed hash %s", unkeyed)
	}
}

// A setting has one name: New refuses options that set one both at the
// top and in the nested options that verify.New, exchange.New and
// exchange.NewCache keep for their standalone use, naming both.
func TestOneNamePerSetting(t *testing.T) {
	env := tiptest.New(t)
	clock := env.Clock.Now
	tp := tracenoop.NewTracerProvider()
	mp := metricnoop.NewMeterProvider()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		names [2]string
		edit  func(*middleware.Options)
	}{
		{[2]string{"Now", "Verify.Now"}, func(o *middleware.Options) { o.Now, o.Verify.Now = clock, clock }},
		{[2]string{"Now", "Exchange.Now"}, func(o *middleware.Options) { o.Now, o.Exchange.Now = clock, clock }},
		{[2]string{"TracerProvider", "Verify.TracerProvider"}, func(o *middleware.Options) { o.TracerProvider, o.Verify.TracerProvider = tp, tp }},
		{[2]string{"TracerProvider", "Exchange.TracerProvider"}, func(o *middleware.Options) { o.TracerProvider, o.Exchange.TracerProvider = tp, tp }},
		{[2]string{"MeterProvider", "Verify.MeterProvider"}, func(o *middleware.Options) { o.MeterProvider, o.Verify.MeterProvider = mp, mp }},
		{[2]string{"MeterProvider", "Cache.MeterProvider"}, func(o *middleware.Options) { o.MeterProvider, o.Cache.MeterProvider = mp, mp }},
		{[2]string{"Logger", "Cache.Logger"}, func(o *middleware.Options) { o.Logger, o.Cache.Logger = log, log }},
	} {
		o := middlewaretest.Options(env)
		o.Now, o.Verify.Now, o.Exchange.Now = nil, nil, nil
		tc.edit(&o)
		m, err := middleware.New(context.Background(), o)
		if err == nil {
			_ = m.Close()
			t.Errorf("New accepted %s and %s together", tc.names[0], tc.names[1])
			continue
		}
		if !errors.Is(err, middleware.ErrConfig) || !strings.Contains(err.Error(), tc.names[0]) || !strings.Contains(err.Error(), tc.names[1]) {
			t.Errorf("%s and %s: %v, want ErrConfig naming both", tc.names[0], tc.names[1], err)
		}
	}
}
