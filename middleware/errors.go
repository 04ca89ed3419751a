package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/verify"
)

// ErrorKind is the kind of failure of a request. Each kind has its HTTP
// answer (RFC 6750 for the authentication failures).
type ErrorKind int

const (
	// KindNoToken means the request carries no token, or none for the
	// Bearer scheme (for example Basic credentials): 401 with a bare
	// WWW-Authenticate: Bearer realm="..." challenge and no error code,
	// as RFC 6750 section 3.1 asks.
	KindNoToken ErrorKind = iota + 1
	// KindInvalidRequest means the request is malformed: several
	// Authorization headers, a token in the query string or form body, a
	// Bearer scheme without a token, bytes a token cannot hold. 401 with
	// the RFC 6750 code invalid_request: every refusal of a request's
	// credentials is a 401 (RFC 6750 section 3.1 suggests 400 for this
	// code; a client that retries after a 401 with a fresh, well-formed
	// request is what is wanted here too).
	KindInvalidRequest
	// KindInvalidToken means the token is malformed, expired, not signed by
	// a trusted key, or not meant for this service; also a user whose
	// credentials can only be renewed with a fresh token. 401
	// invalid_token.
	KindInvalidToken
	// KindForbidden means IAM Identity Center or STS refused the user. 403
	// access_denied.
	KindForbidden
	// KindUnavailable means a dependency (the identity provider's keys, AWS)
	// is unavailable for now. 503 with Retry-After.
	KindUnavailable
	// KindInternal means the server cannot serve the request because of its
	// own fault, such as a configuration error found at run time. 500.
	KindInternal
)

// String returns a short lower-case name of k, fit for a metric label.
func (k ErrorKind) String() string {
	switch k {
	case KindNoToken:
		return "no_token"
	case KindInvalidRequest:
		return "invalid_request"
	case KindInvalidToken:
		return "invalid_token"
	case KindForbidden:
		return "forbidden"
	case KindUnavailable:
		return "unavailable"
	case KindInternal:
		return "internal"
	}
	return "unknown"
}

