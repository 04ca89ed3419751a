package answertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// GRPCStack mounts m on a gRPC server the way one gRPC adapter does: it
// returns the unary and the stream interceptor of m.
type GRPCStack func(m *middleware.Middleware) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor)

// Kinds of gRPC call a case is played as.
const (
	Unary  = "unary"
	Stream = "stream"
)

// GRPCAnswer is what a gRPC server answered to one call.
type GRPCAnswer struct {
	// Status is the call's status: OK when the next handler answered.
	Status *status.Status
	// Body is what the next handler wrote, on OK.
	Body []byte
	// Reached tells whether the next handler ran.
	Reached bool
	// Direct tells that the interceptor was called directly, with the
	// call's metadata in its context, rather than through a connection:
	// grpc-go's client refuses to send metadata values outside printable
	// ASCII.
	Direct bool
}

// Service names of the table's gRPC service: one unary method and one
// bidirectional stream, each of which runs the next handler once.
const (
	grpcService = "tipkit.answertest.Table"
	unaryMethod = "/" + grpcService + "/Call"
	streamName  = "Stream"
	streamFull  = "/" + grpcService + "/" + streamName
)

// grpcServer runs the next handler of the table for gRPC calls.
type grpcServer struct {
	next    http.Handler
	reached atomic.Bool
}

// call runs the next handler with the call's context and returns its body;
// an answer other than 200 becomes an Unknown status naming it.
func (s *grpcServer) call(ctx context.Context) (*wrapperspb.BytesValue, error) {
	s.reached.Store(true)
	w := httptest.NewRecorder()
	s.next.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
	if w.Code != http.StatusOK {
		return nil, status.Errorf(codes.Unknown, "the next handler answered %d: %s", w.Code, w.Body)
	}
	return wrapperspb.Bytes(w.Body.Bytes()), nil
}

func (s *grpcServer) unary(ctx context.Context, _ any) (any, error) { return s.call(ctx) }

func (s *grpcServer) stream(_ any, ss grpc.ServerStream) error {
	if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
		return err
	}
	reply, err := s.call(ss.Context())
	if err != nil {
		return err
	}
	return ss.SendMsg(reply)
}

