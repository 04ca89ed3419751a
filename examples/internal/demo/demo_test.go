package demo

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/middleware"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSettingsFromEnv(t *testing.T) {
	full := map[string]string{
		EnvIssuer:         "https://idp.example.com",
		EnvAudience:       " app-a , app-b ,",
		EnvApplicationArn: "arn:aws:sso::111122223333:application/ssoins-1/apl-1",
		EnvAccessRoleArn:  "arn:aws:iam::111122223333:role/UserAccess",
		EnvRegion:         "us-east-1",
		EnvBucket:         "files",
	}
	s, err := SettingsFromEnv(envOf(full))
	if err != nil {
		t.Fatal(err)
	}
	if s.Issuer != full[EnvIssuer] || !slices.Equal(s.Audience, []string{"app-a", "app-b"}) || s.Bucket != "files" ||
		s.ApplicationRoleArn != "" || s.Region != "us-east-1" {
		t.Fatalf("settings %+v", s)
	}

	if _, err := SettingsFromEnv(envOf(nil)); !errors.Is(err, ErrNoSettings) {
		t.Fatalf("empty environment: err = %v, want ErrNoSettings", err)
	}
	// AWS_REGION alone is an ordinary AWS setting, and TIPKIT_ADDR alone a
	// listen address that local mode honours too: still local.
	for _, k := range []string{EnvRegion, EnvAddr} {
		if _, err := SettingsFromEnv(envOf(map[string]string{k: "127.0.0.1:9090"})); !errors.Is(err, ErrNoSettings) {
			t.Fatalf("%s alone: err = %v, want ErrNoSettings", k, err)
		}
	}
	withAccount := maps.Clone(full)
	withAccount[EnvAccountID] = "111122223333"
	if s, err := SettingsFromEnv(envOf(withAccount)); err != nil || s.AccountID != "111122223333" {
		t.Fatalf("TIPKIT_ACCOUNT_ID: %+v, %v", s, err)
	}
	withAccount[EnvAccountID] = "1111-2222-3333"
	if _, err := SettingsFromEnv(envOf(withAccount)); err == nil || !strings.Contains(err.Error(), EnvAccountID) {
		t.Fatalf("a bad TIPKIT_ACCOUNT_ID: err = %v", err)
	}
	_, err = SettingsFromEnv(envOf(map[string]string{EnvBucket: "files"}))
	if err == nil || errors.Is(err, ErrNoSettings) {
		t.Fatalf("incomplete environment: err = %v", err)
	}
	for _, k := range []string{EnvIssuer, EnvAudience, EnvApplicationArn, EnvAccessRoleArn, EnvRegion} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("the error %q does not name %s", err, k)
		}
	}
}

func TestRunIncompleteEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	router := func(App) http.Handler { t.Fatal("router built"); return nil }
	code := Run(context.Background(), "x", router, nil, envOf(map[string]string{EnvIssuer: "https://idp.example.com"}), &stdout, &stderr)
	if code != ExitUsage || !strings.Contains(stderr.String(), EnvApplicationArn) {
		t.Fatalf("code %d, stderr:\n%s", code, stderr.String())
	}
	stderr.Reset()
	full := map[string]string{
		EnvIssuer: "https://idp.example.com", EnvAudience: "app", EnvRegion: "us-east-1",
		EnvApplicationArn: "arn:aws:sso::111122223333:application/ssoins-1/apl-1",
		EnvAccessRoleArn:  "arn:aws:iam::111122223333:role/UserAccess",
	}
	if code := Run(context.Background(), "x", router, nil, envOf(full), &stdout, &stderr); code != ExitUsage || !strings.Contains(stderr.String(), EnvBucket) {
		t.Fatalf("no bucket: code %d, stderr:\n%s", code, stderr.String())
	}
	if code := Run(context.Background(), "x", router, []string{"-nope"}, envOf(nil), &stdout, &stderr); code != ExitUsage {
		t.Fatalf("bad flag: code %d", code)
	}
}

