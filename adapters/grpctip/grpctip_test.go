package grpctip_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tipkit/tipkit/adapters/grpctip"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/internal/answertest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// TestAnswers plays the whole answer table over gRPC, as unary calls and
// as streams: each status is the one of the net/http answer.
func TestAnswers(t *testing.T) {
	answertest.RunGRPC(t, func(m *middleware.Middleware) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
		return grpctip.UnaryServerInterceptor(m), grpctip.StreamServerInterceptor(m)
	})
}

// whoServer answers who is calling, as the handlers see it: the subject of
// the caller's identity (after its tenant and a slash, when it has one)
// and the tiptest user whose credentials they received, "-" for none.
type whoServer struct{ env *tiptest.Env }

func (s whoServer) who(ctx context.Context) string {
	subject, user := "-", "-"
	if id, ok := ctxcreds.IdentityFrom(ctx); ok {
		subject = id.Subject()
		if id.Tenant() != "" {
			subject = id.Tenant() + "/" + subject
		}
	}
	if cfg, ok := ctxcreds.Config(ctx); ok {
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return "credentials: " + err.Error()
		}
		user, _ = s.env.AWS.UserFor(creds.AccessKeyID)
	}
	return subject + " " + user
}

// whoDesc is the service of whoServer: Call (unary) and Chat (a
// bidirectional stream that sets a header, then answers each message).
var whoDesc = grpc.ServiceDesc{
	ServiceName: "grpctip.test.Who",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) { return wrapperspb.String(srv.(whoServer).who(ctx)), nil }
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/grpctip.test.Who/Call"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName: "Chat",
		Handler: func(srv any, ss grpc.ServerStream) error {
			who := srv.(whoServer).who(ss.Context())
			if err := ss.SetHeader(metadata.Pairs("x-who", who)); err != nil {
				return err
			}
			for {
				in := new(wrapperspb.StringValue)
				if err := ss.RecvMsg(in); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if err := ss.SendMsg(wrapperspb.String(in.GetValue() + ": " + who)); err != nil {
					return err
				}
			}
		},
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// newMiddleware returns a middleware of the answer table's options over
// env; edit, when not nil, changes them first.
func newMiddleware(t *testing.T, env *tiptest.Env, edit func(*middleware.Options)) *middleware.Middleware {
	t.Helper()
	if edit == nil {
		return middlewaretest.New(t, env, answertest.WithRealm)
	}
	return middlewaretest.New(t, env, answertest.WithRealm, edit)
}

// serveWho serves whoServer behind the interceptors of m with opts, and
// returns a client connection to it.
func serveWho(t *testing.T, env *tiptest.Env, m *middleware.Middleware, opts ...grpctip.Option) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpctip.UnaryServerInterceptor(m, opts...)),
		grpc.ChainStreamInterceptor(grpctip.StreamServerInterceptor(m, opts...)),
	)
	srv.RegisterService(&whoDesc, whoServer{env})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///who",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// withToken returns a context of at most ten seconds whose calls carry
// token as a bearer token (none when empty).
func withToken(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// call makes a unary call and returns the answer, or the status's code.
func call(t *testing.T, conn *grpc.ClientConn, method, token string) (string, codes.Code) {
	t.Helper()
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(withToken(t, token), method, new(emptypb.Empty), out); err != nil {
		return "", status.Code(err)
	}
	return out.GetValue(), codes.OK
}

// chat sends msgs on a Chat stream and returns the x-who header and the
// answers.
func chat(t *testing.T, conn *grpc.ClientConn, method, token string, msgs ...string) (string, []string, error) {
	t.Helper()
	cs, err := conn.NewStream(withToken(t, token), &whoDesc.Streams[0], method)
	if err != nil {
		return "", nil, err
	}
	for _, m := range msgs {
		if err := cs.SendMsg(wrapperspb.String(m)); err != nil && !errors.Is(err, io.EOF) {
			return "", nil, err
		}
	}
	if err := cs.CloseSend(); err != nil {
		return "", nil, err
	}
	var got []string
	for {
		out := new(wrapperspb.StringValue)
		if err := cs.RecvMsg(out); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", got, err
		}
		got = append(got, out.GetValue())
	}
	h, err := cs.Header()
	if err != nil {
		return "", got, err
	}
	return strings.Join(h.Get("x-who"), ","), got, nil
}

