package exchange

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// kind says what a failed exchange means for the caller; errors.Is with
// the sentinels below tells it outside the package.
type kind int

const (
	// kindConfig means the configuration, or AWS's setup of the application
	// or roles, is wrong: an operator has to fix it.
	kindConfig kind = iota + 1
	// kindRefused means IAM Identity Center or STS refused this user.
	kindRefused
	// kindUnavailable means AWS throttled, timed out or failed: retry later.
	kindUnavailable
	// kindReauthenticate means nothing is left to renew the user's
	// credentials with: the user must present a token that has not been
	// exchanged yet.
	kindReauthenticate
)

// String returns a short lower-case name of k.
func (k kind) String() string {
	switch k {
	case kindConfig:
		return "config"
	case kindRefused:
		return "refused"
	case kindUnavailable:
		return "unavailable"
	case kindReauthenticate:
		return "reauthenticate"
	}
	return "unknown"
}

// The sentinel errors match every error of their kind with errors.Is:
// the construction errors below and the [*Error] values returned by calls.
var (
	// ErrConfig matches every configuration error.
	ErrConfig = errors.New("exchange: invalid configuration")
	// ErrRefused matches errors where IAM Identity Center or STS refused the
	// user (InvalidGrantException, AccessDenied, ...).
	ErrRefused = errors.New("exchange: the user was refused")
	// ErrUnavailable matches throttling, timeouts and AWS server errors:
	// the same call may succeed later.
	ErrUnavailable = errors.New("exchange: AWS is unavailable")
	// ErrReauthenticate matches errors that only a fresh token of the user
	// can cure: the identity context and refresh token are spent or expired,
	// and the token at hand was already exchanged or has expired.
	ErrReauthenticate = errors.New("exchange: a fresh token of the user is needed")
)

// configError is a named configuration error; it matches ErrConfig.
type configError struct{ msg string }

func (e *configError) Error() string        { return "exchange: " + e.msg }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// Configuration errors returned by [New] and [NewProvider]. Each matches
// [ErrConfig] with errors.Is.
var (
	errApplicationArn     error = &configError{"ApplicationArn must be an IAM Identity Center application ARN (arn:aws:sso::ACCOUNT:application/...)"}
	errAccessRoleArn      error = &configError{"AccessRoleArn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"}
	errApplicationRoleArn error = &configError{"ApplicationRoleArn must be empty or an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"}
	errSameRole           error = &configError{"ApplicationRoleArn must differ from AccessRoleArn"}
	errClients            error = &configError{"without ApplicationRoleArn, both SSOOIDCClient and STSClient are required"}
	errRegion             error = &configError{"Config.Region is required to build AWS clients"}
	errDuration           error = &configError{"Duration must be between 15 minutes and 12 hours"}
	errRoleChaining       error = &configError{"Duration may not exceed 1 hour with ApplicationRoleArn: AWS caps role chaining at 3600 seconds"}
	errWebTokenProvider   error = &configError{"WebTokenProvider is required"}
)

// Error is the error of a failed exchange or renewal. Its message names the
// operation and the AWS error code, never a token, an identity context, a
// secret or AWS's own message (which may echo request values); the
// underlying error is available through errors.Unwrap or errors.As, for
// example to reach the SDK's typed exception.
//
// What the failure means for the caller is told by errors.Is with
// [ErrConfig], [ErrRefused], [ErrUnavailable] or [ErrReauthenticate].
type Error struct {
	kind kind
	// Op is the operation that failed: "AssumeRoleWithWebIdentity",
	// "CreateTokenWithIAM", "AssumeRole", "WebTokenProvider", "Exchange"
	// for checks made before any call, or "Session" for Options.Session:
	// its error (Code "SessionRefused", the hook's error in Err) or
	// SessionOptions that STS would refuse (Code "SessionOptions." and the
	// field and rule broken).
	Op string
	// Code is the AWS error code (such as "InvalidGrantException"), or a
	// short reason for failures found locally; empty for transport errors.
	Code string
	// Err is the underlying error.
	Err error
}

