package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssoadmintypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	ssooidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/golang-jwt/jwt/v5"
)

// checkInfo checks the first output line and returns it decoded.
func checkInfo(t *testing.T, line string, region string) info {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var in info
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("first line %q is not the JSON object: %v", line, err)
	}
	if !strings.HasPrefix(in.Endpoint, "http://127.0.0.1:") || !strings.HasPrefix(in.Issuer, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q, issuer %q: want loopback URLs", in.Endpoint, in.Issuer)
	}
	if in.JWKSURL != in.Issuer+"/.well-known/jwks.json" || in.Region != region || in.Audience == "" {
		t.Fatalf("info %+v", in)
	}
	if !strings.HasPrefix(in.ApplicationArn, "arn:aws:sso::") ||
		in.AccessRoleArn != "arn:aws:iam::123456789012:role/tipkit-access" ||
		in.ApplicationRoleArn != "arn:aws:iam::123456789012:role/tipkit-application" {
		t.Fatalf("ARNs in %+v", in)
	}
	if !strings.HasPrefix(in.AccessKeyID, "AKIA") || len(in.AccessKeyID) != 20 || len(in.SecretAccessKey) != 40 {
		t.Fatalf("server keys %q / %d chars", in.AccessKeyID, len(in.SecretAccessKey))
	}
	return in
}

// getToken gets a token for user from the running identity provider.
func getToken(t *testing.T, issuer, user string) string {
	t.Helper()
	resp, err := http.Get(issuer + "/token?user=" + user)
	if err != nil {
		t.Fatalf("GET token: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET token: status %d, %v: %s", resp.StatusCode, err, body)
	}
	return string(body)
}

// mintToken gets a token for alice from the running identity provider.
func mintToken(t *testing.T, issuer string) jwt.MapClaims {
	t.Helper()
	raw := getToken(t, issuer, "alice")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		t.Fatalf("token %q: %v", raw, err)
	}
	if claims["iss"] != issuer || claims["sub"] != "alice" || claims["email"] != "alice@example.com" {
		t.Fatalf("claims %v", claims)
	}
	return claims
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-token-ttl", "0s"},
		{"-token-ttl", "-1h"},
		{"-token-ttl", "soon"},
		{"-region", ""},
		{"-no-such-flag"},
		{"extra"},
		{"-break", "audience,nonsense"},
		{"-fault", "AssumeRole"},
		{"-fault", "AssumeRole="},
		{"-fault", "NoSuchOperation=throttle"},
		{"-fault", "GetObject=throttle"}, // S3 is not served
		{"-fault", "AssumeRole=slow"},
		{"-fault", "AssumeRole=throttle:0"},
		{"-fault", "AssumeRole=throttle:two"},
		{"-fault", "AssumeRole=1s+2s"},
		{"-fault", "AssumeRole=throttle+deny"},
		{"-fault", "AssumeRole=throttle+"},
		{"-fault", "AssumeRole=0s"},
		{"-fault", "AssumeRole=1fortnight"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("run(%q) wrote to stdout: %q", args, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 ||
		!strings.Contains(errOut.String(), "-refresh-grant") || !strings.Contains(errOut.String(), "DELETE /_tiptest/faults") {
		t.Errorf("run(-h) = %d, stderr %q", code, errOut.String())
	}
}

func TestRunInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"-refresh-grant", "-token-ttl", "30m", "-region", "eu-west-1", "-audience", "my-app",
			"-break", "grant, audience", "-unknown-user", "bob"}, pw, &errOut)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %q", errOut.String())
	}
	in := checkInfo(t, sc.Text(), "eu-west-1")
	if in.Audience != "my-app" {
		t.Fatalf("audience %q, want my-app", in.Audience)
	}
	var human []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "press Ctrl-C") {
		human = append(human, sc.Text())
	}
	if !slices.Contains(human, "broken on purpose: grant, audience; unknown users: bob") {
		t.Fatalf("human lines %q", human)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if aud := mintToken(t, in.Issuer)["aud"]; aud != "my-app" {
		t.Fatalf("token aud %v", aud)
	}
	cfg := aws.Config{
		Region: in.Region, BaseEndpoint: aws.String(in.Endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretAccessKey, ""),
	}
	_, err := ssoadmin.NewFromConfig(cfg).GetApplicationGrant(ctx, &ssoadmin.GetApplicationGrantInput{
		ApplicationArn: aws.String(in.ApplicationArn), GrantType: ssoadmintypes.GrantTypeJwtBearer,
	})
	var notFound *ssoadmintypes.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("GetApplicationGrant with -break grant: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run returned %d; stderr %q", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if resp, err := http.Get(in.Issuer + "/token?user=alice"); err == nil {
		resp.Body.Close()
		t.Fatal("identity provider still answers after stop")
	}
}

func TestBinary(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on windows")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found:", err)
	}
	bin := filepath.Join(t.TempDir(), "tiptest")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "-token-ttl", "15m")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // os.ErrProcessDone once it has exited

	var first string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("no output; stderr %q", stderr.String())
		}
		first = l
	case <-time.After(30 * time.Second):
		t.Fatalf("no first line after 30s; stderr %q", stderr.String())
	}
	in := checkInfo(t, first, "us-east-1")
	if in.Audience != "tipkit-test" {
		t.Fatalf("default audience %q", in.Audience)
	}
	mintToken(t, in.Issuer)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM; stderr %q", stderr.String())
	}
	var human []string
	for l := range lines {
		human = append(human, l)
	}
	if len(human) == 0 || !strings.Contains(strings.Join(human, "\n"), in.Issuer+"/token?user=alice") {
		t.Errorf("human lines %q", human)
	}
}

