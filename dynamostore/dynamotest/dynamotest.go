// Package dynamotest runs dynalite, a DynamoDB engine on Node.js, for the
// tests of code that shares sessions through
// [github.com/tipkit/tipkit/dynamostore]. The engine listens on a free
// port of 127.0.0.1 and keeps everything in memory.
//
// In a test, [Start] does everything: it skips the test when dynalite is
// not installed, saying how to install it (or fails the test when the
// environment variable TIPKIT_REQUIRE_DYNALITE is 1, as continuous
// integration sets it, so that a missing engine cannot pass for a pass),
// and stops the engine when the test ends:
//
//	func TestSharedSessions(t *testing.T) {
//		srv := dynamotest.Start(t)
//		client := srv.Client()
//		if err := dynamostore.CreateTable(ctx, client, "sessions"); err != nil { ... }
//		store, err := dynamostore.New(client, dynamostore.Options{Table: "sessions", EncryptionKeys: [][]byte{key}})
//		...
//	}
//
// dynalite is found on PATH, or in [Dir] (node_modules/.bin/dynalite),
// where this installs it:
//
//	npm install --prefix ~/.cache/tipkit/dynalite dynalite@4.0.0
//
// (Dir is os.UserCacheDir()/tipkit/dynalite: ~/.cache/tipkit/dynalite on
// Linux, or under $XDG_CACHE_HOME when it is set). dynalite has no time-to-live API: items past their expiry
// stay until deleted.
package dynamotest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tipkit/tipkit/dynamostore/internal/resetretry"
	"github.com/tipkit/tipkit/internal/serverproc"
)

// RequireEnv is the environment variable that, set to 1, makes [Start]
// fail a test rather than skip it when dynalite is not installed.
const RequireEnv = "TIPKIT_REQUIRE_DYNALITE"

// Version is the version of dynalite the tests are written against.
const Version = "4.0.0"

// ErrNotInstalled is the error of [Run] when dynalite is neither on PATH
// nor in [Dir].
var ErrNotInstalled = errors.New("dynamotest: dynalite not found on PATH nor in " + displayDir() +
	": install it (npm install --prefix " + displayDir() + " dynalite@" + Version + ") to run the tests that need DynamoDB")

// startTimeout bounds how long the engine has to answer after it is
// started.
const startTimeout = 15 * time.Second

// Dir returns the folder where dynalite is looked for, and installed:
// os.UserCacheDir()/tipkit/dynalite. It returns "" when the system has
// no cache folder.
func Dir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "tipkit", "dynalite")
}

func displayDir() string {
	if d := Dir(); d != "" {
		return d
	}
	return "<cache folder>/tipkit/dynalite"
}

// find returns the path of dynalite, or "".
func find() string {
	if p, err := exec.LookPath("dynalite"); err == nil {
		return p
	}
	if d := Dir(); d != "" {
		p := filepath.Join(d, "node_modules", ".bin", "dynalite")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Server is a dynalite process, started by [Start] or [Run]. Its methods
// are safe for concurrent use.
type Server struct {
	port int

	mu   sync.Mutex
	proc *serverproc.Process // nil once stopped
}

// Start starts dynalite for tb and stops it when tb ends. When dynalite
// is not installed, it skips tb with a message saying how to install it,
// or fails tb when the environment variable TIPKIT_REQUIRE_DYNALITE
// ([RequireEnv]) is 1. It fails tb when the engine does not start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Run(context.Background())
	serverproc.Require(tb, err, ErrNotInstalled, RequireEnv)
	tb.Cleanup(s.Close)
	return s
}

// Run starts dynalite and returns once it answers, or ctx ends (the wait
// is bounded by 15 seconds besides). It returns [ErrNotInstalled] when
// dynalite is not installed. The caller stops the engine with
// [Server.Close]; should the program die first, Linux stops the engine
// with it.
func Run(ctx context.Context) (*Server, error) {
	path := find()
	if path == "" {
		return nil, ErrNotInstalled
	}
	var s *Server
	err := serverproc.OnFreePort(ctx, "dynamotest", func(port int) error {
		s = &Server{port: port}
		return s.start(ctx, path)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Endpoint returns the engine's URL, http://127.0.0.1:port.
func (s *Server) Endpoint() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Client returns a new DynamoDB client of the engine, with static
// credentials, the region us-east-1 and no retries but of a connection
// reset under a call (as package dynamostore recommends), so that a
// stopped engine fails each call at once.
func (s *Server) Client() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDYNAMOTEST", "dynamotest-secret", ""),
		Retryer:      resetretry.New(),
		// A connection per call: dynalite (Node.js) closes idle
		// keep-alive connections on its own schedule, and a call that
		// reused one as it closed failed in CI with "use of closed
		// network connection" (the client does not retry).
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.DisableKeepAlives = true }),
	})
}

// Stop stops the engine and returns once it has exited: clients' calls
// fail as when DynamoDB cannot be reached, and the tables it held are
// gone. Stopping a stopped engine does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Stop(0)
		s.proc = nil
	}
}

// Close stops the engine, as [Server.Stop] does. Closing again does
// nothing.
func (s *Server) Close() { s.Stop() }

// start starts dynalite on s.port and waits until it answers.
func (s *Server) start(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cmd := exec.Command(path, "--port", strconv.Itoa(s.port), "--host", "127.0.0.1",
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	endpoint := s.Endpoint()
	p, err := serverproc.Start(ctx, "dynamotest: dynalite", s.port, cmd, func(ctx context.Context) bool { return answers(ctx, endpoint) }, 20*time.Millisecond)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// answers reports whether an HTTP server at endpoint answers within a
// second.
func answers(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader([]byte("{}")))
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}
