package accessgrants_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// localServer starts tiptest with alice's and bob's files, each granted
// their own folder by Identity Center user ID, and returns it with the
// middleware in front of it and a Cache on its clock. Close both.
func localServer() (*tiptest.Env, *middleware.Middleware, *accessgrants.Cache) {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	for _, key := range []string{"alice/notes.txt", "alice/todo.txt", "bob/plan.txt"} {
		if err := env.AWS.PutObject(env.Bucket, key, []byte("content of "+key)); err != nil {
			log.Fatal(err)
		}
	}
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "bob/", env.AWS.UserID("bob"), tiptest.AccessRead)
	mw, err := middleware.New(context.Background(), middlewaretest.Options(env))
	if err != nil {
		log.Fatal(err)
	}
	grants, err := accessgrants.New(accessgrants.Options{AccountID: env.AWS.AccountID(), Now: env.Clock.Now})
	if err != nil {
		log.Fatal(err)
	}
	return env, mw, grants
}

// get sends GET path with user's token to h and returns the status and
// the body.
func get(env *tiptest.Env, h http.Handler, user, path string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+env.IdP.Token(user))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, strings.TrimSpace(w.Body.String())
}

// A file server behind the middleware: each user reads through S3 Access
// Grants what their grants cover, and nothing else, through the same
// server and role.
func Example() {
	env, mw, grants := localServer()
	defer env.Close()
	defer mw.Close()

	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/files/")
		cfg, err := grants.GetDataAccess(r.Context(), accessgrants.Object(env.Bucket, key, types.PermissionRead))
		switch {
		case errors.Is(err, accessgrants.ErrDenied):
			http.Error(w, "no grant of yours covers "+key, http.StatusForbidden)
			return
		case err != nil:
			http.Error(w, "S3 Access Grants is unavailable", http.StatusServiceUnavailable)
			return
		}
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }) // tiptest's S3 is path-style
		obj, err := client.GetObject(r.Context(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
		if err != nil {
			http.Error(w, "S3 refused the read", http.StatusBadGateway)
			return
		}
		defer obj.Body.Close()
		_, _ = io.Copy(w, obj.Body)
	})
	h := mw.Handler(files)

	fmt.Println(get(env, h, "alice", "/files/alice/notes.txt"))
	fmt.Println(get(env, h, "bob", "/files/bob/plan.txt"))
	fmt.Println(get(env, h, "bob", "/files/alice/notes.txt"))
	// Output:
	// 200 content of alice/notes.txt
	// 200 content of bob/plan.txt
	// 403 no grant of yours covers alice/notes.txt
}

// One S3 client for every user, built once: each operation is signed with
// the caller's credentials of S3 Access Grants for its own target and
// permission, obtained once per user and grant.
func ExampleCache_S3Client() {
	env, mw, grants := localServer()
	defer env.Close()
	defer mw.Close()

	cfg := env.Config() // region, endpoint, HTTP client; its credentials are never used
	client := grants.S3Client(cfg, func(o *s3.Options) { o.UsePathStyle = true })

	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obj, err := client.GetObject(r.Context(), &s3.GetObjectInput{
			Bucket: aws.String(env.Bucket),
			Key:    aws.String(strings.TrimPrefix(r.URL.Path, "/files/")),
		})
		if err != nil {
			http.Error(w, "refused", accessgrants.HTTPStatus(err))
			return
		}
		defer obj.Body.Close()
		_, _ = io.Copy(w, obj.Body)
	}))
	fmt.Println(get(env, h, "alice", "/files/alice/notes.txt"))
	fmt.Println(get(env, h, "alice", "/files/alice/todo.txt"))
	fmt.Println(get(env, h, "alice", "/files/alice/none.txt"))
	fmt.Println(get(env, h, "bob", "/files/alice/notes.txt"))
	fmt.Println("GetDataAccess calls:", env.AWS.Calls("GetDataAccess"))
	// Output:
	// 200 content of alice/notes.txt
	// 200 content of alice/todo.txt
	// 404 refused
	// 403 refused
	// GetDataAccess calls: 2
}

// An S3 error, or a refusal of S3 Access Grants, as an HTTP status.
func ExampleHTTPStatus() {
	fmt.Println(accessgrants.HTTPStatus(accessgrants.ErrNoCaller))
	fmt.Println(accessgrants.HTTPStatus(fmt.Errorf("reading: %w", accessgrants.ErrDenied)))
	fmt.Println(accessgrants.HTTPStatus(&smithy.GenericAPIError{Code: "NoSuchKey"}))
	fmt.Println(accessgrants.HTTPStatus(&smithy.GenericAPIError{Code: "SlowDown"}))
	// Output:
	// 401
	// 403
	// 404
	// 503
}

// The credentials of one object reach the whole grant that matched it:
// the user's next objects under that grant are served without a call.
func ExampleCache_GetDataAccess() {
	env, mw, grants := localServer()
	defer env.Close()
	defer mw.Close()

	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/")
		cfg, err := grants.GetDataAccess(r.Context(), accessgrants.Object(env.Bucket, key, types.PermissionRead))
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		creds, _ := cfg.Credentials.Retrieve(r.Context())
		owner, _ := env.AWS.UserFor(creds.AccessKeyID)
		fmt.Fprintf(w, "credentials of %s", owner)
	}))
	for _, req := range [][2]string{{"alice", "/alice/notes.txt"}, {"alice", "/alice/todo.txt"}, {"bob", "/bob/plan.txt"}} {
		code, body := get(env, h, req[0], req[1])
		fmt.Println(req[0], req[1], code, body)
	}
	fmt.Println("GetDataAccess calls:", env.AWS.Calls("GetDataAccess"))
	// Output:
	// alice /alice/notes.txt 200 credentials of alice
	// alice /alice/todo.txt 200 credentials of alice
	// bob /bob/plan.txt 200 credentials of bob
	// GetDataAccess calls: 2
}

// A handler lists what the caller may reach.
func ExampleCache_ListCallerAccessGrants() {
	env, mw, grants := localServer()
	defer env.Close()
	defer mw.Close()

	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := grants.ListCallerAccessGrants(r.Context(), "")
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		id, _ := ctxcreds.IdentityFrom(r.Context())
		fmt.Fprintf(w, "%s (Identity Center user %t):", id.Subject(), id.AWSUserID() == env.AWS.UserID(id.Subject()))
		for _, g := range list {
			fmt.Fprintf(w, " %s %s", g.Permission, strings.TrimPrefix(g.Scope, "s3://"+env.Bucket+"/"))
		}
	}))
	fmt.Println(get(env, h, "alice", "/"))
	fmt.Println(get(env, h, "bob", "/"))
	// Output:
	// 200 alice (Identity Center user true): READWRITE alice/*
	// 200 bob (Identity Center user true): READ bob/*
}

func ExamplePrefix() {
	r := accessgrants.Prefix("amzn-s3-demo-bucket", "reports/2025/", types.PermissionRead)
	fmt.Println(r.Target, r.Permission)
	// Output: s3://amzn-s3-demo-bucket/reports/2025/* READ
}

func ExampleObject() {
	r := accessgrants.Object("amzn-s3-demo-bucket", "reports/2025/q1.csv", types.PermissionWrite)
	fmt.Println(r.Target, r.Permission, r.TargetType)
	// Output: s3://amzn-s3-demo-bucket/reports/2025/q1.csv WRITE Object
}