// startRun runs the command in process with args until the test ends. It
// returns the first line, decoded, and the lines for people up to "press
// Ctrl-C".
func startRun(t *testing.T, args ...string) (info, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, &errOut)
		pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run returned %d; stderr %q", code, errOut.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancellation")
		}
	})
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %q", errOut.String())
	}
	in := checkInfo(t, sc.Text(), "us-east-1")
	var human []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "press Ctrl-C") {
		human = append(human, sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return in, human
}

// exportLine is the form of the lines that export a variable.
var exportLine = regexp.MustCompile(`^export ([A-Z][A-Z0-9_]*)=('.*')$`)

// tipdoctorVariables returns the TIPKIT_ variables that cmd/tipdoctor
// reads: the string literals of its sources that are such a name.
func tipdoctorVariables(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "cmd", "tipdoctor", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("cmd/tipdoctor sources: %v, %d files", err, len(files))
	}
	name := regexp.MustCompile(`^TIPKIT_[A-Z0-9_]+$`)
	var vars []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(v) && !slices.Contains(vars, v) {
					vars = append(vars, v)
				}
			}
			return true
		})
	}
	if !slices.Contains(vars, "TIPKIT_ISSUER") || !slices.Contains(vars, "TIPKIT_ACCESS_ROLE_ARN") {
		t.Fatalf("found %q in cmd/tipdoctor: not the variables it reads", vars)
	}
	return vars
}

// TestExportLines checks that the command prints, as shell lines, every
// TIPKIT_ variable cmd/tipdoctor reads and the AWS ones, with the values of
// the first line, quoted for the shell, and that the README's recipe shows
// the same lines.
func TestExportLines(t *testing.T) {
	in, human := startRun(t, "-audience", "it's")
	want := map[string]string{
		"AWS_ENDPOINT_URL":            in.Endpoint,
		"AWS_REGION":                  in.Region,
		"AWS_ACCESS_KEY_ID":           in.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       in.SecretAccessKey,
		"TIPKIT_ISSUER":               in.Issuer,
		"TIPKIT_AUDIENCE":             "it's",
		"TIPKIT_APPLICATION_ARN":      in.ApplicationArn,
		"TIPKIT_ACCESS_ROLE_ARN":      in.AccessRoleArn,
		"TIPKIT_APPLICATION_ROLE_ARN": in.ApplicationRoleArn,
	}
	var names, lines []string
	for _, l := range human {
		if m := exportLine.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
			lines = append(lines, l)
		} else if strings.Contains(l, "export") {
			t.Errorf("line %q mentions export but is not an export line", l)
		}
	}
	for _, v := range tipdoctorVariables(t) {
		if _, ok := want[v]; !ok {
			t.Errorf("cmd/tipdoctor reads %s, which this test does not know", v)
		}
	}
	for _, l := range lines {
		m := exportLine.FindStringSubmatch(l)
		value, ok := want[m[1]]
		if !ok {
			t.Errorf("unexpected variable in %q", l)
			continue
		}
		quoted := "'" + value + "'"
		if m[1] == "TIPKIT_AUDIENCE" {
			quoted = `'it'\''s'`
		}
		if m[2] != quoted {
			t.Errorf("%s: printed %s, want %s", m[1], m[2], quoted)
		}
	}
	for name := range want {
		if !slices.Contains(names, name) {
			t.Errorf("no export line for %s in %q", name, human)
		}
	}

	// What a shell makes of the lines.
	if sh, err := exec.LookPath("sh"); err == nil {
		script := strings.Join(lines, "\n")
		for _, name := range names {
			script += "\nprintf '%s\\n' \"$" + name + "\""
		}
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		for i, name := range names {
			if i >= len(got) || got[i] != want[name] {
				t.Errorf("sh sees %s = %q, want %q", name, got, want[name])
			}
		}
	} else {
		t.Log("no sh to evaluate the lines:", err)
	}

	// README's recipe shows the lines, in the same order and form.
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for l := range strings.Lines(string(readme)) {
		l = strings.TrimSuffix(l, "\n")
		if !strings.HasPrefix(l, "export ") {
			continue
		}
		m := exportLine.FindStringSubmatch(l)
		if m == nil || strings.Contains(m[2][1:len(m[2])-1], "'") {
			t.Errorf("README line %q is not in the printed form", l)
			continue
		}
		shown = append(shown, m[1])
	}
	if !slices.Equal(shown, names) {
		t.Errorf("README exports %q, the command %q", shown, names)
	}
}

