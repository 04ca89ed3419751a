// Package demo holds what the file server examples (examples/nethttp,
// examples/gin, examples/echo) share, so that each example's main.go is
// only about its framework: reading the configuration from the environment,
// the local stand-in for AWS with two seeded users, the printed curl
// commands, the self-test, and the mapping of S3 errors to HTTP answers.
//
// Each example calls [Main] with a function that builds its router from an
// [App], or runs an [Example], which adds flags, middleware options and
// self-test checks of its own. The router's handlers call S3 with the
// App's one client, from accessgrants.Cache.S3Client of the public package
// github.com/tipkit/tipkit/accessgrants: each operation is signed with the
// credentials S3 Access Grants (S3 Control GetDataAccess, with the
// caller's aws.Config from the request context) vends for its prefix or
// key.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/middleware"
)

// App is what an example's router needs: the middleware that authenticates
// each request, the bucket its handlers read and write, and the S3 Access
// Grants step between the two.
type App struct {
	// Middleware verifies each request's bearer token and puts the caller's
	// aws.Config in the request context.
	Middleware *middleware.Middleware
	// Bucket is the S3 bucket of the files.
	Bucket string
	// S3 is one S3 client for every caller (accessgrants.Cache.S3Client):
	// each operation is signed with the caller's credentials of S3 Access
	// Grants for its own key or prefix, taken from the request context.
	S3 *s3.Client
}

// AWSApp returns the App of an example served against AWS by mw, with s's
// bucket, and the account of s's S3 Access Grants instance (when empty,
// the account of the callers' access role, asked of STS once). The S3
// client is in s's region; it has no credentials of its own.
func AWSApp(mw *middleware.Middleware, s Settings) (App, error) {
	grants, err := accessgrants.New(accessgrants.Options{AccountID: s.AccountID})
	if err != nil {
		return App{}, err
	}
	return App{Middleware: mw, Bucket: s.Bucket, S3: grants.S3Client(aws.Config{Region: s.Region})}, nil
}

// Router builds an example's HTTP handler from an App.
type Router func(App) http.Handler

// Example is an example program: its name (also the realm of its
// middleware's challenges), its router, and what it adds to what the
// examples share. Main, Run and SelfTest run an Example that adds nothing.
type Example struct {
	Name   string
	Router Router

	// Flags, when set, registers flags of the example's own beside
	// -selftest, -addr and -timeout.
	Flags func(*flag.FlagSet)
	// Options, when set, adjusts the options of the middleware before it
	// is built, once the flags are parsed: locally, in the self-test and
	// against AWS alike. An error stops the example.
	Options func(*middleware.Options) error
	// Check, when set, adds the example's own checks to the self-test.
	Check Check
}

// Check is an example's own part of the self-test, around the users'
// requests.
type Check interface {
	// Before is called once the server serves at base, before the users'
	// requests; an error fails the self-test.
	Before(ctx context.Context, base string) error
	// After is called once the users' requests are done, with what they
	// sent. It prints what it found to w and returns how many checks it
	// made and those that failed, one line each.
	After(ctx context.Context, w io.Writer, sent Sent) (checks int, failed []string)
}

// Sent is what the self-test's requests sent the server.
type Sent struct {
	// Users are the seeded users, with the tokens the requests carried.
	Users []User
	// WithToken counts the requests that carried a user's token;
	// WithoutToken those that carried none.
	WithToken, WithoutToken int
}

// Main is the main function of an example named name: it parses the
// command line (-selftest, -addr), runs, and exits with Run's code.
func Main(name string, router Router) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, name, router, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes of Run.
const (
	ExitOK     = 0 // served until interrupted, or the self-test passed
	ExitFailed = 1 // the self-test found a difference, or the server failed
	ExitUsage  = 2 // bad flags or an incomplete environment
)

