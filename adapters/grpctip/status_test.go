package grpctip

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/tipkit/tipkit/middleware"
)

// TestStatusOf checks the mapping of every kind of refusal, the message,
// and the retry delay.
func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err   *middleware.Error
		code  codes.Code
		msg   string
		retry time.Duration // 0: no RetryInfo
	}{
		{&middleware.Error{Kind: middleware.KindNoToken, Code: "missing_token", Description: "a bearer token is required"}, codes.Unauthenticated, "a bearer token is required", 0},
		{&middleware.Error{Kind: middleware.KindInvalidRequest, Code: "invalid_request"}, codes.Unauthenticated, "invalid_request", 0},
		{&middleware.Error{Kind: middleware.KindInvalidToken, Code: "invalid_token", Description: "expired"}, codes.Unauthenticated, "expired", 0},
		{&middleware.Error{Kind: middleware.KindForbidden, Code: "access_denied", Description: "no"}, codes.PermissionDenied, "no", 0},
		{&middleware.Error{Kind: middleware.KindUnavailable, Description: "later"}, codes.Unavailable, "later", 5 * time.Second},
		{&middleware.Error{Kind: middleware.KindUnavailable, Description: "later", RetryAfter: -time.Second}, codes.Unavailable, "later", 5 * time.Second},
		{&middleware.Error{Kind: middleware.KindUnavailable, Description: "later", RetryAfter: 1500 * time.Millisecond}, codes.Unavailable, "later", 1500 * time.Millisecond},
		{&middleware.Error{Kind: middleware.KindInternal, Code: "server_error"}, codes.Internal, "server_error", 0},
		{&middleware.Error{Kind: middleware.ErrorKind(99), Description: "odd"}, codes.Internal, "odd", 0},
		{nil, codes.Internal, "", 0},
	} {
		st := statusOf(tc.err)
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("%v: %v %q, want %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
		var retry []time.Duration
		for _, d := range st.Details() {
			ri, ok := d.(*errdetails.RetryInfo)
			if !ok {
				t.Errorf("%v: detail %T %v", tc.err, d, d)
				continue
			}
			retry = append(retry, ri.GetRetryDelay().AsDuration())
		}
		switch {
		case tc.retry == 0 && len(retry) != 0:
			t.Errorf("%v: RetryInfo %v, want none", tc.err, retry)
		case tc.retry != 0 && (len(retry) != 1 || retry[0] != tc.retry):
			t.Errorf("%v: RetryInfo %v, want %v", tc.err, retry, tc.retry)
		}
	}
	// The default delay is the one the HTTP answer gives.
	w := httptest.NewRecorder()
	middleware.DefaultErrorHandler("")(w, httptest.NewRequest(http.MethodGet, "/", nil), &middleware.Error{Kind: middleware.KindUnavailable})
	if got := w.Header().Get("Retry-After"); got != strconv.Itoa(int(defaultRetryDelay/time.Second)) {
		t.Errorf("HTTP answers a 503 without delay with Retry-After %q, gRPC with %v", got, defaultRetryDelay)
	}
}
