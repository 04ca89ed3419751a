// Package gintip connects a [middleware.Middleware] to the Gin web
// framework.
//
// The adapter holds no logic of its own: [New] asks the middleware for its
// decision on each request and either passes the request on, carrying the
// caller's AWS configuration, or answers it exactly as the net/http
// [middleware.Middleware.Handler] would (same status, headers and body) and
// aborts the chain.
//
//	r := gin.New()
//	r.Use(gintip.New(m)) // m: a *middleware.Middleware (middleware.New)
//	r.GET("/whoami", func(c *gin.Context) {
//		cfg, ok := gintip.Config(c)
//		if !ok {
//			c.Status(http.StatusUnauthorized)
//			return
//		}
//		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(c.Request.Context(), &sts.GetCallerIdentityInput{})
//		if err != nil {
//			c.Status(http.StatusBadGateway)
//			return
//		}
//		c.String(http.StatusOK, aws.ToString(out.Arn)) // the access role's session of the caller
//	})
//
// The caller's configuration reaches what AWS lets identity-enhanced
// sessions call (its managed policy
// AWSIAMIdentityCenterAllowListForIdentityContext: S3 Access Grants'
// GetDataAccess, Amazon Q Business's ChatSync, Athena...), and STS
// GetCallerIdentity; not S3 itself, which takes the credentials S3 Access
// Grants vends for the caller's grants.
//
// Routes that need no authentication are best kept out of the group that
// uses the middleware, or skipped with [middleware.Options].Skipper.
package gintip

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gin-gonic/gin"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
)

// New returns the Gin middleware of m. A request that m accepts goes on
// with c.Request carrying the caller's configuration and identity (read
// them with [Config] and [Identity]); a request that m refuses is answered
// by m's error handler and the chain is aborted, so no later handler runs.
//
// New panics if m is nil, as Gin does with a nil handler: that is a mistake
// in the program, not in a request.
func New(m *middleware.Middleware) gin.HandlerFunc {
	if m == nil {
		panic("gintip: New called with a nil *middleware.Middleware")
	}
	return func(c *gin.Context) {
		r, err := m.Authenticate(c.Request)
		if err != nil {
			m.HandleError(c.Writer, c.Request, err)
			c.Abort()
			return
		}
		c.Request = r
		c.Next()
	}
}

// Config returns the AWS configuration of the caller of c's request, with
// the caller's own identity-enhanced credentials, and whether there is one.
// There is none when the middleware did not run, skipped the request, or let
// it through anonymously ([middleware.Options].Optional).
func Config(c *gin.Context) (aws.Config, bool) {
	if c == nil || c.Request == nil {
		return aws.Config{}, false
	}
	return ctxcreds.Config(c.Request.Context())
}

// Identity returns the verified caller of c's request (issuer, subject,
// claims, credential expiry), and whether there is one. The Identity is
// read-only.
func Identity(c *gin.Context) (ctxcreds.Identity, bool) {
	if c == nil || c.Request == nil {
		return ctxcreds.Identity{}, false
	}
	return ctxcreds.IdentityFrom(c.Request.Context())
}