// awsConfig is a configuration of the AWS clients for the running
// command, signed with the server's keys, without retries.
func awsConfig(in info) aws.Config {
	return aws.Config{
		Region: in.Region, BaseEndpoint: aws.String(in.Endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretAccessKey, ""),
	}
}

// callerIdentity calls STS GetCallerIdentity.
func callerIdentity(in info) error {
	_, err := sts.NewFromConfig(awsConfig(in)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	return err
}

// assumeAccessRole calls STS AssumeRole on the access role, without an
// identity context.
func assumeAccessRole(in info) error {
	_, err := sts.NewFromConfig(awsConfig(in)).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(in.AccessRoleArn), RoleSessionName: aws.String("faults"),
	})
	return err
}

// webIdentity calls STS AssumeRoleWithWebIdentity with a token of user.
func webIdentity(t *testing.T, in info, user string) error {
	_, err := sts.NewFromConfig(awsConfig(in)).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(in.ApplicationRoleArn), RoleSessionName: aws.String("faults"),
		WebIdentityToken: aws.String(getToken(t, in.Issuer, user)),
	})
	return err
}

// exchangeToken calls SSO OIDC CreateTokenWithIAM with a fresh token of
// user.
func exchangeToken(t *testing.T, in info, user string) error {
	_, err := ssooidc.NewFromConfig(awsConfig(in)).CreateTokenWithIAM(context.Background(), &ssooidc.CreateTokenWithIAMInput{
		ClientId:  aws.String(in.ApplicationArn),
		GrantType: aws.String("urn:ietf:params:oauth:grant-type:jwt-bearer"),
		Assertion: aws.String(getToken(t, in.Issuer, user)),
	})
	return err
}