// TestCallers checks that unary and stream handlers see each caller's own
// identity and credentials, and that a stream keeps working through the
// wrapped ServerStream (headers, several messages each way).
func TestCallers(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, nil)
	conn := serveWho(t, env, m)
	for _, u := range []string{"alice", "bob", "alice"} {
		tok := env.IdP.Token(u)
		if got, code := call(t, conn, "/grpctip.test.Who/Call", tok); code != codes.OK || got != u+" "+u {
			t.Errorf("%s, unary: %q %v, want %q", u, got, code, u+" "+u)
		}
		header, got, err := chat(t, conn, "/grpctip.test.Who/Chat", tok, "one", "two", "three")
		want := []string{"one: " + u + " " + u, "two: " + u + " " + u, "three: " + u + " " + u}
		if err != nil || header != u+" "+u || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s, stream: header %q, answers %q, %v; want %q, %q", u, header, got, err, u+" "+u, want)
		}
	}
	if st := m.Stats(); st.Requests != 6 || st.Exchanges != 2 {
		t.Errorf("Stats: %d requests, %d exchanges; want 6 and 2", st.Requests, st.Exchanges)
	}
}

// TestRefusedStreamReadsNothing checks that a refused stream ends with the
// refusal before its handler runs, even when the client keeps sending.
func TestRefusedStreamReadsNothing(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, nil)
	conn := serveWho(t, env, m)
	_, got, err := chat(t, conn, "/grpctip.test.Who/Chat", "not-a-jwt", "one", "two")
	if status.Code(err) != codes.Unauthenticated || len(got) != 0 {
		t.Errorf("answers %q, %v; want none and Unauthenticated", got, err)
	}
}

// TestSkipper checks that a call WithSkipper picks reaches its handler
// untouched, without the middleware seeing it, with or without a token,
// while the others are still decided by the middleware.
func TestSkipper(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, nil)
	var seen []string
	skip := grpctip.WithSkipper(func(ctx context.Context, method string) bool {
		if _, ok := metadata.FromIncomingContext(ctx); !ok {
			t.Errorf("the skipper's context of %s has no metadata", method)
		}
		seen = append(seen, method)
		return method == "/grpctip.test.Who/Chat"
	})
	conn := serveWho(t, env, m, skip)
	for _, tok := range []string{"", "not-a-jwt", env.IdP.Token("alice")} {
		header, got, err := chat(t, conn, "/grpctip.test.Who/Chat", tok, "hi")
		if err != nil || header != "- -" || len(got) != 1 || got[0] != "hi: - -" {
			t.Errorf("token %.10q: skipped stream answered %q %q, %v; want no caller", tok, header, got, err)
		}
	}
	if n := m.Stats().Requests; n != 0 {
		t.Errorf("the middleware saw %d skipped calls", n)
	}
	if _, code := call(t, conn, "/grpctip.test.Who/Call", ""); code != codes.Unauthenticated {
		t.Errorf("call not skipped, without a token: %v, want Unauthenticated", code)
	}
	if got, code := call(t, conn, "/grpctip.test.Who/Call", env.IdP.Token("bob")); code != codes.OK || got != "bob bob" {
		t.Errorf("call not skipped, with a token: %q %v", got, code)
	}
	if len(seen) != 5 {
		t.Errorf("the skipper saw %q, want 5 calls", seen)
	}
	// A nil skipper, and a nil Option, skip nothing.
	conn = serveWho(t, env, m, grpctip.WithSkipper(nil), nil)
	if _, code := call(t, conn, "/grpctip.test.Who/Call", ""); code != codes.Unauthenticated {
		t.Errorf("nil skipper: %v, want Unauthenticated", code)
	}
}

