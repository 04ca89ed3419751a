package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// exampleGet sends h a GET of path with the bearer token, when not empty, and
// returns the recorded answer.
func exampleGet(h http.Handler, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// An ErrorHandler answers refusals in the service's own format, here RFC
// 9457 problem details, keeping the default answer (with its
// WWW-Authenticate challenge) for the 401s that clients act on.
func ExampleOptions_errorHandler() {
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	env.AWS.RemoveUser("mallory") // IAM Identity Center does not know her

	o := middlewaretest.Options(env) // on AWS: Issuer, Audience, Exchange, AWSConfig
	o.Realm = "files"
	std := middleware.DefaultErrorHandler(o.Realm)
	o.ErrorHandler = func(w http.ResponseWriter, r *http.Request, e *middleware.Error) {
		if e.Kind.Status() == http.StatusUnauthorized {
			std(w, r, e)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(e.Kind.Status())
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type":   "https://example.com/problems/" + e.Code,
			"status": e.Kind.Status(),
			"detail": e.Description, // never a token: fixed sentences only
		})
	}
	mw, err := middleware.New(context.Background(), o)
	if err != nil {
		panic(err)
	}
	defer mw.Close()
	h := mw.Handler(http.NotFoundHandler())

	w := exampleGet(h, "/", env.IdP.Token("mallory"))
	fmt.Print(w.Code, " ", w.Header().Get("Content-Type"), " ", w.Body.String())
	w = exampleGet(h, "/", "")
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 403 application/problem+json {"detail":"AWS refused access to this user","status":403,"type":"https://example.com/problems/access_denied"}
	// 401 Bearer realm="files"
}

// A Skipper lets requests that need no user through untouched: they reach
// the handler with no aws.Config.
func ExampleOptions_skipper() {
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()

	o := middlewaretest.Options(env)
	o.Skipper = func(r *http.Request) bool { return r.URL.Path == "/healthz" }
	mw, err := middleware.New(context.Background(), o)
	if err != nil {
		panic(err)
	}
	defer mw.Close()
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, signedIn := ctxcreds.Config(r.Context())
		fmt.Fprint(w, "signed in: ", signedIn)
	}))

	for _, path := range []string{"/healthz", "/files"} {
		w := exampleGet(h, path, "")
		fmt.Println(path, w.Code, w.Body.String())
	}
	// Output:
	// /healthz 200 signed in: false
	// /files 401 {"error":"missing_token","error_description":"a bearer token is required"}
}

// The Logger is where a refusal's cause shows: IAM Identity Center and STS
// answer every problem of a user with a 403, and only the log record
// carries the AWS error code (aws_code; see the README's troubleshooting
// table). Records name users by a hash only, never a token.
func ExampleOptions_logger() {
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	env.AWS.RemoveUser("mallory")

	o := middlewaretest.Options(env)
	o.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "user", "duration", "background":
				return slog.Attr{} // left out here so that the output is stable
			}
			return a
		},
	}))
	mw, err := middleware.New(context.Background(), o)
	if err != nil {
		panic(err)
	}
	defer mw.Close()

	w := exampleGet(mw.Handler(http.NotFoundHandler()), "/", env.IdP.Token("mallory"))
	fmt.Println(w.Code)
	// Output:
	// level=WARN msg="tipkit: credentials not obtained" op=exchange failure=refused aws_op=CreateTokenWithIAM aws_code=InvalidGrantException
	// level=WARN msg="tipkit: request refused" kind=forbidden code=access_denied aws_op=CreateTokenWithIAM aws_code=InvalidGrantException
	// 403
}
