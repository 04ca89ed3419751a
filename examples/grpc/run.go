package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/tipkit/tipkit/examples/grpc/filespb"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

// name is the example's name in messages and challenges.
const name = "grpc"

// defaultAddr is where the server listens unless told otherwise, as the
// HTTP examples do.
const defaultAddr = "127.0.0.1:8080"

// run runs the example as demo.Run runs the HTTP ones: with -selftest it
// serves locally, makes the calls of the printed grpcurl commands itself,
// and returns demo.ExitOK only when every answer was the expected one.
// Otherwise it serves until ctx is done: against real AWS when getenv names
// any TIPKIT_ variable but TIPKIT_ADDR, else against a local stand-in with
// two seeded users, printing grpcurl commands with a token for each.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	selftest := fs.Bool("selftest", false, "serve locally, make the example calls, and exit 0 only if every answer is the expected one")
	addr := fs.String("addr", "", "listen address (default $"+demo.EnvAddr+", else "+defaultAddr+")")
	timeout := fs.Duration("timeout", time.Minute, "with -selftest: the longest the self-test may take")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./examples/%s [-selftest] [-addr host:port]\n\n", name)
		fmt.Fprintf(stderr, "Without environment it serves a local stand-in for AWS with two users.\nAgainst AWS it needs:\n%s\nFlags:\n", demo.EnvHelp(true))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return demo.ExitOK
		}
		return demo.ExitUsage
	}
	if *addr == "" {
		*addr = getenv(demo.EnvAddr)
	}

	if *selftest {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := selfTest(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "%s: self-test FAILED: %v\n", name, err)
			return demo.ExitFailed
		}
		return demo.ExitOK
	}

	settings, err := demo.SettingsFromEnv(getenv)
	switch {
	case errors.Is(err, demo.ErrNoSettings):
		return serveLocal(ctx, *addr, stdout, stderr)
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nAgainst AWS it needs:\n%s", name, err, demo.EnvHelp(true))
		return demo.ExitUsage
	}
	if settings.Bucket == "" {
		fmt.Fprintf(stderr, "%s: %s is not set: the bucket of the files\n", name, demo.EnvBucket)
		return demo.ExitUsage
	}
	if *addr == "" {
		*addr = defaultAddr
	}
	return serveAWS(ctx, settings, *addr, stdout, stderr)
}

// serveAWS serves the file service against real AWS until ctx is done.
func serveAWS(ctx context.Context, s demo.Settings, addr string, stdout, stderr io.Writer) int {
	mw, err := demo.NewMiddleware(ctx, s, name)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitUsage
	}
	defer mw.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitFailed
	}
	target := ln.Addr().String()
	fmt.Fprintf(stdout, "%s: serving s3://%s over gRPC on %s (plaintext) for tokens of %s\n\n", name, s.Bucket, target, s.Issuer)
	fmt.Fprintf(stdout, "With a token of your identity provider in $TOKEN, and grpcurl (the server has reflection):\n")
	fmt.Fprintf(stdout, "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{\"prefix\":\"<your prefix>\"}' %s %s\n", target, rpcName("List"))
	fmt.Fprintf(stdout, "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{\"key\":\"<key>\"}' %s %s\n", target, rpcName("Get"))
	app, err := demo.AWSApp(mw, s)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitUsage
	}
	return serve(ctx, ln, newServer(app), stderr)
}

// serveLocal starts the local stand-in, prints grpcurl commands for its
// two users, and serves until ctx is done.
func serveLocal(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	l, err := demo.StartLocal(ctx, name)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitFailed
	}
	defer l.Close()
	ln, err := listenLocal(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitFailed
	}
	printLocal(stdout, l, ln.Addr().String())
	return serve(ctx, ln, newServer(l.App()), stderr)
}

// listenLocal listens on addr, or on defaultAddr when addr is empty,
// falling back to any free loopback port when that is taken.
func listenLocal(addr string) (net.Listener, error) {
	if addr != "" {
		return net.Listen("tcp", addr)
	}
	if ln, err := net.Listen("tcp", defaultAddr); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// serve serves srv on ln until ctx is done, then stops gracefully, within
// five seconds.
func serve(ctx context.Context, ln net.Listener, srv *grpc.Server, stderr io.Writer) int {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return demo.ExitFailed
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	return demo.ExitOK
}

// rpcName is the full name of a method of the file service, as grpcurl
// takes it.
func rpcName(m string) string { return filespb.Files_ServiceDesc.ServiceName + "/" + m }

// printLocal prints where everything runs and the grpcurl commands that
// show each user reaching only their own files.
func printLocal(w io.Writer, l *demo.Local, target string) {
	alice, bob := l.Users[0], l.Users[1]
	fmt.Fprintf(w, "%s: serving gRPC on %s (plaintext)\n", name, target)
	fmt.Fprintf(w, "  local identity provider %s\n  local AWS               %s (bucket %s)\n\n", l.Env.IdP.Issuer(), l.Env.AWS.URL(), l.Bucket)
	fmt.Fprintf(w, "Two users, one server, one IAM role: S3 Access Grants lets each user reach only their own prefix.\n")
	fmt.Fprintf(w, "Paste into another shell (the tokens are valid for %s); grpcurl finds the service through reflection:\n\n", demo.TokenLifetime)
	fmt.Fprintf(w, "  ALICE=%s\n  BOB=%s\n\n", shellQuote(alice.Token), shellQuote(bob.Token))
	fmt.Fprintf(w, "  grpcurl -plaintext -H \"authorization: Bearer $ALICE\" -d '{\"prefix\":\"%s\"}' %s %s\n", alice.Prefix, target, rpcName("List"))
	fmt.Fprintf(w, "  grpcurl -plaintext -H \"authorization: Bearer $BOB\" -d '{\"prefix\":\"%s\"}' %s %s\n\n", bob.Prefix, target, rpcName("List"))
	fmt.Fprintf(w, "  grpcurl -plaintext -H \"authorization: Bearer $ALICE\" -d '{\"key\":\"%s\"}' %s %s\n", alice.Keys()[0], target, rpcName("Get"))
	fmt.Fprintf(w, "  grpcurl -plaintext -H \"authorization: Bearer $ALICE\" -d '{\"key\":\"%s\"}' %s %s   # PermissionDenied: %s's file\n", bob.Keys()[0], target, rpcName("Get"), bob.Name)
	fmt.Fprintf(w, "  grpcurl -plaintext -H \"authorization: Bearer $ALICE\" -d '{\"key\":\"%shello.txt\",\"data\":\"aGVsbG8=\"}' %s %s\n", alice.Prefix, target, rpcName("Put"))
	fmt.Fprintf(w, "  grpcurl -plaintext %s grpc.health.v1.Health/Check   # no token needed\n\n", target)
	fmt.Fprintf(w, "Ctrl-C stops the server.\n")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
