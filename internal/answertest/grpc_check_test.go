package answertest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tipkit/tipkit/middleware"
)

// flawed builds gRPC stacks that get one thing wrong each: answer turns a
// refusal into the call's error, and stream gives the handler the stream
// it is to see.
type flawed struct {
	answer func(err *middleware.Error, md metadata.MD) error
	// original, when set, runs the handler with the call's own context
	// (unary) or stream (stream) after a success.
	original struct{ unary, stream bool }
	// goOn, when set, runs the handler after a refusal too.
	goOn bool
}

// authorize decides a call as grpctip does, from the call's metadata.
func authorize(ctx context.Context, m *middleware.Middleware) (context.Context, *middleware.Error) {
	token := ""
	if values := metadata.ValueFromIncomingContext(ctx, "authorization"); len(values) > 0 {
		r := http.Request{Header: http.Header{"Authorization": values}}
		tok, err := middleware.BearerExtractor(&r)
		if err != nil {
			return nil, err.(*middleware.Error)
		}
		token = tok
	}
	caller, err := m.Authorize(ctx, token)
	if err != nil {
		var refusal *middleware.Error
		errors.As(err, &refusal)
		return nil, refusal
	}
	return caller, nil
}

// rightAnswer answers err as DESIGN.md section 3 asks.
func rightAnswer(err *middleware.Error, _ metadata.MD) error {
	st := status.New(codes.Internal, err.Description)
	switch err.Kind.Status() {
	case 401:
		st = status.New(codes.Unauthenticated, err.Description)
	case 403:
		st = status.New(codes.PermissionDenied, err.Description)
	case 503:
		d := err.RetryAfter
		if d <= 0 {
			d = 5 * time.Second
		}
		st, _ = status.New(codes.Unavailable, err.Description).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	}
	return st.Err()
}

func (f flawed) stack(m *middleware.Middleware) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	decide := func(ctx context.Context) (context.Context, error) {
		caller, err := authorize(ctx, m)
		if err != nil {
			md, _ := metadata.FromIncomingContext(ctx)
			return nil, f.answer(err, md)
		}
		return caller, nil
	}
	unary := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		caller, err := decide(ctx)
		switch {
		case err != nil && f.goOn:
			_, _ = h(ctx, req)
			return nil, err
		case err != nil:
			return nil, err
		case f.original.unary:
			return h(ctx, req)
		}
		return h(caller, req)
	}
	stream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		caller, err := decide(ss.Context())
		switch {
		case err != nil && f.goOn:
			_ = h(srv, ss)
			return err
		case err != nil:
			return err
		case f.original.stream:
			return h(srv, ss)
		}
		return h(srv, &ctxStream{ss, caller})
	}
	return unary, stream
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// TestGRPCChecksCatchWrongStacks plays cases through gRPC stacks that get
// one thing wrong each and checks that CheckGRPC reports it, after
// checking that the same stack without the flaw passes.
func TestGRPCChecksCatchWrongStacks(t *testing.T) {
	right := flawed{answer: rightAnswer}
	for _, cn := range []string{"no token", "throttled by sts", "success", "user unknown to identity center", "bytes outside printable ascii"} {
		for _, kind := range []string{Unary, Stream} {
			t.Run("right/"+cn+"/"+kind, func(t *testing.T) {
				t.Parallel()
				c := caseNamed(t, cn)
				ref, _ := Play(t, c, NetHTTP)
				g, secrets := PlayGRPC(t, c, right.stack, kind)
				if err := CheckGRPC(ref, g, c.Want, secrets); err != nil {
					t.Errorf("a right stack fails: %v", err)
				}
			})
		}
	}

	withCode := func(code codes.Code) func(*middleware.Error, metadata.MD) error {
		return func(err *middleware.Error, _ metadata.MD) error { return status.Error(code, err.Description) }
	}
	retryOf := func(d time.Duration) func(*middleware.Error, metadata.MD) error {
		return func(err *middleware.Error, md metadata.MD) error {
			if err.Kind != middleware.KindUnavailable {
				return rightAnswer(err, md)
			}
			st, _ := status.New(codes.Unavailable, err.Description).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
			return st.Err()
		}
	}
	flaws := map[string]struct {
		f     flawed
		cases []string
		kinds []string
	}{
		"every refusal unauthenticated": {f: flawed{answer: withCode(codes.Unauthenticated)},
			cases: []string{"user unknown to identity center", "throttled by sts", "configuration error found at run time"}},
		"every refusal permission denied": {f: flawed{answer: withCode(codes.PermissionDenied)},
			cases: []string{"no token", "bytes outside printable ascii"}},
		"no retry info":               {f: flawed{answer: withCode(codes.Unavailable)}, cases: []string{"aws 5xx"}},
		"retry info of another delay": {f: flawed{answer: retryOf(10 * time.Second)}, cases: []string{"throttled by sts"}},
		"retry info of no delay":      {f: flawed{answer: retryOf(0)}, cases: []string{"identity provider unreachable"}},
		"retry info on a 401": {f: flawed{answer: func(err *middleware.Error, _ metadata.MD) error {
			st, _ := status.New(codes.Unauthenticated, err.Description).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
			return st.Err()
		}}, cases: []string{"expired token"}},
		"another detail": {f: flawed{answer: func(err *middleware.Error, md metadata.MD) error {
			st := status.Convert(rightAnswer(err, md))
			st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: err.Code})
			return st.Err()
		}}, cases: []string{"no token"}},
		"message is the error code": {f: flawed{answer: func(err *middleware.Error, md metadata.MD) error {
			return status.Error(status.Code(rightAnswer(err, md)), err.Code)
		}}, cases: []string{"tampered signature", "spent token after the credentials expired"}},
		"message echoes the token": {f: flawed{answer: func(err *middleware.Error, md metadata.MD) error {
			st := status.Convert(rightAnswer(err, md))
			return status.Error(st.Code(), st.Message()+" "+md.Get("authorization")[0])
		}}, cases: []string{"tampered signature", "malformed authorization header"}},
		"handler runs after a refusal": {f: flawed{answer: rightAnswer, goOn: true}, cases: []string{"no token", "aws 5xx"}},
		"handler gets the call's own context": {f: flawed{answer: rightAnswer, original: struct{ unary, stream bool }{true, true}},
			cases: []string{"success"}},
		"stream handler gets the call's own stream": {f: flawed{answer: rightAnswer, original: struct{ unary, stream bool }{false, true}},
			cases: []string{"success, lower-case scheme"}, kinds: []string{Stream}},
	}
	for name, fl := range flaws {
		kinds := fl.kinds
		if kinds == nil {
			kinds = []string{Unary, Stream}
		}
		for _, cn := range fl.cases {
			for _, kind := range kinds {
				t.Run(name+"/"+cn+"/"+kind, func(t *testing.T) {
					t.Parallel()
					c := caseNamed(t, cn)
					ref, _ := Play(t, c, NetHTTP)
					g, secrets := PlayGRPC(t, c, fl.f.stack, kind)
					if CheckGRPC(ref, g, c.Want, secrets) == nil {
						t.Errorf("CheckGRPC noticed nothing; answer %v, reached %v, body %q", g.Status, g.Reached, g.Body)
					}
				})
			}
		}
	}
}

