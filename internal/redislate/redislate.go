// Package redislate holds a go-redis hook for tests: a Redis that applies
// a command and answers it only after the caller's deadline, as one
// stalled beyond a store's Timeout (by a co-tenant's Lua script, say)
// does.
package redislate

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Hook lets the first command on a key that Match accepts reach Redis,
// which applies it, then holds the reply until the caller's context has
// ended and returns its error. Other commands pass through.
type Hook struct {
	Match func(key string) bool
	fired atomic.Bool
}

// Fired reports whether a command was answered late.
func (h *Hook) Fired() bool { return h.fired.Load() }

// DialHook is next.
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook is next: pipelines are answered on time.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook answers the first matching command late.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !h.matches(cmd) || !h.fired.CompareAndSwap(false, true) {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

func (h *Hook) matches(cmd redis.Cmder) bool {
	for _, a := range cmd.Args()[1:] {
		if key, ok := a.(string); ok && h.Match(key) {
			return true
		}
	}
	return false
}