func TestErrorProblem(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{&smithy.GenericAPIError{Code: "AccessDenied"}, http.StatusForbidden, "access_denied"},
		{fmt.Errorf("operation error S3: GetObject: %w", &smithy.GenericAPIError{Code: "NoSuchKey"}), http.StatusNotFound, "not_found"},
		{&smithy.GenericAPIError{Code: "NoSuchBucket"}, http.StatusNotFound, "not_found"},
		{&smithy.GenericAPIError{Code: "SlowDown"}, http.StatusServiceUnavailable, "temporarily_unavailable"},
		{fmt.Errorf("request: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "temporarily_unavailable"},
		{errors.New("something else"), http.StatusInternalServerError, "server_error"},
		{fmt.Errorf("op: %w", accessgrants.ErrDenied), http.StatusForbidden, "access_denied"},
		{&accessgrants.Error{Op: "GetDataAccess", Code: "InternalError", Err: &smithy.GenericAPIError{Code: "InternalError"}}, http.StatusServiceUnavailable, "temporarily_unavailable"},
		{fmt.Errorf("%w: target", accessgrants.ErrRequest), http.StatusBadRequest, "invalid_request"},
		{accessgrants.ErrNoCaller, http.StatusUnauthorized, NoConfig.Error},
	}
	for _, tt := range tests {
		status, p := ErrorProblem(tt.err)
		if status != tt.status || p.Error != tt.code {
			t.Errorf("ErrorProblem(%v) = %d %q, want %d %q", tt.err, status, p.Error, tt.status, tt.code)
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote(`it's`); got != `'it'\''s'` {
		t.Fatalf("shellQuote = %s", got)
	}
}

// TestSelfTestFailsOnAWrongServer checks that the self-test is not
// vacuous: a server that answers 200 to everything fails it.
func TestSelfTestFailsOnAWrongServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	yes := func(App) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "yes") })
	}
	var out bytes.Buffer
	err := SelfTest(ctx, "wrong", yes, &out)
	if err == nil || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("err = %v, output:\n%s", err, out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunLocalPrintsWorkingCurlCommands runs an example with no
// environment but TIPKIT_ADDR and uses the printed address and tokens as a
// reader of the README would.
func TestRunLocalPrintsWorkingCurlCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	router := func(app App) http.Handler {
		return app.Middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "signed in")
		}))
	}
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		// TIPKIT_ADDR alone keeps the example local, on that address.
		done <- Run(ctx, "local", router, nil, envOf(map[string]string{EnvAddr: "127.0.0.1:0"}), &stdout, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("no curl commands printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := stdout.String()
	base := regexp.MustCompile(`serving (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	alice := regexp.MustCompile(`ALICE='([^']+)'`).FindStringSubmatch(out)
	if base == nil || alice == nil || !strings.Contains(out, `curl -H "Authorization: Bearer $BOB" '`+base[1]+`/files?prefix=bob/'`) {
		t.Fatalf("unexpected output:\n%s", out)
	}
	for token, want := range map[string]int{alice[1]: http.StatusOK, "": http.StatusUnauthorized} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base[1]+"/files?prefix=alice/", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %t: status %d, want %d", token != "", resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// exampleCheck is an Example's own check: Before asks the server, with no
// token, for the realm of its challenge; After keeps what it was sent and
// fails once.
type exampleCheck struct {
	realm string
	sent  Sent
}

func (c *exampleCheck) Before(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/files", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	c.realm = resp.Header.Get("WWW-Authenticate")
	return nil
}

func (c *exampleCheck) After(_ context.Context, w io.Writer, sent Sent) (int, []string) {
	c.sent = sent
	fmt.Fprintln(w, "checked by the example")
	return 2, []string{"the example's own failure"}
}

// TestExample runs an Example with a flag, options and a check of its
// own: the flag is parsed before the options run, the options reach the
// middleware, the check runs around the users' requests and its failures
// fail the self-test, and an error of the options stops the example.
func TestExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var extra, extraSeen bool
	check := &exampleCheck{}
	ex := Example{
		Name: "x",
		Router: func(app App) http.Handler {
			return app.Middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "yes")
			}))
		},
		Flags: func(fs *flag.FlagSet) { fs.BoolVar(&extra, "extra", false, "an example's own flag") },
		Options: func(o *middleware.Options) error {
			extraSeen = extra
			o.Realm = "set-by-the-example"
			return nil
		},
		Check: check,
	}
	var stdout, stderr bytes.Buffer
	code := ex.Run(ctx, []string{"-selftest", "-extra"}, envOf(nil), &stdout, &stderr)
	if code != ExitFailed || !strings.Contains(stderr.String(), "the example's own failure") ||
		!strings.Contains(stdout.String(), "checked by the example") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !extraSeen {
		t.Error("the options ran before -extra was parsed")
	}
	if !strings.Contains(check.realm, `realm="set-by-the-example"`) {
		t.Errorf("the challenge is %q: the options did not reach the middleware", check.realm)
	}
	if s := check.sent; len(s.Users) != 2 || s.Users[0].Token == "" || s.WithToken == 0 || s.WithoutToken != 1 {
		t.Errorf("the check was sent %d users, %d requests with a token and %d without", len(s.Users), s.WithToken, s.WithoutToken)
	}

	ex.Options = func(*middleware.Options) error { return errors.New("no telemetry today") }
	stderr.Reset()
	if code := ex.Run(ctx, []string{"-selftest"}, envOf(nil), &stdout, &stderr); code != ExitFailed || !strings.Contains(stderr.String(), "no telemetry today") {
		t.Fatalf("an error of the options: code %d, stderr:\n%s", code, stderr.String())
	}
}
