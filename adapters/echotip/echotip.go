// Package echotip connects a [middleware.Middleware] to the Echo web
// framework (v4).
//
// The adapter holds no logic of its own: the middleware returned by [New]
// asks m for its decision on each request and either passes the request on,
// carrying the caller's AWS configuration, or answers it exactly as the
// net/http [middleware.Middleware.Handler] would (same status, headers and
// body) without calling the next handler.
//
//	e := echo.New()
//	e.Use(echotip.New(m)) // m: a *middleware.Middleware (middleware.New)
//	e.GET("/whoami", func(c echo.Context) error {
//		cfg, ok := echotip.Config(c)
//		if !ok {
//			return echo.ErrUnauthorized
//		}
//		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(c.Request().Context(), &sts.GetCallerIdentityInput{})
//		if err != nil {
//			return echo.ErrBadGateway
//		}
//		return c.String(http.StatusOK, aws.ToString(out.Arn)) // the access role's session of the caller
//	})
//
// The caller's configuration reaches what AWS lets identity-enhanced
// sessions call (its managed policy
// AWSIAMIdentityCenterAllowListForIdentityContext: S3 Access Grants'
// GetDataAccess, Amazon Q Business's ChatSync, Athena...), and STS
// GetCallerIdentity; not S3 itself, which takes the credentials S3 Access
// Grants vends for the caller's grants.
//
// Following Echo's convention, [NewWithConfig] takes a [MiddlewareConfig]
// whose Skipper picks requests that pass untouched. (The name Config is
// taken by the accessor of the caller's configuration, as in the gintip
// package.)
package echotip

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/labstack/echo/v4"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
)

// MiddlewareConfig configures the middleware of [NewWithConfig].
type MiddlewareConfig struct {
	// Skipper, when it returns true, lets the request through untouched:
	// it reaches the next handler with no AWS configuration. Nil skips
	// nothing. Echo's own middleware.Skipper values (such as
	// middleware.DefaultSkipper) fit this field.
	Skipper func(c echo.Context) bool
}

// New returns the Echo middleware of m, skipping no request. It is
// NewWithConfig(m, MiddlewareConfig{}).
func New(m *middleware.Middleware) echo.MiddlewareFunc {
	return NewWithConfig(m, MiddlewareConfig{})
}

// NewWithConfig returns the Echo middleware of m. A request that m accepts
// goes on with c.Request() carrying the caller's configuration and identity
// (read them with [Config] and [Identity]); a request that m refuses
// is answered by m's error handler, and the middleware returns nil without
// calling the next handler, so Echo's HTTPErrorHandler does not write a
// second answer.
//
// NewWithConfig panics if m is nil, as Echo's own middleware do on a
// missing setting: that is a mistake in the program, not in a request.
func NewWithConfig(m *middleware.Middleware, config MiddlewareConfig) echo.MiddlewareFunc {
	if m == nil {
		panic("echotip: a nil *middleware.Middleware was given")
	}
	skip := config.Skipper
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip != nil && skip(c) {
				return next(c)
			}
			r, err := m.Authenticate(c.Request())
			if err != nil {
				m.HandleError(c.Response(), c.Request(), err)
				return nil
			}
			c.SetRequest(r)
			return next(c)
		}
	}
}

// Config returns the AWS configuration of the caller of c's request,
// with the caller's own identity-enhanced credentials, and whether there is
// one. There is none when the middleware did not run, skipped the request,
// or let it through anonymously ([middleware.Options].Optional).
func Config(c echo.Context) (aws.Config, bool) {
	if c == nil || c.Request() == nil {
		return aws.Config{}, false
	}
	return ctxcreds.Config(c.Request().Context())
}

// Identity returns the verified caller of c's request (issuer, subject,
// claims, credential expiry), and whether there is one. The Identity is
// read-only.
func Identity(c echo.Context) (ctxcreds.Identity, bool) {
	if c == nil || c.Request() == nil {
		return ctxcreds.Identity{}, false
	}
	return ctxcreds.IdentityFrom(c.Request().Context())
}
