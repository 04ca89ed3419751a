package tiptest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// apiError is a refusal of the local AWS, written in the shape of the
// protocol of the operation that refused (awsQuery XML or restJson1 JSON).
type apiError struct {
	code   string
	status int
	msg    string
	// fields are extra members of a restJson1 error body, such as the
	// endpoint and region of InvalidRequestRegionException.
	fields map[string]string
}

// errorStatus gives the HTTP status of the error codes the local AWS uses
// (and of those a Fault may name). A code not listed answers 400.
var errorStatus = map[string]int{
	// STS (awsQuery)
	"AccessDenied":               http.StatusForbidden,
	"ExpiredToken":               http.StatusBadRequest,
	"ExpiredTokenException":      http.StatusBadRequest,
	"IDPCommunicationError":      http.StatusBadRequest,
	"IDPRejectedClaim":           http.StatusForbidden,
	"IncompleteSignature":        http.StatusBadRequest,
	"InternalError":              http.StatusInternalServerError,
	"InternalFailure":            http.StatusInternalServerError,
	"InvalidAction":              http.StatusBadRequest,
	"InvalidClientTokenId":       http.StatusForbidden,
	"InvalidIdentityToken":       http.StatusBadRequest,
	"MissingAuthenticationToken": http.StatusForbidden,
	"RegionDisabledException":    http.StatusForbidden,
	"ServiceUnavailable":         http.StatusServiceUnavailable,
	"SignatureDoesNotMatch":      http.StatusForbidden,
	"Throttling":                 http.StatusBadRequest,
	// IAM (awsQuery)
	"NoSuchEntity": http.StatusNotFound,
	// SSO OIDC (restJson1) and the AWS front end of restJson1 services
	"AccessDeniedException":               http.StatusBadRequest,
	"InternalServerException":             http.StatusInternalServerError,
	"InvalidClientException":              http.StatusUnauthorized,
	"InvalidSignatureException":           http.StatusForbidden,
	"MissingAuthenticationTokenException": http.StatusForbidden,
	"ServiceUnavailableException":         http.StatusServiceUnavailable,
	"UnrecognizedClientException":         http.StatusForbidden,
	"UnknownOperationException":           http.StatusNotFound,
}

// defaultMessage gives the message of an error code when the code alone is
// known (a Fault); it is the text the real services use where one exists.
var defaultMessage = map[string]string{
	"Throttling":              "Rate exceeded",
	"SlowDownException":       "Rate exceeded",
	"InternalError":           "An internal error has occurred",
	"InternalFailure":         "An internal error has occurred",
	"InternalServerException": "An internal error has occurred",
	"ServiceUnavailable":      "Service is unable to handle request",
	"ExpiredToken":            "The security token included in the request is expired",
	"InvalidClientTokenId":    "The security token included in the request is invalid.",
}

// newAPIError returns the error code with its usual status and message msg
// (or the code's usual message when msg is empty).
func newAPIError(code, msg string) *apiError {
	status, ok := errorStatus[code]
	if !ok {
		status = http.StatusBadRequest
	}
	if msg == "" {
		msg = defaultMessage[code]
	}
	if msg == "" {
		msg = code
	}
	return &apiError{code: code, status: status, msg: msg}
}

// Error implements error, so that an apiError can travel as one.
func (e *apiError) Error() string { return e.code + ": " + e.msg }

// stsErrorType is the Type element of an awsQuery error: Receiver for
// server faults, Sender for everything else.
func stsErrorType(status int) string {
	if status >= http.StatusInternalServerError {
		return "Receiver"
	}
	return "Sender"
}

// stsErrorResponse is the awsQuery error document.
type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// stsNamespace is the XML namespace of every STS answer.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// writeSTSError answers e in the awsQuery shape of STS.
func writeSTSError(w http.ResponseWriter, requestID string, e *apiError) {
	writeQueryError(w, stsNamespace, requestID, e)
}

// writeQueryError answers e in the awsQuery shape, in the XML namespace
// of the service.
func writeQueryError(w http.ResponseWriter, namespace, requestID string, e *apiError) {
	doc := stsErrorResponse{
		Xmlns:     namespace,
		Type:      stsErrorType(e.status),
		Code:      e.code,
		Message:   e.msg,
		RequestID: requestID,
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeBody(w, "text/xml", e.status, buf.Bytes())
}

// oauthErrorNames overrides the snake-case OAuth error name derived from a
// restJson1 error code.
var oauthErrorNames = map[string]string{
	"InternalServerException": "server_error",
}

// oidcModeledErrors are the error shapes of the SSO OIDC model, whose body
// holds error and error_description; other codes (those of the AWS front
// end, such as InvalidSignatureException) have a body with a message.
var oidcModeledErrors = map[string]bool{
	"AccessDeniedException":         true,
	"ExpiredTokenException":         true,
	"InternalServerException":       true,
	"InvalidClientException":        true,
	"InvalidGrantException":         true,
	"InvalidRequestException":       true,
	"InvalidRequestRegionException": true,
	"InvalidScopeException":         true,
	"SlowDownException":             true,
	"UnauthorizedClientException":   true,
	"UnsupportedGrantTypeException": true,
}

// oauthErrorName turns an error code into its OAuth name:
// InvalidGrantException becomes invalid_grant.
func oauthErrorName(code string) string {
	if n, ok := oauthErrorNames[code]; ok {
		return n
	}
	base := strings.TrimSuffix(code, "Exception")
	var b strings.Builder
	for i, r := range base {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writeOIDCError answers e in the restJson1 shape.
func writeOIDCError(w http.ResponseWriter, e *apiError) {
	body := map[string]string{"__type": e.code}
	if oidcModeledErrors[e.code] {
		body["error"] = oauthErrorName(e.code)
		body["error_description"] = e.msg
	} else {
		body["message"] = e.msg
	}
	for k, v := range e.fields {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeBody(w, "application/json", e.status, b)
}

// writeBody answers status with body of the given content type.
func writeBody(w http.ResponseWriter, contentType string, status int, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
