package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// requestTimeout bounds each request of the self-test.
const requestTimeout = 15 * time.Second

// SelfTest serves router locally with the two seeded users, sends it the
// requests of the printed curl commands and a few more, prints what each
// user saw, and returns an error unless every answer was the expected one:
// each user lists and reads their own files, writes within their own
// prefix, and is refused (403) the other user's files; and the handlers
// asked S3 Access Grants (GetDataAccess) for their S3 credentials.
func SelfTest(ctx context.Context, name string, router Router, w io.Writer) error {
	return Example{Name: name, Router: router}.SelfTest(ctx, w)
}

// SelfTest is [SelfTest] for e, with e's options, and e's own checks
// around the users' requests.
func (e Example) SelfTest(ctx context.Context, w io.Writer) error {
	name := e.Name
	l, err := startLocal(ctx, name, e.Options)
	if err != nil {
		return err
	}
	defer l.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e.Router(l.App()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(w, "%s self-test: server %s, local AWS %s, bucket %s\n\n", name, base, l.Env.AWS.URL(), l.Bucket)
	if e.Check != nil {
		if err := e.Check.Before(ctx, base); err != nil {
			return err
		}
	}

	t := &tester{ctx: ctx, base: base, client: &http.Client{Timeout: requestTimeout}}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	t.out = tw
	fmt.Fprintf(tw, "USER\tREQUEST\tSTATUS\tANSWER\n")
	users := l.Users
	for i, u := range users {
		other := users[(i+1)%len(users)]
		t.list(u, u.Prefix, u.Keys())
		t.read(u, u.Keys()[0], u.Files[u.Keys()[0]])
		t.refused(u, http.MethodGet, "/files/"+other.Keys()[0], other.Name+"'s file")
		t.refused(u, http.MethodGet, "/files?prefix="+other.Prefix, other.Name+"'s listing")
		t.refused(u, http.MethodGet, "/files", "the whole bucket")
		written := u.Prefix + "selftest.txt"
		content := "written by " + u.Name + "\n"
		t.write(u, written, content)
		t.read(u, written, content)
		t.refused(u, http.MethodPut, "/files/"+other.Prefix+"from-"+u.Name+".txt", "a write in "+other.Name+"'s prefix")
		t.expect(u, http.MethodGet, "/files/"+u.Prefix+"missing.txt", "", http.StatusNotFound, "a missing key")
	}
	t.expect(User{Name: "nobody"}, http.MethodGet, "/files?prefix="+users[0].Prefix, "", http.StatusUnauthorized, "no token")
	tw.Flush()

	dataAccess := l.CheckBucket(users, &t.checks, &t.failed)

	if e.Check != nil {
		fmt.Fprintln(w)
		checks, failed := e.Check.After(ctx, w, Sent{Users: users, WithToken: t.withToken, WithoutToken: t.withoutToken})
		t.checks += checks
		t.failed = append(t.failed, failed...)
	}

	return SelfTestResult(w, t.checks, t.failed, dataAccess)
}

// tester sends the self-test's requests and records what did not match.
type tester struct {
	ctx    context.Context
	base   string
	client *http.Client
	out    io.Writer
	checks int
	failed []string
	// withToken and withoutToken count the requests sent with a user's
	// token and without one.
	withToken, withoutToken int
}

// list checks that u's listing of prefix is exactly want.
func (t *tester) list(u User, prefix string, want []string) {
	path := "/files?prefix=" + prefix
	status, body := t.do(u, http.MethodGet, path, "")
	var got Listing
	_ = json.Unmarshal([]byte(body), &got)
	keys := slices.Clone(got.Keys)
	slices.Sort(keys)
	shown := strings.Join(keys, ", ")
	if status != http.StatusOK {
		shown = summary(body)
	}
	t.report(u, http.MethodGet, path, status, shown,
		status == http.StatusOK && slices.Equal(keys, want),
		fmt.Sprintf("want 200 with %s", strings.Join(want, ", ")))
}

// read checks that u reads content at key.
func (t *tester) read(u User, key, content string) {
	status, body := t.do(u, http.MethodGet, "/files/"+key, "")
	t.report(u, http.MethodGet, "/files/"+key, status, summary(body),
		status == http.StatusOK && body == content, fmt.Sprintf("want 200 with %q", content))
}

// write checks that u writes content at key.
func (t *tester) write(u User, key, content string) {
	status, body := t.do(u, http.MethodPut, "/files/"+key, content)
	var got Written
	_ = json.Unmarshal([]byte(body), &got)
	t.report(u, http.MethodPut, "/files/"+key, status, summary(body),
		status == http.StatusOK && got.Key == key && got.Size == len(content), "want 200 with the written key")
}

// refused checks that S3 refuses u's request (403 access_denied).
func (t *tester) refused(u User, method, path, what string) {
	body := ""
	if method == http.MethodPut {
		body = "not yours\n"
	}
	t.expect(u, method, path, body, http.StatusForbidden, what)
}

// expect checks that u's request is answered status with a JSON error.
func (t *tester) expect(u User, method, path, body string, status int, what string) {
	got, answer := t.do(u, method, path, body)
	var p Problem
	ok := got == status && json.Unmarshal([]byte(answer), &p) == nil && p.Error != ""
	t.report(u, method, path, got, summary(answer)+"   ("+what+")", ok, fmt.Sprintf("want %d with a JSON error", status))
}

// report prints one line and records a failure.
func (t *tester) report(u User, method, path string, status int, shown string, ok bool, want string) {
	t.checks++
	line := fmt.Sprintf("%s\t%s %s\t%s\t%s", u.Name, method, path, statusText(status), shown)
	if !ok {
		line += "   <-- FAIL: " + want
		t.failed = append(t.failed, fmt.Sprintf("%s %s %s: got %s, %s", u.Name, method, path, statusText(status), want))
	}
	fmt.Fprintln(t.out, line)
}

// do sends one request as u (no token when u has none) and returns the
// status and body; a transport failure is status 0 and the error.
func (t *tester) do(u User, method, path, body string) (int, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.ctx, method, t.base+path, r)
	if err != nil {
		return 0, err.Error()
	}
	if u.Token != "" {
		req.Header.Set("Authorization", "Bearer "+u.Token)
		t.withToken++
	} else {
		t.withoutToken++
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "timed out"
		}
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// summary shortens an answer to one line: a JSON error as its code, other
// text quoted.
func summary(body string) string {
	var p Problem
	if json.Unmarshal([]byte(body), &p) == nil && p.Error != "" {
		return p.Error
	}
	var wr Written
	if json.Unmarshal([]byte(body), &wr) == nil && wr.Key != "" {
		return fmt.Sprintf("wrote %d bytes", wr.Size)
	}
	s := strings.TrimSpace(body)
	if len(s) > 48 {
		s = s[:45] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// statusText is the status code, or "---" when no answer came.
func statusText(status int) string {
	if status == 0 {
		return "---"
	}
	return fmt.Sprint(status)
}

// CheckBucket checks, at the end of a self-test of users, what the local S3
// holds: each user's write (Prefix+"selftest.txt") landed, and each write
// refused in the next user's prefix (Prefix+"from-"+Name+".txt") did not;
// and that the handlers went through S3 Access Grants (the local S3 serves
// only credentials that GetDataAccess vended). It adds to *checks and
// *failed, and returns the number of GetDataAccess calls.
func (l *Local) CheckBucket(users []User, checks *int, failed *[]string) int {
	for i, u := range users {
		other := users[(i+1)%len(users)]
		*checks += 2
		if _, ok := l.Env.AWS.Object(l.Bucket, u.Prefix+"selftest.txt"); !ok {
			*failed = append(*failed, u.Name+"'s write is not in the bucket")
		}
		if _, ok := l.Env.AWS.Object(l.Bucket, other.Prefix+"from-"+u.Name+".txt"); ok {
			*failed = append(*failed, u.Name+"'s refused write is in the bucket")
		}
	}
	dataAccess := l.Env.AWS.Calls("GetDataAccess")
	*checks++
	if dataAccess == 0 {
		*failed = append(*failed, "no GetDataAccess call: the handlers did not ask S3 Access Grants for credentials")
	}
	return dataAccess
}

// SelfTestResult ends a self-test: an error listing the failed checks, or
// the OK line on w.
func SelfTestResult(w io.Writer, checks int, failed []string, dataAccess int) error {
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d checks failed:\n  %s", len(failed), checks, strings.Join(failed, "\n  "))
	}
	fmt.Fprintf(w, "\nOK: %d checks; the same server and role gave each user only their own files (%d GetDataAccess calls)\n",
		checks, dataAccess)
	return nil
}
