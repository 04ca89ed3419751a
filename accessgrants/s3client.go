package accessgrants

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Client returns an S3 client that acts as the caller of each
// operation's context: built once, shared by every request of every user.
// Each operation asks the Cache, as [Cache.GetDataAccess] does, for the
// caller's S3 Access Grants credentials for the operation's target and
// permission, and is signed with them; the credentials are held per user
// until shortly before they expire and serve the user's later operations
// within the same matched grant. base gives the region, the endpoint, the
// HTTP client, the retryer and the rest; its credentials are never used.
// optFns adjust the client's options as those of s3.NewFromConfig do
// (UsePathStyle...); the client's credentials are set after them.
//
// Operations, their permission and target (the mapping of AWS's S3 Access
// Grants plugin for Java):
//
//   - GetObject, HeadObject, GetObjectAttributes, GetObjectTagging: READ
//     on the object;
//   - ListObjectsV2, ListObjects, ListMultipartUploads: READ on the
//     prefix (the whole bucket when it is empty);
//   - PutObject, DeleteObject, CreateMultipartUpload, UploadPart,
//     CompleteMultipartUpload, AbortMultipartUpload, ListParts: WRITE on
//     the object;
//   - DeleteObjects: WRITE on the longest prefix common to its keys;
//   - CopyObject, UploadPartCopy: READ on the source object and WRITE on
//     the destination object. S3 checks both with the one signature of
//     the request, so one set of credentials must reach both: when the two
//     resolve to the same grant, the copy is signed with credentials of
//     READWRITE on the destination, which reach the whole grant (one more
//     GetDataAccess the first time; the user's later reads and writes in
//     that grant use them too). When source and destination are in two
//     different grants, no one set of credentials reaches both, and the
//     copy is refused with an error matching [ErrDenied] before anything
//     is sent (copy through GetObject and PutObject instead).
//
// Any other operation fails with [ErrUnsupported] and is not sent. An
// operation whose context holds no caller fails with [ErrNoCaller] before
// any call; a refusal of S3 Access Grants matches [ErrDenied] (unless
// Options.Fallback signs it); a target S3 Access Grants cannot take (a key
// ending in "*") matches [ErrRequest]; S3's own answers are the SDK's
// typed errors. [HTTPStatus] turns any of them into an HTTP status.
//
// The credentials of an operation travel in its context: an option of a
// single call that replaces the client's Credentials replaces the
// caller's too.
func (c *Cache) S3Client(base aws.Config, optFns ...func(*s3.Options)) *s3.Client {
	fns := append(slices.Clone(optFns), c.asCallerS3)
	client := s3.NewFromConfig(base, fns...)
	if _, ok := client.Options().Credentials.(operationCredentials); !ok {
		// The SDK wrapped the provider (in a cache shared by every call,
		// which would hand one caller's credentials to the next): the
		// client refuses every operation rather than sign it so.
		return s3.NewFromConfig(base, append(fns, refuseAll)...)
	}
	return client
}

// refuseAll makes every operation of an S3 client fail before it is sent.
func refuseAll(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("tipkit.accessgrants.Refuse",
			func(context.Context, middleware.InitializeInput, middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("%w: this version of the AWS SDK caches the client's credentials across calls, so S3Client cannot give each operation its caller's", ErrUnsupported)
			}), middleware.Before)
	})
}

// asCallerS3 makes every operation of an S3 client ask c for the caller's
// credentials: an Initialize step (after the SDK's input validation) puts
// them in the operation's context, and the client's credentials provider
// reads them there. Nothing is held in the client, so no operation can
// be signed with another's credentials. S3 Express sessions, which the
// client would make with its own credentials, are disabled.
func (c *Cache) asCallerS3(o *s3.Options) {
	o.Credentials = operationCredentials{}
	o.DisableS3ExpressSessionAuth = aws.Bool(true)
	o.APIOptions = append(o.APIOptions, userAgent, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(perOperation{c}, middleware.After)
	})
}

// credentialsKey is the context key of an operation's credentials.
type credentialsKey struct{}

// operationCredentials is the credentials provider of the client of
// S3Client: the credentials the operation's context holds.
type operationCredentials struct{}

