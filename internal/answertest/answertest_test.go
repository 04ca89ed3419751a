package answertest_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/labstack/echo/v4"

	"github.com/tipkit/tipkit/adapters/echotip"
	"github.com/tipkit/tipkit/adapters/gintip"
	"github.com/tipkit/tipkit/internal/answertest"
	"github.com/tipkit/tipkit/middleware"
)

func init() { gin.SetMode(gin.TestMode) }

// ginStack mounts m on a Gin engine, in front of next on every path and
// method.
func ginStack(m *middleware.Middleware, next http.Handler) http.Handler {
	r := gin.New()
	r.Use(gintip.New(m))
	r.Any("/*path", gin.WrapH(next))
	return r
}

// echoStack mounts m on an Echo server, in front of next on every path and
// method.
func echoStack(m *middleware.Middleware, next http.Handler) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echotip.New(m))
	e.Any("/*", echo.WrapHandler(next))
	return e
}

// TestAnswersAcrossFrameworks checks every answer of the table through
// net/http, Gin and Echo, and that Gin's and Echo's are byte for byte those
// of net/http.
func TestAnswersAcrossFrameworks(t *testing.T) {
	answertest.Run(t, map[string]answertest.Stack{"gin": ginStack, "echo": echoStack})
}
