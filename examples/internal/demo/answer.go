package demo

import (
	"net/http"

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

// ErrorProblem answers err, an error of the S3 client of
// accessgrants.Cache.S3Client: the status is accessgrants.HTTPStatus's
// (401 no caller, 403 refused, 404 no such key, 400 a key S3 Access Grants
// cannot take, 503 throttling or unavailable, 500 otherwise), and the
// body says which, never the caller's credentials nor S3's message.
func ErrorProblem(err error) (int, Problem) {
	status := accessgrants.HTTPStatus(err)
	switch status {
	case http.StatusUnauthorized:
		return status, NoConfig
	case http.StatusForbidden:
		return status, Problem{"access_denied", "no S3 access grant of the signed-in user covers this request"}
	case http.StatusNotFound:
		return status, Problem{"not_found", "no such key"}
	case http.StatusBadRequest:
		return status, Problem{"invalid_request", "the key or prefix is not one S3 Access Grants can grant"}
	case http.StatusServiceUnavailable:
		return status, Problem{"temporarily_unavailable", "S3 or S3 Access Grants is unavailable; try again"}
	}
	return status, Problem{"server_error", "the request could not be served"}
}

// NoConfig is the answer when a handler finds no AWS configuration in its
// request: the middleware did not run for this route.
var NoConfig = Problem{"no_credentials", "no AWS configuration for this request"}

// TooLarge is the answer to an upload larger than MaxUpload.
var TooLarge = Problem{"too_large", "the body is larger than 1 MiB"}

// BadKey is the answer to an empty key.
var BadKey = Problem{"invalid_request", "a key is required"}
