package verify

import (
	"errors"
	"time"
)

// kind says what a refused token means for its bearer; errors.Is with
// ErrInvalid or ErrUnavailable tells it outside the package.
type kind int

const (
	// kindInvalid means the token is malformed, expired, not signed by a
	// key of its issuer, or not meant for this service: the bearer must
	// bring another token.
	kindInvalid kind = iota + 1
	// kindUnavailable means the issuer's keys cannot be had for now (never
	// fetched, or a token names a key the issuer may have just rotated in
	// while its key set cannot be refreshed): retry after RetryAfter.
	kindUnavailable
)

// The sentinel errors match every [*Error] of their kind with errors.Is.
var (
	// ErrInvalid matches the refusals of a token that is malformed,
	// expired, not signed by a key of its issuer, or not meant for this
	// service: the bearer must bring another token.
	ErrInvalid = errors.New("verify: the token is invalid")
	// ErrUnavailable matches the refusals made because the issuer's keys
	// cannot be had for now (never fetched, or a token names a key the
	// issuer may have just rotated in while its key set cannot be
	// refreshed): retry after the Error's RetryAfter.
	ErrUnavailable = errors.New("verify: the issuer's keys are unavailable")
	// ErrConfig matches every error of [New] for invalid options; its
	// message names the option.
	ErrConfig = errors.New("verify: invalid options")
)

// configError is an error of New naming the option at fault; it matches
// ErrConfig.
type configError struct{ msg string }

func (e *configError) Error() string        { return "verify: " + e.msg }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// Error is why Verify refused a token. Its Description is a fixed sentence
// chosen by this package: it never holds the token, a claim value or
// anything else taken from the token.
//
// errors.Is with [ErrInvalid] or [ErrUnavailable] tells what it means.
type Error struct {
	kind kind
	// Description is a short human sentence, fit for an answer to the
	// token's bearer.
	Description string
	// RetryAfter is how long to wait before retrying, for ErrUnavailable.
	RetryAfter time.Duration
	// Err is the underlying error, if any, for logs. It may name a key ID
	// or an algorithm taken from the token's header, but never the token.
	Err error
}

// Error returns the description; the underlying error is reached with
// errors.Unwrap or errors.As.
func (e *Error) Error() string { return "verify: " + e.Description }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid && e.kind == kindInvalid || target == ErrUnavailable && e.kind == kindUnavailable
}

func invalid(desc string, err error) *Error {
	return &Error{kind: kindInvalid, Description: desc, Err: err}
}

// errTooLarge refuses a token longer than MaxTokenSize, unread.
var errTooLarge = invalid("the token is too large", nil)
