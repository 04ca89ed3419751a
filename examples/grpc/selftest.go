package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tipkit/tipkit/examples/grpc/filespb"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

// callTimeout bounds each call of the self-test.
const callTimeout = 15 * time.Second

// selfTest serves the file service locally with the two seeded users, over
// a loopback TCP connection, makes the calls of the printed grpcurl
// commands and a few more, prints what each user saw, and returns an error
// unless every answer was the expected one: each user lists and reads their
// own files, writes within their own prefix, and is refused
// (PermissionDenied) the other user's files; a call without a token is
// Unauthenticated while the health check needs none; and the handlers
// asked S3 Access Grants (GetDataAccess) for their S3 credentials.
func selfTest(ctx context.Context, w io.Writer) error {
	l, err := demo.StartLocal(ctx, name)
	if err != nil {
		return err
	}
	defer l.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := newServer(l.App())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	target := ln.Addr().String()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(w, "%s self-test: server %s, local AWS %s, bucket %s\n\n", name, target, l.Env.AWS.URL(), l.Bucket)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	t := &tester{ctx: ctx, files: filespb.NewFilesClient(conn), health: healthpb.NewHealthClient(conn), out: tw}
	fmt.Fprintf(tw, "USER\tCALL\tCODE\tANSWER\n")
	users := l.Users
	for i, u := range users {
		other := users[(i+1)%len(users)]
		t.list(u, u.Prefix, u.Keys())
		t.read(u, u.Keys()[0], u.Files[u.Keys()[0]])
		t.expectGet(u, other.Keys()[0], codes.PermissionDenied, other.Name+"'s file")
		t.expectList(u, other.Prefix, codes.PermissionDenied, other.Name+"'s listing")
		t.expectList(u, "", codes.PermissionDenied, "the whole bucket")
		written := u.Prefix + "selftest.txt"
		content := "written by " + u.Name + "\n"
		t.write(u, written, content)
		t.read(u, written, content)
		t.expectPut(u, other.Prefix+"from-"+u.Name+".txt", codes.PermissionDenied, "a write in "+other.Name+"'s prefix")
		t.expectGet(u, u.Prefix+"missing.txt", codes.NotFound, "a missing key")
	}
	nobody := demo.User{Name: "nobody"}
	t.expectList(nobody, users[0].Prefix, codes.Unauthenticated, "no token")
	t.healthy(nobody)
	tw.Flush()

	dataAccess := l.CheckBucket(users, &t.checks, &t.failed)

	return demo.SelfTestResult(w, t.checks, t.failed, dataAccess)
}

// tester makes the self-test's calls and records what did not match.
type tester struct {
	ctx    context.Context
	files  filespb.FilesClient
	health healthpb.HealthClient
	out    io.Writer
	checks int
	failed []string
}

// as returns a context for one call of u, carrying u's token (none when u
// has none).
func (t *tester) as(u demo.User) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(t.ctx, callTimeout)
	if u.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+u.Token)
	}
	return ctx, cancel
}

// list checks that u's listing of prefix is exactly want.
func (t *tester) list(u demo.User, prefix string, want []string) {
	ctx, cancel := t.as(u)
	defer cancel()
	out, err := t.files.List(ctx, &filespb.ListRequest{Prefix: prefix})
	keys := slices.Clone(out.GetKeys())
	slices.Sort(keys)
	shown := strings.Join(keys, ", ")
	if err != nil {
		shown = status.Convert(err).Message()
	}
	t.report(u, listCall(prefix), err, shown, err == nil && slices.Equal(keys, want),
		fmt.Sprintf("want OK with %s", strings.Join(want, ", ")))
}

// get reads key as u, all of its chunks.
func (t *tester) get(u demo.User, key string) (string, error) {
	ctx, cancel := t.as(u)
	defer cancel()
	stream, err := t.files.Get(ctx, &filespb.GetRequest{Key: key})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.Write(chunk.GetData())
	}
}

// read checks that u reads content at key.
func (t *tester) read(u demo.User, key, content string) {
	got, err := t.get(u, key)
	shown := fmt.Sprintf("%q", summary(got))
	if err != nil {
		shown = status.Convert(err).Message()
	}
	t.report(u, "Get "+key, err, shown, err == nil && got == content, fmt.Sprintf("want OK with %q", content))
}

// write checks that u writes content at key.
func (t *tester) write(u demo.User, key, content string) {
	ctx, cancel := t.as(u)
	defer cancel()
	out, err := t.files.Put(ctx, &filespb.PutRequest{Key: key, Data: []byte(content), ContentType: "text/plain"})
	shown := fmt.Sprintf("wrote %d bytes", out.GetSize())
	if err != nil {
		shown = status.Convert(err).Message()
	}
	t.report(u, "Put "+key, err, shown, err == nil && out.GetKey() == key && out.GetSize() == int64(len(content)),
		"want OK with the written key")
}

// expectGet checks that u's read of key ends with code.
func (t *tester) expectGet(u demo.User, key string, code codes.Code, what string) {
	_, err := t.get(u, key)
	t.expect(u, "Get "+key, err, code, what)
}

// expectList checks that u's listing of prefix ends with code.
func (t *tester) expectList(u demo.User, prefix string, code codes.Code, what string) {
	ctx, cancel := t.as(u)
	defer cancel()
	_, err := t.files.List(ctx, &filespb.ListRequest{Prefix: prefix})
	t.expect(u, listCall(prefix), err, code, what)
}

// expectPut checks that u's write at key ends with code.
func (t *tester) expectPut(u demo.User, key string, code codes.Code, what string) {
	ctx, cancel := t.as(u)
	defer cancel()
	_, err := t.files.Put(ctx, &filespb.PutRequest{Key: key, Data: []byte("not yours\n")})
	t.expect(u, "Put "+key, err, code, what)
}

// expect checks that err has code and a message.
func (t *tester) expect(u demo.User, call string, err error, code codes.Code, what string) {
	st := status.Convert(err)
	t.report(u, call, err, st.Message()+"   ("+what+")", st.Code() == code && st.Message() != "",
		fmt.Sprintf("want %s with a message", code))
}

// healthy checks that the health service answers SERVING without a token.
func (t *tester) healthy(u demo.User) {
	ctx, cancel := t.as(u)
	defer cancel()
	out, err := t.health.Check(ctx, &healthpb.HealthCheckRequest{})
	t.report(u, "Health/Check", err, out.GetStatus().String()+"   (no token needed)",
		err == nil && out.GetStatus() == healthpb.HealthCheckResponse_SERVING, "want OK with SERVING")
}

// report prints one line and records a failure.
func (t *tester) report(u demo.User, call string, err error, shown string, ok bool, want string) {
	t.checks++
	code := status.Code(err)
	line := fmt.Sprintf("%s\t%s\t%s\t%s", u.Name, call, code, shown)
	if !ok {
		line += "   <-- FAIL: " + want
		t.failed = append(t.failed, fmt.Sprintf("%s %s: got %s (%s), %s", u.Name, call, code, shown, want))
	}
	fmt.Fprintln(t.out, line)
}

// listCall names the listing of prefix in the self-test's table.
func listCall(prefix string) string { return fmt.Sprintf("List %q", prefix) }

// summary shortens content to one line of at most 48 bytes.
func summary(content string) string {
	s := strings.TrimSpace(content)
	if len(s) > 48 {
		s = s[:45] + "..."
	}
	return s
}