// Retrieve returns the credentials perOperation put in ctx.
func (operationCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p, ok := ctx.Value(credentialsKey{}).(aws.CredentialsProvider)
	if !ok {
		return aws.Credentials{}, errors.New("accessgrants: no credentials of S3 Access Grants in this operation's context")
	}
	return p.Retrieve(ctx)
}

// perOperation is the Initialize step of the client of S3Client.
type perOperation struct{ c *Cache }

// ID names the step.
func (perOperation) ID() string { return "tipkit.accessgrants.PerOperation" }

// HandleInitialize obtains the caller's credentials for the operation and
// puts them in its context.
func (m perOperation) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error) {
	p, err := m.c.forOperation(ctx, middleware.GetOperationName(ctx), in.Parameters)
	if err != nil {
		return middleware.InitializeOutput{}, middleware.Metadata{}, err
	}
	return next.HandleInitialize(context.WithValue(ctx, credentialsKey{}, p), in)
}

// forOperation returns the credentials that sign the S3 operation op of
// input params for the caller of ctx.
func (c *Cache) forOperation(ctx context.Context, op string, params any) (aws.CredentialsProvider, error) {
	u, cfg, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	reqs, err := s3Requests(op, params)
	if err != nil {
		return nil, err
	}
	p, err := c.signer(ctx, u, cfg, op, reqs)
	if errors.Is(err, ErrDenied) && c.o.Fallback != nil {
		return c.o.Fallback, nil
	}
	return p, err
}

// signer returns the credentials that serve every request of reqs (one,
// or for a copy the source's READ and the destination's WRITE).
func (c *Cache) signer(ctx context.Context, u user, cfg aws.Config, op string, reqs []Request) (aws.CredentialsProvider, error) {
	first, err := c.obtain(ctx, u, cfg, reqs[0])
	switch {
	case err != nil:
		return nil, err
	case len(reqs) == 1:
		return first.provider, nil
	}
	second, err := c.obtain(ctx, u, cfg, reqs[1])
	if err != nil {
		return nil, err
	}
	if first == second {
		return first.provider, nil
	}
	spans := fmt.Errorf("%w: %s: its source and destination are in two grants of the caller, and S3 checks both with one set of credentials", ErrDenied, op)
	if !first.scoped || !second.scoped || first.scope != second.scope {
		return nil, spans
	}
	// One grant, credentials of READ and of WRITE: READWRITE on the
	// destination matches the same grant and reaches the source too.
	rw := reqs[1]
	rw.Permission = types.PermissionReadwrite
	both, err := c.obtain(ctx, u, cfg, rw)
	switch {
	case errors.Is(err, ErrDenied):
		return nil, spans
	case err != nil:
		return nil, err
	case !both.scoped || both.scope != first.scope:
		return nil, spans
	}
	return both.provider, nil
}

