package tiptest

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Fault changes how the local AWS answers an operation, to test retries,
// timeouts and refusals. Set it with AWS.SetFault.
type Fault struct {
	// Latency is added before the request is answered. The wait ends early
	// when the client cancels the request (the request is then not
	// answered) or when the AWS is closed (answered 503
	// ServiceUnavailable).
	Latency time.Duration
	// Code is the error answered instead of the real result, in the shape
	// of the operation's protocol, with the code's usual HTTP status: for
	// example "Throttling" (STS, 400 "Rate exceeded"), "InternalError"
	// (500), "ServiceUnavailable" (503), "AccessDenied" (403),
	// "ExpiredTokenException" (400), or, for CreateTokenWithIAM,
	// "SlowDownException" (400), "InternalServerException" (500),
	// "AccessDeniedException" (400), "InvalidGrantException" (400),
	// "InvalidClientException" (401). An unknown code answers 400. Empty
	// means no error (Latency only).
	Code string
	// Times limits the fault to the next Times calls it applies to; zero
	// means until ClearFaults or the next SetFault of the operation.
	Times int
	// Fraction is the probability, in (0, 1], that the fault applies to a
	// call; zero means every call.
	Fraction float64
}

// faultState is a Fault with the number of applications left.
type faultState struct {
	f    Fault
	left int // applications left when f.Times > 0
}

// SetFault makes op ("CreateTokenWithIAM", "AssumeRole",
// "AssumeRoleWithWebIdentity", "GetCallerIdentity", "GetDataAccess",
// "ListCallerAccessGrants", "DescribeApplication", "GetApplicationGrant",
// "DescribeTrustedTokenIssuer", "GetRole", or an S3 operation such as
// "GetObject") answer with f, replacing any fault op had; an sso-admin
// operation answers a code of its model (such as "ThrottlingException")
// with the model's status. A fault applies before the request's
// signature is checked, as throttling does in AWS; refused calls still
// count in Calls.
func (a *AWS) SetFault(op string, f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults[op] = &faultState{f: f, left: f.Times}
}

// ClearFaults removes every fault.
func (a *AWS) ClearFaults() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.faults)
}

// errRequestGone ends a request whose client went away during a Fault's
// latency; nothing is answered.
var errRequestGone = errors.New("request cancelled")

// takeFault returns the fault that applies to this call of op, if any.
func (a *AWS) takeFault(op string) (Fault, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.faults[op]
	if st == nil || (st.f.Fraction > 0 && rand.Float64() >= st.f.Fraction) {
		return Fault{}, false
	}
	if st.f.Times > 0 {
		st.left--
		if st.left <= 0 {
			delete(a.faults, op)
		}
	}
	return st.f, true
}

// applyFault waits for the latency of op's fault and returns its error:
// an *apiError to answer, errRequestGone when the request was cancelled,
// or nil to go on.
func (a *AWS) applyFault(ctx context.Context, op string) error {
	f, ok := a.takeFault(op)
	if !ok {
		return nil
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return errRequestGone
		case <-a.closed:
			return newAPIError("ServiceUnavailable", "The local AWS is closed")
		}
	}
	if f.Code == "" {
		return nil
	}
	return newAPIError(f.Code, "")
}
