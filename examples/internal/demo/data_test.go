package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/ctxcreds"
)

// dataCall runs one request of user through l's middleware and, in the
// handler, gets a client of d for path and perm and makes the matching
// S3 call: a listing for a prefix, GetObject for READ on a key, PutObject
// for WRITE on a key.
func dataCall(t *testing.T, l *Local, d *DataAccess, user User, path string, prefix bool, perm s3ctypes.Permission) error {
	t.Helper()
	var err error
	h := l.Middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err = func() error {
			cfg, ok := ctxcreds.Config(r.Context())
			if !ok {
				return errors.New("no config")
			}
			get := d.ForObject
			if prefix {
				get = d.ForPrefix
			}
			client, err := get(r.Context(), cfg, path, perm)
			if err != nil {
				return err
			}
			switch {
			case prefix:
				_, err = client.ListObjectsV2(r.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(path)})
			case perm == s3ctypes.PermissionRead:
				var out *s3.GetObjectOutput
				if out, err = client.GetObject(r.Context(), &s3.GetObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(path)}); err == nil {
					_, _ = io.Copy(io.Discard, out.Body)
					out.Body.Close()
				}
			default:
				_, err = client.PutObject(r.Context(), &s3.PutObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(path)})
			}
			return err
		}()
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+user.Token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("middleware answered %d: %s", rec.Code, rec.Body.String())
	}
	return err
}

func TestDataAccessCachesPerUserAndGrant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := NewDataAccess(l.Bucket, "", true)
	var later time.Duration // how far DataAccess's clock is ahead of the local AWS's
	d.now = func() time.Time { return l.Env.Clock.Now().Add(later) }
	alice, bob := l.Users[0], l.Users[1]
	calls := func(want int) {
		t.Helper()
		if n := l.Env.AWS.Calls("GetDataAccess"); n != want {
			t.Fatalf("Calls(GetDataAccess) = %d, want %d", n, want)
		}
	}
	denied := func(err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Fatalf("err = %v, want AccessDenied", err)
		}
	}

	if err := dataCall(t, l, d, alice, "alice/", true, s3ctypes.PermissionRead); err != nil {
		t.Fatal(err)
	}
	calls(1)
	if l.Env.AWS.Calls("GetCallerIdentity") != 1 {
		t.Fatalf("Calls(GetCallerIdentity) = %d, want 1", l.Env.AWS.Calls("GetCallerIdentity"))
	}
	// Within the matched grant with the same permission: no new call.
	if err := dataCall(t, l, d, alice, alice.Keys()[0], false, s3ctypes.PermissionRead); err != nil {
		t.Fatal(err)
	}
	calls(1)
	// WRITE is another set of credentials, kept too.
	for _, k := range []string{"alice/a", "alice/b"} {
		if err := dataCall(t, l, d, alice, k, false, s3ctypes.PermissionWrite); err != nil {
			t.Fatal(err)
		}
	}
	calls(2)
	// Refusals are not kept: each asks again.
	for range 2 {
		denied(dataCall(t, l, d, alice, "bob/", true, s3ctypes.PermissionRead))
	}
	calls(4)
	// Credentials are per user.
	denied(dataCall(t, l, d, bob, alice.Keys()[0], false, s3ctypes.PermissionRead))
	if err := dataCall(t, l, d, bob, "bob/", true, s3ctypes.PermissionRead); err != nil {
		t.Fatal(err)
	}
	calls(6)
	if n := d.cachedUsers(); n != 2 {
		t.Fatalf("%d users kept, want 2", n)
	}
	// Shortly before they expire (1 h), credentials are asked for again;
	// the account is still known. (Only DataAccess's clock moves: the
	// middleware's is the wall clock.)
	later = time.Hour - DataAccessRefreshBefore
	if err := dataCall(t, l, d, alice, "alice/", true, s3ctypes.PermissionRead); err != nil {
		t.Fatal(err)
	}
	calls(7)
	if l.Env.AWS.Calls("GetCallerIdentity") != 1 {
		t.Fatalf("Calls(GetCallerIdentity) = %d, want 1", l.Env.AWS.Calls("GetCallerIdentity"))
	}
}

func TestDataAccessBounded(t *testing.T) {
	d := NewDataAccess("b", "123456789012", true)
	creds := aws.Credentials{CanExpire: true, Expires: time.Now().Add(time.Hour)}
	for i := range DataAccessMaxUsers + 10 {
		d.keep(fmt.Sprint("user", i), grantCreds{prefix: "p/", perm: s3ctypes.PermissionRead, creds: creds})
	}
	if n := d.cachedUsers(); n != DataAccessMaxUsers {
		t.Fatalf("%d users kept, want %d", n, DataAccessMaxUsers)
	}
	for i := range 2 * dataAccessMaxGrants {
		d.keep("one", grantCreds{prefix: fmt.Sprint("p", i, "/"), perm: s3ctypes.PermissionRead, creds: creds})
	}
	if _, ok := d.cached("one", "p0/x", false, s3ctypes.PermissionRead); ok {
		t.Fatal("the oldest grant of a user was kept past the bound")
	}
	if _, ok := d.cached("one", fmt.Sprint("p", 2*dataAccessMaxGrants-1, "/x"), false, s3ctypes.PermissionRead); !ok {
		t.Fatal("the newest grant of a user was dropped")
	}
	if _, ok := d.cached("one", fmt.Sprint("p", 2*dataAccessMaxGrants-1, "/x"), false, s3ctypes.PermissionWrite); ok {
		t.Fatal("READ credentials served a WRITE")
	}
	for target, want := range map[string]grantCreds{
		"s3://b/alice/*": {prefix: "alice/"},
		"s3://b/*":       {prefix: ""},
		"s3://b/k.txt":   {prefix: "k.txt", exact: true},
	} {
		g, ok := d.scopeOf(target, s3ctypes.PermissionRead, creds)
		if !ok || g.prefix != want.prefix || g.exact != want.exact {
			t.Errorf("scopeOf(%q) = %+v, %v", target, g, ok)
		}
	}
	for _, target := range []string{"s3://other/alice/*", "s3://b/a*b/*", "b/alice/*"} {
		if _, ok := d.scopeOf(target, s3ctypes.PermissionRead, creds); ok {
			t.Errorf("scopeOf(%q) accepted", target)
		}
	}
}
