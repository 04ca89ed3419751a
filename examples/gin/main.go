// Command gin is a small file server on Gin where each user reaches only
// their own files in S3, through the same server and the same IAM role:
// gintip runs tipkit's middleware, which verifies the user's token and puts
// the user's identity-enhanced aws.Config in the request context; the
// handlers call S3 with one client shared by every user (accessgrants'
// Cache.S3Client), which signs each operation with the credentials S3
// Access Grants (S3 Control GetDataAccess) vends the caller for the prefix
// or key it names, only within the user's grants.
//
//	GET /files?prefix=alice/   lists keys (GetDataAccess READ, ListObjectsV2)
//	GET /files/*key            reads a file (GetDataAccess READ, GetObject)
//	PUT /files/*key            writes a file (GetDataAccess WRITE, PutObject)
//
// The listing takes its prefix from ?prefix=: S3 Access Grants allow a
// listing only within a granted prefix.
//
// Run it with no environment for a local stand-in of AWS with two users and
// ready-to-paste curl commands, with -selftest to check it end to end, or
// with the TIPKIT_ variables against real AWS (see the README).
package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gin-gonic/gin"

	"github.com/tipkit/tipkit/adapters/gintip"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

func main() { demo.Main("gin", newRouter) }

// newRouter routes the file API behind the tipkit middleware.
func newRouter(app demo.App) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	f := files{bucket: app.Bucket, s3: app.S3}
	api := r.Group("/files", gintip.New(app.Middleware))
	api.GET("", f.list)
	api.GET("/*key", f.get)
	api.PUT("/*key", f.put)
	return r
}

// files serves one S3 bucket. Its handlers know nothing about who calls
// them: the request context carries the caller, the S3 client signs each
// operation with the caller's credentials of S3 Access Grants, and S3
// Access Grants decides what the user may reach.
type files struct {
	bucket string
	s3     *s3.Client
}

// key returns the key of c's route, without the leading slash of Gin's
// catch-all parameter.
func key(c *gin.Context) string { return strings.TrimPrefix(c.Param("key"), "/") }

func (f files) list(c *gin.Context) {
	prefix := c.Query("prefix")
	out := demo.Listing{Bucket: f.bucket, Prefix: prefix, Keys: []string{}}
	pages := s3.NewListObjectsV2Paginator(f.s3, &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(c.Request.Context())
		if err != nil {
			c.JSON(demo.ErrorProblem(err))
			return
		}
		for _, o := range page.Contents {
			out.Keys = append(out.Keys, aws.ToString(o.Key))
		}
	}
	c.JSON(http.StatusOK, out)
}

func (f files) get(c *gin.Context) {
	if key(c) == "" {
		c.JSON(http.StatusBadRequest, demo.BadKey)
		return
	}
	obj, err := f.s3.GetObject(c.Request.Context(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key(c))})
	if err != nil {
		c.JSON(demo.ErrorProblem(err))
		return
	}
	defer obj.Body.Close()
	contentType := aws.ToString(obj.ContentType)
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	c.DataFromReader(http.StatusOK, aws.ToInt64(obj.ContentLength), contentType, obj.Body, nil)
}

func (f files) put(c *gin.Context) {
	if key(c) == "" {
		c.JSON(http.StatusBadRequest, demo.BadKey)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, demo.MaxUpload))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		c.JSON(http.StatusRequestEntityTooLarge, demo.TooLarge)
		return
	case err != nil:
		c.JSON(http.StatusBadRequest, demo.Problem{Error: "invalid_request", Description: "the body could not be read"})
		return
	}
	in := &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key(c)), Body: bytes.NewReader(body)}
	if ct := c.ContentType(); ct != "" {
		in.ContentType = aws.String(ct)
	}
	out, err := f.s3.PutObject(c.Request.Context(), in)
	if err != nil {
		c.JSON(demo.ErrorProblem(err))
		return
	}
	c.JSON(http.StatusOK, demo.Written{Bucket: f.bucket, Key: key(c), ETag: aws.ToString(out.ETag), Size: len(body)})
}