// Run runs the example: with -selftest it serves locally, makes the
// requests of the printed curl commands itself, and returns ExitOK only
// when every answer was the expected one. Otherwise it serves until ctx is
// done: against real AWS when getenv names any TIPKIT_ variable but
// TIPKIT_ADDR, else against a local stand-in with two seeded users,
// printing curl commands with a token for each (on TIPKIT_ADDR, or -addr,
// when set).
func Run(ctx context.Context, name string, router Router, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return Example{Name: name, Router: router}.Run(ctx, args, getenv, stdout, stderr)
}

// Run is [Run] for e, with e's flags, options and checks.
func (e Example) Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	name := e.Name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	selftest := fs.Bool("selftest", false, "serve locally, send the example requests, and exit 0 only if every answer is the expected one")
	addr := fs.String("addr", "", "listen address (default $"+EnvAddr+", else "+defaultAddr+")")
	timeout := fs.Duration("timeout", time.Minute, "with -selftest: the longest the self-test may take")
	if e.Flags != nil {
		e.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./examples/%s [-selftest] [-addr host:port]\n\n", name)
		fmt.Fprintf(stderr, "Without environment it serves a local stand-in for AWS with two users.\nAgainst AWS it needs:\n%s\nFlags:\n", EnvHelp(true))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *addr == "" {
		*addr = getenv(EnvAddr)
	}

	if *selftest {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := e.SelfTest(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "%s: self-test FAILED: %v\n", name, err)
			return ExitFailed
		}
		return ExitOK
	}

	settings, err := SettingsFromEnv(getenv)
	switch {
	case errors.Is(err, ErrNoSettings):
		return e.serveLocal(ctx, *addr, stdout, stderr)
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nAgainst AWS it needs:\n%s", name, err, EnvHelp(true))
		return ExitUsage
	}
	if settings.Bucket == "" {
		fmt.Fprintf(stderr, "%s: %s is not set: the bucket of the files\n", name, EnvBucket)
		return ExitUsage
	}
	if *addr == "" {
		*addr = defaultAddr
	}
	return e.serveAWS(ctx, settings, *addr, stdout, stderr)
}

// defaultAddr is where the examples listen unless told otherwise.
const defaultAddr = "127.0.0.1:8080"

// serveAWS serves e against real AWS until ctx is done.
func (e Example) serveAWS(ctx context.Context, s Settings, addr string, stdout, stderr io.Writer) int {
	name := e.Name
	mw, err := newMiddleware(ctx, s, name, e.Options)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	defer mw.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailed
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "%s: serving s3://%s on %s for tokens of %s\n\n", name, s.Bucket, base, s.Issuer)
	fmt.Fprintf(stdout, "With a token of your identity provider in $TOKEN:\n")
	fmt.Fprintf(stdout, "  curl -H \"Authorization: Bearer $TOKEN\" '%s/files?prefix=<your prefix>'\n", base)
	fmt.Fprintf(stdout, "  curl -H \"Authorization: Bearer $TOKEN\" %s/files/<key>\n", base)
	fmt.Fprintf(stdout, "  curl -X PUT --data-binary @file -H \"Authorization: Bearer $TOKEN\" %s/files/<key>\n", base)
	app, err := AWSApp(mw, s)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	return serve(ctx, name, ln, e.Router(app), stderr)
}

// serveLocal starts the local stand-in, prints curl commands for its two
// users, and serves e until ctx is done.
func (e Example) serveLocal(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	name := e.Name
	l, err := startLocal(ctx, name, e.Options)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailed
	}
	defer l.Close()
	ln, err := listenLocal(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailed
	}
	base := "http://" + ln.Addr().String()
	l.PrintCurl(stdout, name, base)
	return serve(ctx, name, ln, e.Router(l.App()), stderr)
}

// listenLocal listens on addr, or on 127.0.0.1:8080 when addr is empty,
// falling back to any free loopback port when 8080 is taken.
func listenLocal(addr string) (net.Listener, error) {
	if addr != "" {
		return net.Listen("tcp", addr)
	}
	if ln, err := net.Listen("tcp", defaultAddr); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// serve serves h on ln until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, name string, ln net.Listener, h http.Handler, stderr io.Writer) int {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailed
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
	}
	return ExitOK
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
