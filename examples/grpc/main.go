// Command grpc is the file server of examples/nethttp as a gRPC service
// (filespb.Files, in filespb/files.proto): each user reaches only their own
// files in S3, through the same server and the same IAM role. tipkit's
// interceptors (adapters/grpctip) verify the token of each call's
// "authorization: Bearer TOKEN" metadata and hand the handlers the user's
// identity-enhanced aws.Config in their context; the handlers call S3
// with one client shared by every user (accessgrants' Cache.S3Client),
// which signs each operation with the credentials S3 Access Grants (S3
// Control GetDataAccess) vends the caller for the prefix or key it names,
// only within the user's grants.
//
//	List(prefix)            lists keys (GetDataAccess READ, ListObjectsV2)
//	Get(key)                streams a file (GetDataAccess READ, GetObject)
//	Put(key, data)          writes a file (GetDataAccess WRITE, PutObject)
//
// The standard health service (grpc.health.v1.Health) and server
// reflection answer without a token, for probes and for tools such as
// grpcurl.
//
// Run it with no environment for a local stand-in of AWS with two users and
// ready-to-paste grpcurl commands, with -selftest to check it end to end,
// or with the TIPKIT_ variables against real AWS (see the README).
package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tipkit/tipkit/adapters/grpctip"
	"github.com/tipkit/tipkit/examples/grpc/filespb"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newServer returns the gRPC server of the file service behind tipkit's
// interceptors, with the health service and server reflection, which need
// no caller.
func newServer(app demo.App) *grpc.Server {
	noCaller := grpctip.WithSkipper(func(_ context.Context, method string) bool {
		return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
	})
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpctip.UnaryServerInterceptor(app.Middleware, noCaller)),
		grpc.ChainStreamInterceptor(grpctip.StreamServerInterceptor(app.Middleware, noCaller)),
	)
	filespb.RegisterFilesServer(srv, &files{bucket: app.Bucket, s3: app.S3})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	return srv
}

// files serves one S3 bucket. Its methods know nothing about who calls
// them: the call's context carries the caller, the S3 client signs each
// operation with the caller's credentials of S3 Access Grants, and S3
// Access Grants decides what the user may reach.
type files struct {
	filespb.UnimplementedFilesServer
	bucket string
	s3     *s3.Client
}

// chunkSize is the most data one GetResponse carries.
const chunkSize = 64 << 10

func (f *files) List(ctx context.Context, req *filespb.ListRequest) (*filespb.ListResponse, error) {
	prefix := req.GetPrefix()
	out := &filespb.ListResponse{Bucket: f.bucket, Prefix: prefix}
	pages := s3.NewListObjectsV2Paginator(f.s3, &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s3Status(err)
		}
		for _, o := range page.Contents {
			out.Keys = append(out.Keys, aws.ToString(o.Key))
		}
	}
	return out, nil
}

func (f *files) Get(req *filespb.GetRequest, stream grpc.ServerStreamingServer[filespb.GetResponse]) error {
	key := req.GetKey()
	if key == "" {
		return status.Error(codes.InvalidArgument, demo.BadKey.Description)
	}
	ctx := stream.Context()
	obj, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		return s3Status(err)
	}
	defer obj.Body.Close()
	first := &filespb.GetResponse{ContentType: aws.ToString(obj.ContentType)}
	if first.ContentType == "" {
		first.ContentType = "application/octet-stream"
	}
	buf := make([]byte, chunkSize)
	for msg := first; ; msg = new(filespb.GetResponse) {
		n, err := io.ReadFull(obj.Body, buf)
		msg.Data = buf[:n]
		// An empty file is one message with its content type only.
		if n > 0 || msg == first {
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return s3Status(err)
		}
	}
}

func (f *files) Put(ctx context.Context, req *filespb.PutRequest) (*filespb.PutResponse, error) {
	key := req.GetKey()
	switch {
	case key == "":
		return nil, status.Error(codes.InvalidArgument, demo.BadKey.Description)
	case len(req.GetData()) > demo.MaxUpload:
		return nil, status.Error(codes.ResourceExhausted, demo.TooLarge.Description)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key), Body: bytes.NewReader(req.GetData())}
	if ct := req.GetContentType(); ct != "" {
		in.ContentType = aws.String(ct)
	}
	out, err := f.s3.PutObject(ctx, in)
	if err != nil {
		return nil, s3Status(err)
	}
	return &filespb.PutResponse{Bucket: f.bucket, Key: key, Etag: aws.ToString(out.ETag), Size: int64(len(req.GetData()))}, nil
}

// s3Status is the status of a failed S3 call: the HTTP examples' answer
// (demo.ErrorProblem, from accessgrants.HTTPStatus) with the matching
// code.
func s3Status(err error) error {
	httpStatus, problem := demo.ErrorProblem(err)
	code := codes.Internal
	switch httpStatus {
	case http.StatusUnauthorized: // no caller in the context
		code = codes.Unauthenticated
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	}
	return status.Error(code, problem.Description)
}
