package exchange

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// renewer holds the credentials of one identity, judged on an injected
// clock, for the application role's bootstrap and for a Provider:
//
//   - they serve until window before their expiry;
//   - then the next caller starts a renewal, on a goroutine of its own, and
//     every caller that comes while it runs waits for that one (deciding
//     to renew and starting the renewal happen under one lock, so a caller
//     never renews what another caller just renewed);
//   - a renewal that fails leaves the credentials serving while they are
//     still valid (see stillValid), and the next caller tries again.
//
// The Cache's entries judge their credentials alike (fresh, stillValid)
// but renew through the Cache's flights, which also run the Store.
type renewer[T any] struct {
	now    func() time.Time
	window time.Duration
	creds  func(T) aws.Credentials // the credentials of a held value

	mu      sync.Mutex
	held    T
	renewal *renewal[T] // the renewal under way, nil when none
}

// renewal is one renewal of a renewer under way.
type renewal[T any] struct {
	done chan struct{} // closed once v and err are set
	v    T
	err  error
}

// get returns the held value when its credentials are fresh; else it
// joins (or starts, calling renew with the held value) the renewal under
// way and waits for it within ctx. renew runs detached from ctx: one
// caller giving up does not fail the others. When the renewal fails and
// the held credentials are still valid, get returns them.
func (r *renewer[T]) get(ctx context.Context, renew func(held T) (T, error)) (T, error) {
	r.mu.Lock()
	held := r.held
	if fresh(r.creds(held), r.now(), r.window) {
		r.mu.Unlock()
		return held, nil
	}
	f := r.renewal
	if f == nil {
		f = &renewal[T]{done: make(chan struct{})}
		r.renewal = f
		go func() {
			v, err := renew(held)
			r.mu.Lock()
			if err == nil {
				r.held = v
			}
			r.renewal = nil
			r.mu.Unlock()
			f.v, f.err = v, err
			close(f.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		if f.err == nil {
			return f.v, nil
		}
		r.mu.Lock()
		held = r.held
		r.mu.Unlock()
		if stillValid(r.creds(held), r.now()) {
			return held, nil
		}
		var zero T
		return zero, f.err
	case <-ctx.Done():
		var zero T
		return zero, &Error{kind: kindUnavailable, Op: "Retrieve", Err: ctx.Err()}
	}
}

// fresh reports whether c serves at now without a renewal: it has keys
// and does not expire within window.
func fresh(c aws.Credentials, now time.Time, window time.Duration) bool {
	return c.HasKeys() && now.Before(c.Expires.Add(-window))
}

// stillValid reports whether c may still be handed out at now, after a
// renewal failed: it has keys and has not expired.
func stillValid(c aws.Credentials, now time.Time) bool {
	return c.HasKeys() && now.Before(c.Expires)
}
