package tiptest

import (
	"sync/atomic"
	"time"
)

// Clock is the time seen by the local IdP and the local AWS; tests move it
// forward (or back) with Advance to make tokens, credentials, identity
// contexts and refresh tokens expire without sleeping.
//
// Every lifetime decision of the local services uses Clock.Now: token exp,
// nbf and iat, temporary credential expiry, identity-context expiry and
// refresh-token expiry. The one exception is the SigV4 request-time check
// (X-Amz-Date must be within 5 minutes of the server time): it uses the wall
// clock time.Now, because the AWS SDK signs requests with the wall clock and
// advancing a Clock must not make every signed request fail.
//
// A Clock is safe for concurrent use. The zero value and a nil *Clock both
// read the wall clock.
type Clock struct {
	offset atomic.Int64 // nanoseconds added to the wall clock
}

// NewClock returns a Clock that starts at the wall-clock time.
func NewClock() *Clock { return &Clock{} }

// Now returns the wall-clock time plus every duration passed to Advance.
// A nil *Clock returns time.Now().
func (c *Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// Advance moves the clock forward by d, or back if d is negative.
// Calling Advance on a nil *Clock does nothing.
func (c *Clock) Advance(d time.Duration) {
	if c == nil {
		return
	}
	c.offset.Add(int64(d))
}
