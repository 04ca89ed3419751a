// Package grpctip connects a [middleware.Middleware] to gRPC servers
// (google.golang.org/grpc).
//
// The adapter holds no logic of its own: the interceptors returned by
// [UnaryServerInterceptor] and [StreamServerInterceptor] take the token of
// each call from its "authorization" metadata exactly as the net/http
// middleware takes it from the Authorization header
// ([middleware.BearerExtractor]: one value, the Bearer scheme matched
// case-insensitively, one b64token; another scheme counts as no token),
// ask m for its decision ([middleware.Middleware.AuthorizeBearer]),
// and either run the handler with a context carrying the caller's
// aws.Config and identity (read them with ctxcreds.Config and
// ctxcreds.IdentityFrom, as over HTTP) or end the call with the status that
// matches the HTTP answer:
//
//	HTTP answer                          gRPC status
//	401 (no token, invalid_request,      Unauthenticated
//	     invalid_token)
//	403 access_denied                    PermissionDenied
//	503 with Retry-After                 Unavailable, with a google.rpc.RetryInfo
//	                                     detail holding the same delay
//	500 server_error                     Internal
//
// The status message is the error_description of the HTTP answer: a fixed
// sentence of the middleware that never holds the token. Options.Optional
// lets a call without a token through anonymously, as over HTTP.
// Options.Skipper, Options.Extractor, Options.ErrorHandler and CORS
// preflights belong to the HTTP transport and play no part here: use
// [WithSkipper] for methods that need no caller, such as health checks and
// server reflection.
//
// Mount both interceptors: a streaming method behind the unary one alone
// would run with no caller in its context:
//
//	noCaller := func(_ context.Context, method string) bool {
//		return strings.HasPrefix(method, "/grpc.health.v1.Health/")
//	}
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(grpctip.UnaryServerInterceptor(m, grpctip.WithSkipper(noCaller))),
//		grpc.ChainStreamInterceptor(grpctip.StreamServerInterceptor(m, grpctip.WithSkipper(noCaller))),
//	)
//
// With github.com/grpc-ecosystem/go-grpc-middleware/v2, the interceptors
// chain like any other; put them after the ones that must see refused
// calls too (logging, recovery), and select methods with its selector
// package instead of WithSkipper if you prefer:
//
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(
//			recovery.UnaryServerInterceptor(),
//			logging.UnaryServerInterceptor(logger),
//			selector.UnaryServerInterceptor(grpctip.UnaryServerInterceptor(m),
//				selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
//					return c.Service != healthpb.Health_ServiceDesc.ServiceName
//				})),
//		),
//		grpc.ChainStreamInterceptor(
//			recovery.StreamServerInterceptor(),
//			logging.StreamServerInterceptor(logger),
//			selector.StreamServerInterceptor(grpctip.StreamServerInterceptor(m),
//				selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
//					return c.Service != healthpb.Health_ServiceDesc.ServiceName
//				})),
//		),
//	)
//
// Its auth package is not needed: these interceptors are the
// authentication step, and go further (the caller's AWS credentials).
package grpctip

import (
	"context"
	"errors"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tipkit/tipkit/middleware"
)

// Option changes how the interceptors of this package treat calls.
type Option func(*options)

type options struct {
	skip func(ctx context.Context, fullMethod string) bool
}

// WithSkipper makes the interceptors let a call through untouched when
// skip returns true for it: its handler runs with the call's own context,
// which carries no AWS configuration, and m does not see the call (it is
// not counted in m's Stats). fullMethod is the call's "/package.Service/
// Method". A nil skip skips nothing.
func WithSkipper(skip func(ctx context.Context, fullMethod string) bool) Option {
	return func(o *options) { o.skip = skip }
}

// authorizer is what both interceptors share.
type authorizer struct {
	m    *middleware.Middleware
	skip func(ctx context.Context, fullMethod string) bool
}

func newAuthorizer(m *middleware.Middleware, opts []Option) authorizer {
	if m == nil {
		panic("grpctip: a nil *middleware.Middleware was given")
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return authorizer{m: m, skip: o.skip}
}

// UnaryServerInterceptor returns the unary interceptor of m. A call that m
// accepts reaches its handler with a context carrying the caller's
// configuration and identity (ctxcreds.Config, ctxcreds.IdentityFrom); a
// call that m refuses ends with the status described in the package
// documentation, and its handler does not run.
//
// UnaryServerInterceptor panics if m is nil: that is a mistake in the
// program, not in a call.
func UnaryServerInterceptor(m *middleware.Middleware, opts ...Option) grpc.UnaryServerInterceptor {
	a := newAuthorizer(m, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a.skip != nil && a.skip(ctx, info.FullMethod) {
			return handler(ctx, req)
		}
		caller, err := a.authorize(ctx)
		if err != nil {
			return nil, err
		}
		return handler(caller, req)
	}
}

// StreamServerInterceptor returns the stream interceptor of m. A call that
// m accepts reaches its handler with a stream whose Context carries the
// caller's configuration and identity (ctxcreds.Config,
// ctxcreds.IdentityFrom); a call that m refuses ends with the status
// described in the package documentation before any message is read, and
// its handler does not run.
//
// StreamServerInterceptor panics if m is nil: that is a mistake in the
// program, not in a call.
func StreamServerInterceptor(m *middleware.Middleware, opts ...Option) grpc.StreamServerInterceptor {
	a := newAuthorizer(m, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if a.skip != nil && a.skip(ctx, info.FullMethod) {
			return handler(srv, ss)
		}
		caller, err := a.authorize(ctx)
		if err != nil {
			return err
		}
		return handler(srv, &callerStream{ServerStream: ss, ctx: caller})
	}
}

// callerStream is a ServerStream whose Context carries the caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the call's context with the caller's configuration and
// identity.
func (s *callerStream) Context() context.Context { return s.ctx }

// authorize returns ctx with the caller of its call, or the status error
// of m's refusal. The "authorization" metadata is read exactly as the
// net/http middleware reads the Authorization header.
func (a authorizer) authorize(ctx context.Context) (context.Context, error) {
	caller, err := a.m.AuthorizeBearer(ctx, metadata.ValueFromIncomingContext(ctx, "authorization"))
	if err != nil {
		var refusal *middleware.Error
		errors.As(err, &refusal)
		return nil, statusOf(refusal).Err()
	}
	return caller, nil
}

// defaultRetryDelay is the delay of a 503 whose Error sets none, as
// documented on middleware.Error.RetryAfter.
const defaultRetryDelay = 5 * time.Second

// statusOf returns the gRPC status of the refusal err: the code of
// err.Kind's HTTP status, err.Description as the message (err.Code when
// there is no description), and on 503 a google.rpc.RetryInfo detail with
// err.RetryAfter (five seconds when it is not positive). A nil err gives
// an Internal status.
func statusOf(err *middleware.Error) *status.Status {
	if err == nil {
		err = &middleware.Error{Kind: middleware.KindInternal}
	}
	msg := err.Description
	if msg == "" {
		msg = err.Code
	}
	switch err.Kind.Status() {
	case http.StatusUnauthorized:
		return status.New(codes.Unauthenticated, msg)
	case http.StatusForbidden:
		return status.New(codes.PermissionDenied, msg)
	case http.StatusServiceUnavailable:
		delay := err.RetryAfter
		if delay <= 0 {
			delay = defaultRetryDelay
		}
		st := status.New(codes.Unavailable, msg)
		if withRetry, e := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); e == nil {
			return withRetry
		}
		return st
	}
	return status.New(codes.Internal, msg)
}