// serviceDesc is the table's service, registered by hand: its messages
// are well-known types, so no generated code is needed.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			s := srv.(*grpcServer)
			if in == nil {
				return s.unary(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: unaryMethod}, s.unary)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    streamName,
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*grpcServer).stream(srv, ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// grpcTimeout bounds one call of the table.
const grpcTimeout = 30 * time.Second

// grpcStack is a gRPC server on an in-memory listener with a client
// connection to it.
type grpcStack struct {
	srv    *grpcServer
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
	conn   *grpc.ClientConn
}

// startGRPC serves the table's service behind the interceptors of stack
// for m, with next behind them, until t ends.
func startGRPC(t testing.TB, m *middleware.Middleware, stack GRPCStack, next http.Handler) *grpcStack {
	t.Helper()
	g := &grpcStack{srv: &grpcServer{next: next}}
	g.unary, g.stream = stack(m)
	var opts []grpc.ServerOption
	if g.unary != nil {
		opts = append(opts, grpc.UnaryInterceptor(g.unary))
	}
	if g.stream != nil {
		opts = append(opts, grpc.StreamInterceptor(g.stream))
	}
	server := grpc.NewServer(opts...)
	server.RegisterService(&serviceDesc, g.srv)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient("passthrough:///answertest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	g.conn = conn
	return g
}

// do makes one call of kind with md, through the connection when grpc-go's
// client can send md, else by calling the interceptor directly.
func (g *grpcStack) do(kind string, md metadata.MD) GRPCAnswer {
	ctx, cancel := context.WithTimeout(context.Background(), grpcTimeout)
	defer cancel()
	g.srv.reached.Store(false)
	var (
		a     GRPCAnswer
		reply *wrapperspb.BytesValue
		err   error
	)
	a.Direct = !sendable(md)
	switch {
	case a.Direct:
		reply, err = g.direct(metadata.NewIncomingContext(ctx, md), kind)
	case kind == Stream:
		reply, err = g.callStream(metadata.NewOutgoingContext(ctx, md))
	default:
		reply = new(wrapperspb.BytesValue)
		err = g.conn.Invoke(metadata.NewOutgoingContext(ctx, md), unaryMethod, new(emptypb.Empty), reply)
	}
	a.Status = status.Convert(err)
	if err == nil && reply != nil {
		a.Body = reply.GetValue()
	}
	a.Reached = g.srv.reached.Load()
	return a
}

// callStream opens the stream, sends one empty message and reads the reply.
func (g *grpcStack) callStream(ctx context.Context) (*wrapperspb.BytesValue, error) {
	cs, err := g.conn.NewStream(ctx, &serviceDesc.Streams[0], streamFull)
	if err != nil {
		return nil, err
	}
	// A refused stream may be closed before the message is sent: the
	// status then comes with RecvMsg.
	if err := cs.SendMsg(new(emptypb.Empty)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	reply := new(wrapperspb.BytesValue)
	if err := cs.RecvMsg(reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// direct calls the interceptor of kind as grpc-go's server would, with
// ctx holding the call's incoming metadata.
func (g *grpcStack) direct(ctx context.Context, kind string) (*wrapperspb.BytesValue, error) {
	if kind == Stream {
		if g.stream == nil {
			return g.srv.call(ctx)
		}
		ss := &directStream{ctx: ctx}
		err := g.stream(g.srv, ss, &grpc.StreamServerInfo{FullMethod: streamFull, IsClientStream: true, IsServerStream: true}, g.srv.stream)
		return ss.reply, err
	}
	if g.unary == nil {
		return g.srv.call(ctx)
	}
	reply, err := g.unary(ctx, new(emptypb.Empty), &grpc.UnaryServerInfo{Server: g.srv, FullMethod: unaryMethod}, g.srv.unary)
	r, _ := reply.(*wrapperspb.BytesValue)
	return r, err
}

// directStream is the server side of a stream that receives one empty
// message and keeps the reply.
type directStream struct {
	ctx   context.Context
	reply *wrapperspb.BytesValue
}

func (s *directStream) SetHeader(metadata.MD) error  { return nil }
func (s *directStream) SendHeader(metadata.MD) error { return nil }
func (s *directStream) SetTrailer(metadata.MD)       {}
func (s *directStream) Context() context.Context     { return s.ctx }
func (s *directStream) RecvMsg(any) error            { return nil }
func (s *directStream) SendMsg(m any) error {
	s.reply, _ = m.(*wrapperspb.BytesValue)
	return nil
}

// sendable reports whether grpc-go's client sends md: every value of a key
// not ending in "-bin" is printable ASCII.
func sendable(md metadata.MD) bool {
	for k, vs := range md {
		if strings.HasSuffix(k, "-bin") {
			continue
		}
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					return false
				}
			}
		}
	}
	return true
}

// Metadata returns the gRPC metadata that carries r's credentials: each of
// its Authorization header values as an "authorization" value. It returns
// an error when r holds anything else the middleware reads (a query
// string, a method other than GET, a form), which a gRPC call cannot
// carry: such a case must be HTTPOnly.
func Metadata(r *http.Request) (metadata.MD, error) {
	if r.Method != http.MethodGet || r.URL.RawQuery != "" || r.PostForm != nil {
		return nil, fmt.Errorf("%s %s cannot be carried by a gRPC call", r.Method, r.URL)
	}
	md := metadata.MD{}
	for _, v := range r.Header.Values("Authorization") {
		md.Append("authorization", v)
	}
	return md, nil
}

// PlayGRPC plays c as a call of kind (Unary or Stream) through the
// interceptors of stack against a fresh tiptest environment, as [Play]
// does over HTTP, and returns the answer with the secrets it must not
// hold. The requests of c become calls carrying their Authorization header
// values as "authorization" metadata ([Metadata]).
func PlayGRPC(t testing.TB, c Case, stack GRPCStack, kind string) (GRPCAnswer, []string) {
	t.Helper()
	env := tiptest.New(t)
	m := newMiddleware(t, env, c)
	var reached bool // Next's own mark; the server keeps its own
	g := startGRPC(t, m, stack, Next(env, &reached))
	call := func(r *http.Request) (GRPCAnswer, error) {
		md, err := Metadata(r)
		if err != nil {
			return GRPCAnswer{}, err
		}
		return g.do(kind, md), nil
	}
	// Earlier requests of Prepare see the call's outcome as an HTTP status.
	serve := func(r *http.Request) Answer {
		a, err := call(r)
		if err != nil {
			t.Fatalf("prepare: %v", err)
		}
		return Answer{Status: httpStatus(a.Status.Code()), Body: []byte(a.Status.Message()), Reached: a.Reached}
	}
	r, secrets, err := c.Prepare(env, serve)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	a, err := call(r)
	if err != nil {
		t.Fatalf("case %q: %v", c.Name, err)
	}
	return a, secrets
}

// GRPCCode returns the code of the gRPC status that answers an HTTP
// status of the table, as DESIGN.md section 3 asks, and false for a
// status that has none.
func GRPCCode(httpStatus int) (codes.Code, bool) {
	switch httpStatus {
	case http.StatusOK:
		return codes.OK, true
	case http.StatusUnauthorized:
		return codes.Unauthenticated, true
	case http.StatusForbidden:
		return codes.PermissionDenied, true
	case http.StatusServiceUnavailable:
		return codes.Unavailable, true
	case http.StatusInternalServerError:
		return codes.Internal, true
	}
	return codes.Unknown, false
}

// httpStatus is the HTTP status whose answer code is, for the requests
// of Prepare.
func httpStatus(code codes.Code) int {
	for _, s := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable} {
		if c, _ := GRPCCode(s); c == code {
			return s
		}
	}
	return http.StatusInternalServerError
}

// CheckGRPC reports, as one error, how the gRPC answer g differs from the
// answer the table expects: the code of w.Status ([GRPCCode]); on a
// refusal, the message equal to the error_description of ref, the net/http
// answer to the same case (its error code when it has no description), and
// mentioning w.Description; on Unavailable, one google.rpc.RetryInfo
// detail whose delay, in whole seconds rounded up, is ref's Retry-After,
// and no RetryInfo otherwise; no other detail; whether the next handler
// ran and whose credentials it received; and that neither the message,
// the details nor the body hold one of secrets.
func CheckGRPC(ref Answer, g GRPCAnswer, w Want, secrets []string) error {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	st := g.Status
	if st == nil {
		st = status.New(codes.OK, "")
	}
	want, ok := GRPCCode(w.Status)
	switch {
	case !ok:
		fail("HTTP status %d has no gRPC counterpart: the case must be HTTPOnly", w.Status)
	case st.Code() != want:
		fail("code %s (%q), want %s", st.Code(), st.Message(), want)
	}
	var details []string
	var retry []*errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = append(retry, d)
			details = append(details, prototext.Format(d))
		case error:
			fail("a detail cannot be read: %v", d)
		default:
			details = append(details, fmt.Sprint(d))
			fail("unexpected detail %T %v", d, d)
		}
	}
	if st.Code() != codes.OK && want != codes.OK {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(ref.Body, &body); err != nil {
			fail("the net/http answer %q is not JSON: %v", ref.Body, err)
		}
		wantMsg := body.Description
		if wantMsg == "" {
			wantMsg = body.Error
		}
		if st.Message() != wantMsg {
			fail("message %q, want the net/http answer's %q", st.Message(), wantMsg)
		}
		if !strings.Contains(st.Message(), w.Description) {
			fail("message %q, want it to mention %q", st.Message(), w.Description)
		}
	}
	switch {
	case want != codes.Unavailable && len(retry) > 0:
		fail("RetryInfo %v, want none", retry)
	case want == codes.Unavailable && len(retry) != 1:
		fail("%d RetryInfo details, want one", len(retry))
	case want == codes.Unavailable:
		d := retry[0].GetRetryDelay()
		header, err := strconv.Atoi(ref.Header.Get("Retry-After"))
		switch {
		case d == nil || d.CheckValid() != nil || d.AsDuration() <= 0:
			fail("RetryInfo delay %v, want a positive duration", d)
		case err != nil:
			fail("the net/http answer has no Retry-After to compare with: %q", ref.Header.Get("Retry-After"))
		case int(math.Max(1, math.Ceil(d.AsDuration().Seconds()))) != header:
			fail("RetryInfo delay %v, want the net/http answer's Retry-After: %d s", d.AsDuration(), header)
		}
	}
	if g.Reached != w.Reached {
		fail("next handler ran: %v, want %v", g.Reached, w.Reached)
	}
	if g.Reached && st.Code() == codes.OK {
		var body struct {
			User string `json:"user"`
		}
		if err := json.Unmarshal(g.Body, &body); err != nil || body.User != w.User {
			fail("next handler received the credentials of %q (body %q), want %q", body.User, g.Body, w.User)
		}
	}
	seen := Answer{Header: http.Header{"Grpc-Message": {st.Message()}, "Grpc-Status-Details": details}, Body: g.Body}
	for _, s := range secrets {
		if leak := Leak(seen, s); leak != "" {
			fail("the answer holds the token: %s", strings.NewReplacer("header Grpc-Message", "the message", "header Grpc-Status-Details", "a detail").Replace(leak))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "; "))
}

// RunGRPC plays every case of [Cases] through net/http ([NetHTTP]) and
// through stack as a unary call and as a stream, in parallel subtests. A
// case marked HTTPOnly is skipped with its reason. The net/http answer
// must be the case's expected one, and each gRPC answer the one
// [CheckGRPC] derives from it.
func RunGRPC(t *testing.T, stack GRPCStack) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			if c.HTTPOnly != "" {
				t.Skip("HTTP only: " + c.HTTPOnly)
			}
			t.Parallel()
			ref, secrets := Play(t, c, NetHTTP)
			if err := Check(ref, c.Want, secrets); err != nil {
				t.Errorf("net/http: %v", err)
			}
			for _, kind := range []string{Unary, Stream} {
				g, secrets := PlayGRPC(t, c, stack, kind)
				if err := CheckGRPC(ref, g, c.Want, secrets); err != nil {
					via := ""
					if g.Direct {
						via = " (interceptor called directly)"
					}
					t.Errorf("gRPC %s%s: %v", kind, via, err)
				}
			}
		})
	}
}
