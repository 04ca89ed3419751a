// Command nethttp is a small file server on plain net/http where each user
// reaches only their own files in S3, through the same server and the same
// IAM role: tipkit's middleware verifies the user's token and puts the
// user's identity-enhanced aws.Config in the request context; the handlers
// call S3 with one client shared by every user (accessgrants'
// Cache.S3Client), which signs each operation with the credentials S3
// Access Grants (S3 Control GetDataAccess) vends the caller for the prefix
// or key it names, only within the user's grants.
//
//	GET /files?prefix=alice/   lists keys (GetDataAccess READ, ListObjectsV2)
//	GET /files/{key...}        reads a file (GetDataAccess READ, GetObject)
//	PUT /files/{key...}        writes a file (GetDataAccess WRITE, PutObject)
//
// The listing takes its prefix from ?prefix=: S3 Access Grants allow a
// listing only within a granted prefix.
//
// Routing uses the method and wildcard patterns of net/http (Go 1.22 and
// later). Run it with no environment for a local stand-in of AWS with two
// users and ready-to-paste curl commands, with -selftest to check it end to
// end, or with the TIPKIT_ variables against real AWS (see the README).
//
// It also shows tipkit's OpenTelemetry: GET /metrics, outside the
// middleware (no token), serves the middleware's metrics in the Prometheus
// format through the OpenTelemetry Prometheus exporter, and -trace-stdout
// prints spans on stdout: each request's server span, the exchange it led
// beneath it, the AWS SDK's calls beneath that, and key set fetches. The
// self-test reads /metrics before and after the users' requests.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

func main() {
	tel := newTelemetry(os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := example(tel).Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	// Print the spans still batched before exiting.
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := tel.shutdown(flush); err != nil {
		fmt.Fprintf(os.Stderr, "nethttp: telemetry: %v\n", err)
	}
	cancel()
	os.Exit(code)
}

// example is the file server with its telemetry: the -trace-stdout flag,
// the providers in the middleware's options, and the self-test's reading
// of /metrics.
func example(tel *telemetry) demo.Example {
	return demo.Example{
		Name:    "nethttp",
		Router:  func(app demo.App) http.Handler { return newHandler(app, tel) },
		Flags:   tel.flags,
		Options: tel.options,
		Check:   &metricsCheck{},
	}
}

// newHandler routes the file API behind the tipkit middleware, each request
// in a server span, and /metrics beside it, outside the middleware: a
// scrape needs no token, and is not counted as a request of the API.
func newHandler(app demo.App, tel *telemetry) http.Handler {
	f := files{bucket: app.Bucket, s3: app.S3}
	api := http.NewServeMux()
	api.HandleFunc("GET /files", f.list)
	api.HandleFunc("GET /files/{key...}", f.get)
	api.HandleFunc("PUT /files/{key...}", f.put)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.metrics())
	mux.Handle("/", tel.traced(api, app.Middleware.Handler(api)))
	return mux
}

// files serves one S3 bucket. Its handlers know nothing about who calls
// them: the request context carries the caller, the S3 client signs each
// operation with the caller's credentials of S3 Access Grants, and S3
// Access Grants decides what the user may reach.
type files struct {
	bucket string
	s3     *s3.Client
}

func (f files) list(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	out := demo.Listing{Bucket: f.bucket, Prefix: prefix, Keys: []string{}}
	pages := s3.NewListObjectsV2Paginator(f.s3, &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(r.Context())
		if err != nil {
			writeS3Error(w, err)
			return
		}
		for _, o := range page.Contents {
			out.Keys = append(out.Keys, aws.ToString(o.Key))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f files) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		writeJSON(w, http.StatusBadRequest, demo.BadKey)
		return
	}
	obj, err := f.s3.GetObject(r.Context(), &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		writeS3Error(w, err)
		return
	}
	defer obj.Body.Close()
	w.Header().Set("Content-Type", aws.ToString(obj.ContentType))
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	_, _ = io.Copy(w, obj.Body)
}

func (f files) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		writeJSON(w, http.StatusBadRequest, demo.BadKey)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, demo.MaxUpload))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, demo.TooLarge)
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, demo.Problem{Error: "invalid_request", Description: "the body could not be read"})
		return
	}
	in := &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		in.ContentType = aws.String(ct)
	}
	out, err := f.s3.PutObject(r.Context(), in)
	if err != nil {
		writeS3Error(w, err)
		return
	}
	writeJSON(w, http.StatusOK, demo.Written{Bucket: f.bucket, Key: key, ETag: aws.ToString(out.ETag), Size: len(body)})
}

func writeS3Error(w http.ResponseWriter, err error) {
	status, problem := demo.ErrorProblem(err)
	writeJSON(w, status, problem)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