// Status returns the HTTP status code of k: 401 for KindNoToken,
// KindInvalidRequest and KindInvalidToken, 403, 503, or 500 (also for an
// unknown kind).
func (k ErrorKind) Status() int {
	switch k {
	case KindNoToken, KindInvalidRequest, KindInvalidToken:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// code returns the default OAuth error code of k.
func (k ErrorKind) code() string {
	switch k {
	case KindNoToken:
		return "missing_token"
	case KindInvalidRequest:
		return "invalid_request"
	case KindInvalidToken:
		return "invalid_token"
	case KindForbidden:
		return "access_denied"
	case KindUnavailable:
		return "temporarily_unavailable"
	}
	return "server_error"
}

// defaultRetryAfter is the Retry-After of a 503 whose Error does not set one.
const defaultRetryAfter = 5 * time.Second

// Error is the failure of a request, ready to be answered. Its Code and
// Description are fixed strings chosen by this package: they never hold a
// token, a claim value or anything else taken from the request.
type Error struct {
	// Kind says which answer the failure gets.
	Kind ErrorKind
	// Code is the OAuth error code: "invalid_request", "invalid_token",
	// "access_denied", "temporarily_unavailable", "server_error", or
	// "missing_token" for KindNoToken (which RFC 6750 answers without an
	// error code in WWW-Authenticate).
	Code string
	// Description is a short human sentence for the error_description.
	Description string
	// Err is the underlying error, if any, for logs. It may name a key ID
	// or an algorithm taken from the token's header, but never the token.
	Err error
	// RetryAfter is how long the client should wait before retrying, for
	// KindUnavailable. Zero means five seconds.
	RetryAfter time.Duration
}

// newError returns an *Error of kind k with k's default code.
func newError(k ErrorKind, desc string, err error) *Error {
	return &Error{Kind: k, Code: k.code(), Description: desc, Err: err}
}

// Error returns "middleware: CODE: DESCRIPTION". It never contains a token.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = e.Kind.code()
	}
	if e.Description == "" {
		return "middleware: " + code
	}
	return "middleware: " + code + ": " + e.Description
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of e's Kind and, when target's
// Code is set, of e's Code: errors.Is(err, &middleware.Error{Kind:
// middleware.KindForbidden}) tells a refusal's answer whatever wraps it.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

// ErrorHandler writes the answer to a request that failed with err.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err *Error)

// DefaultErrorHandler returns the ErrorHandler that answers with RFC
// 6750's challenges and codes, and RFC 6749's codes for 403
// (access_denied) and 503 (temporarily_unavailable), with realm in the
// challenge (omitted when empty):
//
//   - the status of err.Kind (see [ErrorKind.Status]);
//   - on 401 and 403, WWW-Authenticate: Bearer realm="...", with
//     error="..." and error_description="..." except for [KindNoToken];
//   - on 503, Retry-After in whole seconds, at least 1;
//   - Content-Type: application/json, Cache-Control: no-store,
//     X-Content-Type-Options: nosniff, and the body
//     {"error": CODE, "error_description": DESCRIPTION}.
//
// Every value put in a header is reduced to the bytes a quoted-string may
// hold without escaping (printable ASCII but '"' and '\'). A nil err is
// answered as an internal error.
func DefaultErrorHandler(realm string) ErrorHandler {
	realm = quotable(realm)
	return func(w http.ResponseWriter, _ *http.Request, err *Error) {
		if err == nil {
			err = newError(KindInternal, "", nil)
		}
		code, desc := quotable(err.Code), quotable(err.Description)
		if code == "" {
			code = err.Kind.code()
		}
		status := err.Kind.Status()
		h := w.Header()
		switch status {
		case http.StatusUnauthorized, http.StatusForbidden:
			h.Set("WWW-Authenticate", challenge(realm, err.Kind, code, desc))
		case http.StatusServiceUnavailable:
			h.Set("Retry-After", strconv.Itoa(retrySeconds(err.RetryAfter)))
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		body, _ := json.Marshal(struct {
			Error       string `json:"error"`
			Description string `json:"error_description,omitempty"`
		}{code, desc}) // two strings: Marshal cannot fail
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// challenge builds the WWW-Authenticate value of an answer.
func challenge(realm string, k ErrorKind, code, desc string) string {
	var params []string
	if realm != "" {
		params = append(params, `realm="`+realm+`"`)
	}
	if k != KindNoToken {
		params = append(params, `error="`+code+`"`)
		if desc != "" {
			params = append(params, `error_description="`+desc+`"`)
		}
	}
	if len(params) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(params, ", ")
}

// retrySeconds converts d into a Retry-After value: whole seconds rounded
// up, at least 1, five when d is not positive.
func retrySeconds(d time.Duration) int {
	if d <= 0 {
		d = defaultRetryAfter
	}
	return max(1, int((d+time.Second-1)/time.Second))
}

// quotable returns s without the bytes RFC 6750 forbids in its quoted
// attribute values: anything but %x20-21 / %x23-5B / %x5D-7E.
func quotable(s string) string {
	clean := func(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }
	for i := 0; i < len(s); i++ {
		if !clean(s[i]) {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if clean(s[j]) {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}

// errorFromVerify maps an error of the verify package to its answer:
// verify.ErrUnavailable is a 503 with the verifier's Retry-After, any other
// refusal a 401 invalid_token with the verifier's description; nil gives
// nil.
func errorFromVerify(err error) *Error {
	var ve *verify.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve) && errors.Is(ve, verify.ErrUnavailable):
		e := newError(KindUnavailable, ve.Description, err)
		e.RetryAfter = ve.RetryAfter
		return e
	case errors.As(err, &ve):
		return newError(KindInvalidToken, ve.Description, err)
	}
	return asError(err, KindInvalidToken)
}

// errorFromExchange maps an error of the exchange package (or of the
// context it ran under) to its answer:
//
//   - exchange.ErrReauthenticate: 401 invalid_token, telling the client to
//     obtain a fresh token;
//   - exchange.ErrRefused: 403 access_denied;
//   - exchange.ErrUnavailable, context.DeadlineExceeded, context.Canceled:
//     503 with Retry-After;
//   - exchange.ErrConfig and anything else: 500.
//
// An *Error already in err's chain is returned as is; nil gives nil.
func errorFromExchange(err error) *Error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.Is(err, exchange.ErrReauthenticate):
		return newError(KindInvalidToken, "the token has already been used or has expired: obtain a fresh token from the identity provider and retry", err)
	case errors.Is(err, exchange.ErrRefused):
		return newError(KindForbidden, "AWS refused access to this user", err)
	case errors.Is(err, exchange.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return newError(KindUnavailable, "AWS is unavailable for now: retry later", err)
	}
	return newError(KindInternal, "the server could not process the request", err)
}