// s3Requests maps the S3 operation op of input params to what S3 Access
// Grants must allow: one Request, or two for a copy (the source's READ,
// then the destination's WRITE).
func s3Requests(op string, params any) ([]Request, error) {
	read, write := types.PermissionRead, types.PermissionWrite
	object := func(bucket, key *string, perm types.Permission) []Request {
		return []Request{Object(aws.ToString(bucket), aws.ToString(key), perm)}
	}
	prefix := func(bucket, prefix *string, perm types.Permission) []Request {
		return []Request{Prefix(aws.ToString(bucket), aws.ToString(prefix), perm)}
	}
	switch in := params.(type) {
	case *s3.GetObjectInput:
		return object(in.Bucket, in.Key, read), nil
	case *s3.HeadObjectInput:
		return object(in.Bucket, in.Key, read), nil
	case *s3.GetObjectAttributesInput:
		return object(in.Bucket, in.Key, read), nil
	case *s3.GetObjectTaggingInput:
		return object(in.Bucket, in.Key, read), nil
	case *s3.ListObjectsV2Input:
		return prefix(in.Bucket, in.Prefix, read), nil
	case *s3.ListObjectsInput:
		return prefix(in.Bucket, in.Prefix, read), nil
	case *s3.ListMultipartUploadsInput:
		return prefix(in.Bucket, in.Prefix, read), nil
	case *s3.PutObjectInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.DeleteObjectInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.CreateMultipartUploadInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.UploadPartInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.CompleteMultipartUploadInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.AbortMultipartUploadInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.ListPartsInput:
		return object(in.Bucket, in.Key, write), nil
	case *s3.DeleteObjectsInput:
		var keys []string
		if in.Delete != nil {
			for _, o := range in.Delete.Objects {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		return []Request{Prefix(aws.ToString(in.Bucket), commonPrefix(keys), write)}, nil
	case *s3.CopyObjectInput:
		return copyRequests(op, in.CopySource, in.Bucket, in.Key)
	case *s3.UploadPartCopyInput:
		return copyRequests(op, in.CopySource, in.Bucket, in.Key)
	}
	if op == "" {
		op = fmt.Sprintf("%T", params)
	}
	return nil, fmt.Errorf("%w: %s is not sent (the client of S3Client maps object reads, lists, writes, deletes and copies)", ErrUnsupported, op)
}

// copyRequests returns the source's READ and the destination's WRITE of a
// copy whose x-amz-copy-source is source: "bucket/key" or "/bucket/key",
// URL-encoded, with an optional "?versionId=".
func copyRequests(op string, source, bucket, key *string) ([]Request, error) {
	raw, _, _ := strings.Cut(aws.ToString(source), "?")
	decoded, err := url.PathUnescape(strings.TrimPrefix(raw, "/"))
	srcBucket, srcKey, ok := strings.Cut(decoded, "/")
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: %s: the copy source must be bucket/key, URL-encoded", ErrRequest, op)
	}
	return []Request{
		Object(srcBucket, srcKey, types.PermissionRead),
		Object(aws.ToString(bucket), aws.ToString(key), types.PermissionWrite),
	}, nil
}

// commonPrefix returns the longest prefix of every key, cut back to whole
// UTF-8 characters; "" when there is none.
func commonPrefix(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	p := keys[0]
	for _, k := range keys[1:] {
		n := 0
		for n < len(p) && n < len(k) && p[n] == k[n] {
			n++
		}
		p = p[:n]
	}
	for len(p) > 0 && !utf8.ValidString(p) {
		p = p[:len(p)-1]
	}
	return p
}

// HTTPStatus returns the HTTP status that answers err, an error of
// [Cache.GetDataAccess], [Cache.ListCallerAccessGrants] or an operation
// of the client of [Cache.S3Client], as a file server answers its users:
//
//   - nil: 200;
//   - [ErrNoCaller]: 401 (the request reached the handler without an
//     authenticated caller: behind tipkit's middleware, a route outside it);
//   - [ErrDenied], and S3's AccessDenied: 403;
//   - [ErrRequest]: 400 (a key or prefix S3 Access Grants cannot take);
//   - S3's NoSuchKey, NoSuchBucket, NotFound (a HeadObject of no object):
//     404; PreconditionFailed 412, InvalidRange 416;
//   - throttling (SlowDown, Throttling...), S3's 5xx answers, a call that
//     got no answer or ran out of time, and any other failure of S3
//     Access Grants: 503;
//   - anything else ([ErrUnsupported], [ErrConfig], another S3 error): 500.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNoCaller):
		return http.StatusUnauthorized
	case errors.Is(err, ErrDenied):
		return http.StatusForbidden
	case errors.Is(err, ErrRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrConfig):
		return http.StatusInternalServerError
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "AccessDenied", "Forbidden":
			return http.StatusForbidden
		case "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload":
			return http.StatusNotFound
		case "PreconditionFailed":
			return http.StatusPreconditionFailed
		case "InvalidRange":
			return http.StatusRequestedRangeNotSatisfiable
		case "SlowDown", "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
			"ServiceUnavailable", "InternalError", "RequestTimeout":
			return http.StatusServiceUnavailable
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return http.StatusServiceUnavailable
	}
	var (
		agErr   *Error
		sendErr *smithyhttp.RequestSendError
		netErr  net.Error
	)
	if errors.As(err, &agErr) || ae == nil && (errors.As(err, &sendErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		// S3 Access Grants or STS failed otherwise, or no answer came (a
		// timeout, a connection refused).
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