// TestOptional checks that Options.Optional lets a call without a token
// through anonymously and still refuses a bad one, as over HTTP.
func TestOptional(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, func(o *middleware.Options) { o.Optional = true })
	conn := serveWho(t, env, m)
	if got, code := call(t, conn, "/grpctip.test.Who/Call", ""); code != codes.OK || got != "- -" {
		t.Errorf("no token: %q %v, want an anonymous call", got, code)
	}
	if _, code := call(t, conn, "/grpctip.test.Who/Call", "not-a-jwt"); code != codes.Unauthenticated {
		t.Errorf("bad token: %v, want Unauthenticated", code)
	}
	if st := m.Stats(); st.Anonymous != 1 {
		t.Errorf("Stats.Anonymous = %d, want 1", st.Anonymous)
	}
}

// TestMetadataForms checks the forms of "authorization" metadata that
// reach the interceptor directly (a server gets them from any HTTP/2
// client): several values, another scheme, bytes outside a token, or a key
// in another case.
func TestMetadataForms(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env, nil)
	tok := env.IdP.Token("alice")
	unary := grpctip.UnaryServerInterceptor(m)
	info := &grpc.UnaryServerInfo{FullMethod: "/grpctip.test.Who/Call"}
	for _, tc := range []struct {
		name string
		md   metadata.MD
		code codes.Code
		msg  string
	}{
		{"none", metadata.MD{}, codes.Unauthenticated, "a bearer token is required"},
		{"basic", metadata.MD{"authorization": {"Basic YWxpY2U6c2VjcmV0"}}, codes.Unauthenticated, "a bearer token is required"},
		{"two", metadata.MD{"authorization": {"Bearer " + tok, "Bearer " + tok}}, codes.Unauthenticated, "more than one"},
		{"empty bearer", metadata.MD{"authorization": {"Bearer"}}, codes.Unauthenticated, "no token"},
		{"control byte", metadata.MD{"authorization": {"Bearer " + tok[:10] + "\x00" + tok[10:]}}, codes.Unauthenticated, "outside printable ASCII"},
		{"obs-text", metadata.MD{"authorization": {"Bearer " + tok + "\xe9"}}, codes.Unauthenticated, "outside printable ASCII"},
		{"comma", metadata.MD{"authorization": {"Bearer " + tok + "," + tok}}, codes.Unauthenticated, "malformed"},
		{"upper-case key", metadata.MD{"Authorization": {"Bearer " + tok}}, codes.OK, ""},
		{"two spaces", metadata.MD{"authorization": {"bEaReR  " + tok}}, codes.OK, ""},
	} {
		var ran bool
		_, err := unary(metadata.NewIncomingContext(context.Background(), tc.md), nil, info, func(ctx context.Context, _ any) (any, error) {
			_, ran = ctxcreds.Config(ctx)
			return nil, nil
		})
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) || ran != (tc.code == codes.OK) {
			t.Errorf("%s: %v %q, handler with credentials %v; want %v %q", tc.name, st.Code(), st.Message(), ran, tc.code, tc.msg)
		}
		if strings.Contains(st.Message(), tok[:20]) {
			t.Errorf("%s: the message holds the token", tc.name)
		}
	}
	// A context without metadata is a call without a token.
	_, err := unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, nil })
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no metadata: %v, want Unauthenticated", err)
	}
}

func TestNilMiddleware(t *testing.T) {
	for name, mk := range map[string]func(){
		"UnaryServerInterceptor":  func() { grpctip.UnaryServerInterceptor(nil) },
		"StreamServerInterceptor": func() { grpctip.StreamServerInterceptor(nil) },
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "nil") {
					t.Errorf("%s: recovered %v, want a panic naming the nil middleware", name, v)
				}
			}()
			mk()
		}()
	}
}
