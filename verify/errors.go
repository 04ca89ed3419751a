package verify

import (
	"errors"
	"time"
)

// Kind says what a refused token means for its bearer.
type Kind int

const (
	// KindInvalid means the token is malformed, expired, not signed by a
	// key of its issuer, or not meant for this service: the bearer must
	// bring another token.
	KindInvalid Kind = iota + 1
	// KindUnavailable means the issuer's keys cannot be had for now (never
	// fetched, or a token names a key the issuer may have just rotated in
	// while its key set cannot be refreshed): retry after RetryAfter.
	KindUnavailable
)

// String returns a short lower-case name of k.
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// The sentinel errors match every [*Error] of their kind with errors.Is.
var (
	// ErrInvalid matches the errors of KindInvalid.
	ErrInvalid = errors.New("verify: the token is invalid")
	// ErrUnavailable matches the errors of KindUnavailable.
	ErrUnavailable = errors.New("verify: the issuer's keys are unavailable")
)

// Error is why Verify refused a token. Its Description is a fixed sentence
// chosen by this package: it never holds the token, a claim value or
// anything else taken from the token.
type Error struct {
	// Kind classifies the refusal.
	Kind Kind
	// Description is a short human sentence, fit for an answer to the
	// token's bearer.
	Description string
	// RetryAfter is how long to wait before retrying, for KindUnavailable.
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
	return target == ErrInvalid && e.Kind == KindInvalid || target == ErrUnavailable && e.Kind == KindUnavailable
}

func invalid(desc string, err error) *Error {
	return &Error{Kind: KindInvalid, Description: desc, Err: err}
}

// errTooLarge refuses a token longer than MaxTokenSize, unread.
var errTooLarge = invalid("the token is too large", nil)