// wantCode fails t unless err is the AWS error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// control sends a request to the control endpoint and returns the status
// and the body.
func control(t *testing.T, in info, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, in.Endpoint+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// setFault sets a fault through the control endpoint.
func setFault(t *testing.T, in info, body string) {
	t.Helper()
	if status, msg := control(t, in, http.MethodPost, "/_tiptest/faults", "application/json", body); status != http.StatusNoContent {
		t.Fatalf("POST faults %s: %d %s", body, status, msg)
	}
}

// clearFaults removes every fault through the control endpoint.
func clearFaults(t *testing.T, in info) {
	t.Helper()
	if status, msg := control(t, in, http.MethodDelete, "/_tiptest/faults", "", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE faults: %d %s", status, msg)
	}
}

// wantCalls fails t unless GET /_tiptest/calls answers want.
func wantCalls(t *testing.T, in info, want map[string]int) {
	t.Helper()
	status, body := control(t, in, http.MethodGet, "/_tiptest/calls", "", "")
	var got map[string]int
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil {
		t.Fatalf("GET calls: %d %q: %v", status, body, err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

// TestFaultFlag checks faults given with -fault: errors in each protocol's
// code, a count, a latency, clearing, and the counters.
func TestFaultFlag(t *testing.T) {
	in, human := startRun(t,
		"-fault", "GetCallerIdentity=throttle",
		"-fault", "CreateTokenWithIAM=throttle:1",
		"-fault", "AssumeRoleWithWebIdentity=150ms",
		"-fault", "AssumeRole=internal")
	if want := "faults from the start: GetCallerIdentity=throttle, CreateTokenWithIAM=throttle:1, AssumeRoleWithWebIdentity=150ms, AssumeRole=internal"; !slices.Contains(human, want) {
		t.Fatalf("no line %q in %q", want, human)
	}

	wantCode(t, callerIdentity(in), "Throttling")
	wantCode(t, callerIdentity(in), "Throttling") // until cleared
	wantCode(t, assumeAccessRole(in), "InternalError")
	var slowDown *ssooidctypes.SlowDownException
	if err := exchangeToken(t, in, "alice"); !errors.As(err, &slowDown) {
		t.Fatalf("CreateTokenWithIAM: %v, want SlowDownException", err)
	}
	if err := exchangeToken(t, in, "alice"); err != nil {
		t.Fatalf("CreateTokenWithIAM after its one fault: %v", err)
	}
	start := time.Now()
	if err := webIdentity(t, in, "alice"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("AssumeRoleWithWebIdentity answered after %v, want at least 150ms", d)
	}

	clearFaults(t, in)
	if err := callerIdentity(in); err != nil {
		t.Fatalf("GetCallerIdentity after DELETE: %v", err)
	}
	if err := assumeAccessRole(in); err != nil {
		t.Fatalf("AssumeRole after DELETE: %v", err)
	}
	wantCalls(t, in, map[string]int{
		"GetCallerIdentity": 3, "AssumeRole": 2, "CreateTokenWithIAM": 2, "AssumeRoleWithWebIdentity": 1,
	})
}

// TestFaultEndpoint checks faults set and removed through the control
// endpoint while the command runs, the counters, and the requests the
// endpoint refuses.
func TestFaultEndpoint(t *testing.T) {
	in, _ := startRun(t)
	wantCalls(t, in, map[string]int{})
	if err := assumeAccessRole(in); err != nil {
		t.Fatal(err)
	}

	setFault(t, in, `{"operation":"AssumeRole","fault":"throttle","count":2}`)
	wantCode(t, assumeAccessRole(in), "Throttling")
	wantCode(t, assumeAccessRole(in), "Throttling")
	if err := assumeAccessRole(in); err != nil {
		t.Fatalf("AssumeRole after its two faults: %v", err)
	}

	setFault(t, in, `{"operation":"CreateTokenWithIAM","fault":"throttle"}`)
	var slowDown *ssooidctypes.SlowDownException
	for range 2 {
		if err := exchangeToken(t, in, "bob"); !errors.As(err, &slowDown) {
			t.Fatalf("CreateTokenWithIAM: %v, want SlowDownException", err)
		}
	}
	setFault(t, in, `{"operation":"GetCallerIdentity","fault":"ServiceUnavailable"}`)
	wantCode(t, callerIdentity(in), "ServiceUnavailable")
	clearFaults(t, in)
	if err := exchangeToken(t, in, "bob"); err != nil {
		t.Fatalf("CreateTokenWithIAM after DELETE: %v", err)
	}
	if err := callerIdentity(in); err != nil {
		t.Fatalf("GetCallerIdentity after DELETE: %v", err)
	}

	setFault(t, in, `{"operation":"GetCallerIdentity","latency":"150ms","count":1}`)
	start := time.Now()
	if err := callerIdentity(in); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("GetCallerIdentity answered after %v, want at least 150ms", d)
	}
	setFault(t, in, `{"operation":"GetCallerIdentity","latency":"150ms","fault":"deny"}`)
	start = time.Now()
	wantCode(t, callerIdentity(in), "AccessDenied")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("GetCallerIdentity refused after %v, want at least 150ms", d)
	}
	clearFaults(t, in)

	for _, tc := range []struct {
		method, path, contentType, body string
		status                          int
	}{
		{"POST", "/_tiptest/faults", "text/plain", `{"operation":"AssumeRole","fault":"throttle"}`, http.StatusUnsupportedMediaType},
		{"POST", "/_tiptest/faults", "", `{"operation":"AssumeRole","fault":"throttle"}`, http.StatusUnsupportedMediaType},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"NoSuchOperation","fault":"throttle"}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole"}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole","fault":"slow"}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole","latency":"-1s"}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole","fault":"throttle","count":-1}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole","fault":"throttle","times":1}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `{"operation":"AssumeRole","fault":"throttle"} {}`, http.StatusBadRequest},
		{"POST", "/_tiptest/faults", "application/json", `not json`, http.StatusBadRequest},
		{"GET", "/_tiptest/faults", "", "", http.StatusMethodNotAllowed},
		{"POST", "/_tiptest/calls", "application/json", "{}", http.StatusMethodNotAllowed},
		{"GET", "/_tiptest/nothing", "", "", http.StatusNotFound},
	} {
		if status, body := control(t, in, tc.method, tc.path, tc.contentType, tc.body); status != tc.status {
			t.Errorf("%s %s %q: %d %q, want %d", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}
	if err := assumeAccessRole(in); err != nil {
		t.Fatalf("AssumeRole after refused requests: %v", err)
	}
	wantCalls(t, in, map[string]int{"AssumeRole": 5, "CreateTokenWithIAM": 3, "GetCallerIdentity": 4})
}
