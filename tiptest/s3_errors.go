package tiptest

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"sort"
)

// s3ErrorStatus gives the HTTP status of the S3 error codes the local S3
// answers (and that a Fault may name); other codes take the status
// newAPIError gives them.
var s3ErrorStatus = map[string]int{
	"AccessDenied":                 http.StatusForbidden,
	"AuthorizationHeaderMalformed": http.StatusBadRequest,
	"BadDigest":                    http.StatusBadRequest,
	"EntityTooLarge":               http.StatusBadRequest,
	"ExpiredToken":                 http.StatusBadRequest,
	"InternalError":                http.StatusInternalServerError,
	"InvalidAccessKeyId":           http.StatusForbidden,
	"InvalidArgument":              http.StatusBadRequest,
	"InvalidDigest":                http.StatusBadRequest,
	"InvalidRange":                 http.StatusRequestedRangeNotSatisfiable,
	"InvalidRequest":               http.StatusBadRequest,
	"InvalidToken":                 http.StatusBadRequest,
	"KeyTooLongError":              http.StatusBadRequest,
	"MissingContentLength":         http.StatusLengthRequired,
	"NoSuchBucket":                 http.StatusNotFound,
	"NoSuchKey":                    http.StatusNotFound,
	"NotImplemented":               http.StatusNotImplemented,
	"RequestTimeTooSkewed":         http.StatusForbidden,
	"ServiceUnavailable":           http.StatusServiceUnavailable,
	"SignatureDoesNotMatch":        http.StatusForbidden,
	"SlowDown":                     http.StatusServiceUnavailable,
	"XAmzContentSHA256Mismatch":    http.StatusBadRequest,
}

// s3DefaultMessage gives the message S3 answers with an error code, for a
// Fault that names only the code.
var s3DefaultMessage = map[string]string{
	"AccessDenied":       "Access Denied",
	"ExpiredToken":       "The provided token has expired.",
	"InternalError":      "We encountered an internal error. Please try again.",
	"ServiceUnavailable": "Service is unable to handle request.",
	"SlowDown":           "Please reduce your request rate.",
}

// s3Err returns the S3 error code with its status and message msg (S3's
// usual message when msg is empty); fields are pairs of extra element
// names and values of the error document, such as "Key", "k".
func s3Err(code, msg string, fields ...string) *apiError {
	if msg == "" {
		msg = s3DefaultMessage[code]
	}
	e := newAPIError(code, msg)
	if status, ok := s3ErrorStatus[code]; ok {
		e.status = status
	}
	if len(fields) > 0 {
		e.fields = map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			e.fields[fields[i]] = fields[i+1]
		}
	}
	return e
}

// s3FaultError turns the error of a Fault into S3's shape: its status and
// message are those S3 gives the code.
func s3FaultError(e *apiError) *apiError {
	if _, known := s3ErrorStatus[e.code]; !known {
		return e
	}
	msg := e.msg
	if m, ok := s3DefaultMessage[e.code]; ok && (msg == defaultMessage[e.code] || msg == e.code) {
		msg = m
	}
	return s3Err(e.code, msg)
}

// writeS3Error answers e as S3 does: an <Error> document with Code,
// Message, any extra fields, RequestId and HostId; a HEAD request gets the
// status alone, without a body.
func writeS3Error(w http.ResponseWriter, r *http.Request, requestID string, e *apiError) {
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString("<Error>")
	s3Element(&buf, "Code", e.code)
	s3Element(&buf, "Message", e.msg)
	names := make([]string, 0, len(e.fields))
	for name := range e.fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s3Element(&buf, name, e.fields[name])
	}
	s3Element(&buf, "RequestId", requestID)
	s3Element(&buf, "HostId", w.Header().Get("X-Amz-Id-2"))
	buf.WriteString("</Error>")
	writeBody(w, "application/xml", e.status, buf.Bytes())
}

// s3Element writes <name>escaped value</name>.
func s3Element(buf *bytes.Buffer, name, value string) {
	buf.WriteString("<" + name + ">")
	_ = xml.EscapeText(buf, []byte(value)) // writing to a bytes.Buffer does not fail
	buf.WriteString("</" + name + ">")
}
