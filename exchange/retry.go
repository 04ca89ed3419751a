package exchange

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff between throttled attempts: equal jitter over an exponential
// ceiling (half the ceiling, plus a random part of the other half).
const (
	backoffBase = 100 * time.Millisecond
	backoffCap  = 5 * time.Second
)

// withRetry calls fn until it succeeds, fails with something other than
// throttling, has been tried maxAttempts times, or the next wait would pass
// ctx's deadline. Errors come back classified under op.
func withRetry[T any](ctx context.Context, maxAttempts int, op string, fn func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := fn()
		if err == nil || !isThrottle(err) || attempt >= maxAttempts {
			return out, classify(op, err)
		}
		if !sleep(ctx, backoff(attempt)) {
			return out, classify(op, err)
		}
	}
}

// backoff returns the wait after the given failed attempt (1-based).
func backoff(attempt int) time.Duration {
	ceiling := backoffBase << min(attempt-1, 16)
	if ceiling > backoffCap {
		ceiling = backoffCap
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}

// sleep waits d unless ctx ends first or its deadline falls within d; it
// reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