// TestGRPCCode checks the table of DESIGN.md section 3.
func TestGRPCCode(t *testing.T) {
	for s, want := range map[int]codes.Code{200: codes.OK, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 503: codes.Unavailable, 500: codes.Internal} {
		if got, ok := GRPCCode(s); !ok || got != want {
			t.Errorf("GRPCCode(%d) = %v, %v; want %v", s, got, ok, want)
		}
		if back := httpStatus(want); back != s {
			t.Errorf("httpStatus(%v) = %d, want %d", want, back, s)
		}
	}
	if _, ok := GRPCCode(http.StatusTeapot); ok {
		t.Error("GRPCCode(418) has a counterpart")
	}
}

// TestMetadata checks which requests a gRPC call can carry.
func TestMetadata(t *testing.T) {
	r := get("/", "")
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Basic b")
	md, err := Metadata(r)
	if err != nil || len(md) != 1 || len(md["authorization"]) != 2 || md["authorization"][1] != "Basic b" {
		t.Errorf("Metadata = %v, %v", md, err)
	}
	if md, err := Metadata(get("/", "")); err != nil || len(md) != 0 {
		t.Errorf("Metadata of a request without credentials = %v, %v", md, err)
	}
	for _, r := range []*http.Request{get("/?access_token=x", ""), httptestRequest(http.MethodOptions)} {
		if _, err := Metadata(r); err == nil {
			t.Errorf("Metadata of %s %s: no error", r.Method, r.URL)
		}
	}
	for _, c := range Cases() {
		if c.HTTPOnly != "" {
			continue
		}
		if c.Want.Status != 200 && c.Want.Error == "" {
			t.Errorf("case %q: a refusal without a JSON error cannot be compared over gRPC", c.Name)
		}
		if _, ok := GRPCCode(c.Want.Status); !ok {
			t.Errorf("case %q: status %d has no gRPC counterpart", c.Name, c.Want.Status)
		}
	}
}

func httptestRequest(method string) *http.Request {
	r := get("/", "")
	r.Method = method
	return r
}
