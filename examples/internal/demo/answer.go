package demo

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/accessgrants"
)

// Problem is the JSON body of a failed request, shaped like the
// middleware's own error answers.
type Problem struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Listing is the JSON answer of GET /files.
type Listing struct {
	Bucket string   `json:"bucket"`
	Prefix string   `json:"prefix,omitempty"`
	Keys   []string `json:"keys"`
}

// Written is the JSON answer of PUT /files/{key}.
type Written struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
	Size   int    `json:"size"`
}

// MaxUpload is the largest body PUT /files/{key} accepts.
const MaxUpload = 1 << 20

// S3Problem maps an error of an S3 call, or of accessgrants asking S3
// Access Grants for the call's credentials, to an HTTP status and body:
// AccessDenied → 403, NoSuchKey and NoSuchBucket → 404, a key or prefix
// S3 Access Grants cannot take → 400, a request without a caller → 500
// (NoConfig), a cancelled or timed-out request → 504, anything else → 502.
// The body never holds the caller's credentials, only S3's error code.
func S3Problem(err error) (int, Problem) {
	switch {
	case errors.Is(err, accessgrants.ErrDenied):
		return http.StatusForbidden, Problem{"access_denied", "no S3 access grant of the signed-in user covers this request"}
	case errors.Is(err, accessgrants.ErrRequest):
		return http.StatusBadRequest, Problem{"invalid_request", "the key or prefix is not one S3 Access Grants can grant"}
	case errors.Is(err, accessgrants.ErrNoCaller):
		return http.StatusInternalServerError, NoConfig
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "AccessDenied", "Forbidden":
			return http.StatusForbidden, Problem{"access_denied", "S3 refused this request for the signed-in user"}
		case "NoSuchKey", "NotFound":
			return http.StatusNotFound, Problem{"not_found", "no such key"}
		case "NoSuchBucket":
			return http.StatusNotFound, Problem{"not_found", "no such bucket"}
		default:
			return http.StatusBadGateway, Problem{"s3_error", "S3 answered " + code}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return http.StatusGatewayTimeout, Problem{"timeout", "S3 did not answer in time"}
	}
	return http.StatusBadGateway, Problem{"s3_error", "S3 could not be reached"}
}

// NoConfig is the answer when a handler finds no AWS configuration in its
// request: the middleware did not run for this route.
var NoConfig = Problem{"no_credentials", "no AWS configuration for this request"}

// TooLarge is the answer to an upload larger than MaxUpload.
var TooLarge = Problem{"too_large", "the body is larger than 1 MiB"}

// BadKey is the answer to an empty key.
var BadKey = Problem{"invalid_request", "a key is required"}