// Error describes e by its kind, operation and AWS error code, and, for a
// setup error tipkit found itself, what to change; it never includes a
// token, an identity context or AWS's own message.
func (e *Error) Error() string {
	msg := "exchange: " + e.Op + ": " + e.kind.String()
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	var ce *configError
	if errors.As(e.Err, &ce) {
		msg += ": " + ce.msg
	}
	if e.Code == "" && e.Err != nil {
		switch {
		case errors.Is(e.Err, context.DeadlineExceeded):
			msg += ": deadline exceeded"
		case errors.Is(e.Err, context.Canceled):
			msg += ": canceled"
		}
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrConfig:
		return e.kind == kindConfig
	case ErrRefused:
		return e.kind == kindRefused
	case ErrUnavailable:
		return e.kind == kindUnavailable
	case ErrReauthenticate:
		return e.kind == kindReauthenticate
	}
	return false
}

// codeKinds maps the AWS error codes of SSO OIDC and STS to what they mean
// for the caller. Codes not listed are classified by HTTP status.
var codeKinds = map[string]kind{
	// The user is refused.
	"InvalidGrantException": kindRefused,
	"AccessDeniedException": kindRefused,
	"AccessDenied":          kindRefused,
	"InvalidIdentityToken":  kindRefused,
	"IDPRejectedClaim":      kindRefused,
	"ExpiredTokenException": kindReauthenticate,
	"InvalidTokenException": kindReauthenticate,

	// AWS is busy or failing.
	"SlowDownException":           kindUnavailable,
	"Throttling":                  kindUnavailable,
	"ThrottlingException":         kindUnavailable,
	"RequestLimitExceeded":        kindUnavailable,
	"TooManyRequestsException":    kindUnavailable,
	"InternalServerException":     kindUnavailable,
	"InternalError":               kindUnavailable,
	"InternalFailure":             kindUnavailable,
	"ServiceUnavailable":          kindUnavailable,
	"IDPCommunicationError":       kindUnavailable,
	"ExpiredToken":                kindUnavailable, // the signing credentials expired; renewed on the next call
	"RequestExpired":              kindUnavailable,
	"RequestTimeTooSkewed":        kindUnavailable,
	"ServiceUnavailableException": kindUnavailable,

	// The server's setup is wrong.
	"InvalidClientException":        kindConfig,
	"UnauthorizedClientException":   kindConfig,
	"UnsupportedGrantTypeException": kindConfig,
	"InvalidScopeException":         kindConfig,
	"InvalidRequestException":       kindConfig,
	"InvalidRequestRegionException": kindConfig,
	"ValidationError":               kindConfig,
	"RegionDisabledException":       kindConfig,
	"MalformedPolicyDocument":       kindConfig,
	"PackedPolicyTooLarge":          kindConfig,
	"InvalidClientTokenId":          kindConfig,
	"SignatureDoesNotMatch":         kindConfig,
	"UnrecognizedClientException":   kindConfig,
	"InvalidSignatureException":     kindConfig,
	"MissingAuthenticationToken":    kindConfig,
	"IncompleteSignature":           kindConfig,
	"InvalidAction":                 kindConfig,
	"OptInRequired":                 kindConfig,
}

// throttleCodes are the codes retried with backoff within one call.
var throttleCodes = map[string]bool{
	"SlowDownException":        true,
	"Throttling":               true,
	"ThrottlingException":      true,
	"RequestLimitExceeded":     true,
	"TooManyRequestsException": true,
}

// classify wraps an error of an AWS call of operation op into an *Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	e = &Error{Op: op, Err: err, kind: kindUnavailable}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
		if k, ok := codeKinds[e.Code]; ok {
			e.kind = k
			return e
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		switch status := resp.HTTPStatusCode(); {
		case status == http.StatusTooManyRequests || status >= 500:
			e.kind = kindUnavailable
		case status == http.StatusForbidden:
			e.kind = kindRefused
		case status >= 400:
			e.kind = kindConfig
		}
	}
	return e
}

// isThrottle reports whether err is a throttling answer worth retrying.
func isThrottle(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}
