package exchange

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind says what a failed exchange means for the caller.
type Kind int

const (
	// KindConfig means the configuration, or AWS's setup of the application
	// or roles, is wrong: an operator has to fix it.
	KindConfig Kind = iota + 1
	// KindRefused means IAM Identity Center or STS refused this user.
	KindRefused
	// KindUnavailable means AWS throttled, timed out or failed: retry later.
	KindUnavailable
	// KindReauthenticate means nothing is left to renew the user's
	// credentials with: the user must present a token that has not been
	// exchanged yet.
	KindReauthenticate
)

// String returns a short lower-case name of k.
func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindRefused:
		return "refused"
	case KindUnavailable:
		return "unavailable"
	case KindReauthenticate:
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
	ErrApplicationArn     error = &configError{"ApplicationArn must be an IAM Identity Center application ARN (arn:aws:sso::ACCOUNT:application/...)"}
	ErrAccessRoleArn      error = &configError{"AccessRoleArn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"}
	ErrApplicationRoleArn error = &configError{"ApplicationRoleArn must be empty or an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"}
	ErrSameRole           error = &configError{"ApplicationRoleArn must differ from AccessRoleArn"}
	ErrClients            error = &configError{"without ApplicationRoleArn, both SSOOIDCClient and STSClient are required"}
	ErrRegion             error = &configError{"Config.Region is required to build AWS clients"}
	ErrDuration           error = &configError{"Duration must be between 15 minutes and 12 hours"}
	ErrRoleChaining       error = &configError{"Duration may not exceed 1 hour with ApplicationRoleArn: AWS caps role chaining at 3600 seconds"}
	ErrSessionName        error = &configError{"RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-"}
	ErrSessionNameChoice  error = &configError{"set RoleSessionName or SessionNameFunc, not both"}
	ErrWebTokenProvider   error = &configError{"WebTokenProvider is required"}
)

// Error is the error of a failed exchange or renewal. Its message names the
// operation and the AWS error code, never a token, an identity context, a
// secret or AWS's own message (which may echo request values); the
// underlying error is available through errors.Unwrap or errors.As, for
// example to reach the SDK's typed exception.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Op is the operation that failed: "AssumeRoleWithWebIdentity",
	// "CreateTokenWithIAM", "AssumeRole", "WebTokenProvider", or "Exchange"
	// for checks made before any call.
	Op string
	// Code is the AWS error code (such as "InvalidGrantException"), or a
	// short reason for failures found locally; empty for transport errors.
	Code string
	// Err is the underlying error.
	Err error
}

// Error describes e by its kind, operation and AWS error code; it never
// includes a token, an identity context or AWS's own message.
func (e *Error) Error() string {
	msg := "exchange: " + e.Op + ": " + e.Kind.String()
	if e.Code != "" {
		msg += " (" + e.Code + ")"
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
		return e.Kind == KindConfig
	case ErrRefused:
		return e.Kind == KindRefused
	case ErrUnavailable:
		return e.Kind == KindUnavailable
	case ErrReauthenticate:
		return e.Kind == KindReauthenticate
	}
	return false
}

// codeKinds maps the AWS error codes of SSO OIDC and STS to what they mean
// for the caller. Codes not listed are classified by HTTP status.
var codeKinds = map[string]Kind{
	// The user is refused.
	"InvalidGrantException": KindRefused,
	"AccessDeniedException": KindRefused,
	"AccessDenied":          KindRefused,
	"InvalidIdentityToken":  KindRefused,
	"IDPRejectedClaim":      KindRefused,
	"ExpiredTokenException": KindReauthenticate,
	"InvalidTokenException": KindReauthenticate,

	// AWS is busy or failing.
	"SlowDownException":           KindUnavailable,
	"Throttling":                  KindUnavailable,
	"ThrottlingException":         KindUnavailable,
	"RequestLimitExceeded":        KindUnavailable,
	"TooManyRequestsException":    KindUnavailable,
	"InternalServerException":     KindUnavailable,
	"InternalError":               KindUnavailable,
	"InternalFailure":             KindUnavailable,
	"ServiceUnavailable":          KindUnavailable,
	"IDPCommunicationError":       KindUnavailable,
	"ExpiredToken":                KindUnavailable, // the signing credentials expired; renewed on the next call
	"RequestExpired":              KindUnavailable,
	"RequestTimeTooSkewed":        KindUnavailable,
	"ServiceUnavailableException": KindUnavailable,

	// The server's setup is wrong.
	"InvalidClientException":        KindConfig,
	"UnauthorizedClientException":   KindConfig,
	"UnsupportedGrantTypeException": KindConfig,
	"InvalidScopeException":         KindConfig,
	"InvalidRequestException":       KindConfig,
	"InvalidRequestRegionException": KindConfig,
	"ValidationError":               KindConfig,
	"RegionDisabledException":       KindConfig,
	"MalformedPolicyDocument":       KindConfig,
	"PackedPolicyTooLarge":          KindConfig,
	"InvalidClientTokenId":          KindConfig,
	"SignatureDoesNotMatch":         KindConfig,
	"UnrecognizedClientException":   KindConfig,
	"InvalidSignatureException":     KindConfig,
	"MissingAuthenticationToken":    KindConfig,
	"IncompleteSignature":           KindConfig,
	"InvalidAction":                 KindConfig,
	"OptInRequired":                 KindConfig,
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
	e = &Error{Op: op, Err: err, Kind: KindUnavailable}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
		if k, ok := codeKinds[e.Code]; ok {
			e.Kind = k
			return e
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		switch status := resp.HTTPStatusCode(); {
		case status == http.StatusTooManyRequests || status >= 500:
			e.Kind = KindUnavailable
		case status == http.StatusForbidden:
			e.Kind = KindRefused
		case status >= 400:
			e.Kind = KindConfig
		}
	}
	return e
}

// isThrottle reports whether err is a throttling answer worth retrying.
func isThrottle(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}
