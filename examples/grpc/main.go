// Command grpc is the file server of examples/nethttp as a gRPC service
// (filespb.Files, in filespb/files.proto): each user reaches only their own
// files in S3, through the same server and the same IAM role. tipkit's
// interceptors (adapters/grpctip) verify the token of each call's
// "authorization: Bearer TOKEN" metadata and hand the handlers the user's
// identity-enhanced aws.Config in their context; with it, the handlers ask
// S3 Access Grants (S3 Control GetDataAccess, through package
// accessgrants) for credentials for the prefix or key they need, which S3
// Access Grants vends only within the user's grants, and call S3 with
// those.
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
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tipkit/tipkit/accessgrants"
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
	filespb.RegisterFilesServer(srv, &files{bucket: app.Bucket, grants: app.Grants, s3Options: app.S3Options})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	return srv
}

// files serves one S3 bucket. Its methods know nothing about who calls
// them: the call's context carries the caller, and S3 Access Grants
// decides what the user may reach.
type files struct {
	filespb.UnimplementedFilesServer
	bucket    string
	grants    *accessgrants.Cache
	s3Options []func(*s3.Options)
}

// chunkSize is the most data one GetResponse carries.
const chunkSize = 64 << 10

// client returns an S3 client acting as the caller of ctx, with
// credentials of S3 Access Grants for perm on path (a key, or with prefix
// a prefix).
func (f *files) client(ctx context.Context, path string, prefix bool, perm s3ctypes.Permission) (*s3.Client, error) {
	req := accessgrants.Object(f.bucket, path, perm)
	if prefix {
		req = accessgrants.Prefix(f.bucket, path, perm)
	}
	cfg, err := f.grants.GetDataAccess(ctx, req)
	if err != nil {
		return nil, s3Status(err)
	}
	return s3.NewFromConfig(cfg, f.s3Options...), nil
}

func (f *files) List(ctx context.Context, req *filespb.ListRequest) (*filespb.ListResponse, error) {
	prefix := req.GetPrefix()
	client, err := f.client(ctx, prefix, true, s3ctypes.PermissionRead)
	if err != nil {
		return nil, err
	}
	out := &filespb.ListResponse{Bucket: f.bucket, Prefix: prefix}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix)})
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
	client, err := f.client(ctx, key, false, s3ctypes.PermissionRead)
	if err != nil {
		return err
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
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
	client, err := f.client(ctx, key, false, s3ctypes.PermissionWrite)
	if err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key), Body: bytes.NewReader(req.GetData())}
	if ct := req.GetContentType(); ct != "" {
		in.ContentType = aws.String(ct)
	}
	out, err := client.PutObject(ctx, in)
	if err != nil {
		return nil, s3Status(err)
	}
	return &filespb.PutResponse{Bucket: f.bucket, Key: key, Etag: aws.ToString(out.ETag), Size: int64(len(req.GetData()))}, nil
}

// s3Status is the status of a failed S3 call: the HTTP examples' answer
// (demo.S3Problem) with the matching code.
func s3Status(err error) error {
	httpStatus, problem := demo.S3Problem(err)
	code := codes.Unavailable // 502: S3 answered with an error, or could not be reached
	switch httpStatus {
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusGatewayTimeout:
		code = codes.DeadlineExceeded
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusInternalServerError: // no caller in the context
		code = codes.Internal
	}
	return status.Error(code, problem.Description)
}
