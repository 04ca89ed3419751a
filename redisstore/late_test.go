package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/redislate"
	"github.com/tipkit/tipkit/redisstore"
)

// lateStore returns a store on f's server whose first command on a key
// containing suffix is answered after its Timeout.
func lateStore(t *testing.T, f *fixture, suffix string) (*redisstore.Store, *redislate.Hook) {
	t.Helper()
	c := f.server.Client()
	h := &redislate.Hook{Match: func(key string) bool { return strings.Contains(key, suffix) }}
	c.AddHook(h)
	return newStore(t, c, redisstore.Options{Timeout: 500 * time.Millisecond}), h
}

// A claim made again after its answer was lost finds its own mark; another
// claimer's does not.
func TestClaimAnsweredLate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, late := lateStore(t, f, "}:t:")
	ctx := context.Background()
	k, id, hour := userKey("alice"), exchange.TokenID("a.b.c"), time.Now().Add(time.Hour)
	if ok, err := s.ClaimToken(ctx, k, id, claimA, hour); !errors.Is(err, context.DeadlineExceeded) || ok || !late.Fired() {
		t.Fatalf("claim answered late: %t, %v; want a deadline error", ok, err)
	}
	if ok, err := s.ClaimToken(ctx, k, id, claimA, hour); err != nil || !ok {
		t.Fatalf("the claim made again: %t, %v; want true, the mark is the claimer's", ok, err)
	}
	if ok, err := s.ClaimToken(ctx, k, id, claimB, hour); err != nil || ok {
		t.Fatalf("another claimer's claim: %t, %v; want false", ok, err)
	}
	if err := s.ReleaseToken(ctx, k, id, claimA); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimToken(ctx, k, id, claimB, hour); err != nil || !ok {
		t.Fatalf("a claim after the claimer's release: %t, %v; want true", ok, err)
	}
}

// An Acquire made again after its answer was lost finds its own lease;
// another holder's does not.
func TestAcquireAnsweredLate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, late := lateStore(t, f, "}:l")
	ctx := context.Background()
	k := userKey("alice")
	if held, err := s.Acquire(ctx, k, leaseA, time.Minute); !errors.Is(err, context.DeadlineExceeded) || held || !late.Fired() {
		t.Fatalf("Acquire answered late: %t, %v; want a deadline error", held, err)
	}
	if held, err := s.Acquire(ctx, k, leaseA, time.Minute); err != nil || !held {
		t.Fatalf("the Acquire made again: %t, %v; want the lease, which is the holder's", held, err)
	}
	if held, err := s.Acquire(ctx, k, leaseB, time.Minute); err != nil || held {
		t.Fatalf("another holder's Acquire: %t, %v; want busy", held, err)
	}
	if err := s.Release(ctx, k, leaseA); err != nil {
		t.Fatal(err)
	}
	if held, err := s.Acquire(ctx, k, leaseB, time.Minute); err != nil || !held {
		t.Fatalf("an Acquire after the holder's release: %t, %v; want the lease", held, err)
	}
}

// A value far longer than a sealed session, planted under a session's
// key, is rejected without being read.
func TestLoadBoundsValue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	s := sessionOf(k, "alice")
	mustSave(t, f.store, k, s)
	name := f.onlyNewKey(t, nil)
	const planted = 48 << 20
	if err := f.client.Set(ctx, name, bytes.Repeat([]byte{'x'}, planted), time.Hour).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := f.store.Load(ctx, k)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("Load of a %d MiB value allocated %d KiB", planted>>20, allocated>>10)
	if got != nil || err != nil {
		t.Fatalf("Load of a %d MiB value = %v, %v; want nil, nil", planted>>20, got, err)
	}
	if allocated > 4<<20 {
		t.Fatalf("Load of a %d MiB value allocated %d MiB: it read the value", planted>>20, allocated>>20)
	}
	if st := f.store.Stats(); st.Rejected != 1 || st.Errors != 0 {
		t.Fatalf("Stats = %+v, want one rejected and no error", st)
	}
	// A value of exactly MaxSealedSize is read (and fails to open).
	if err := f.client.Set(ctx, name, bytes.Repeat([]byte{'x'}, redisstore.MaxSealedSize), time.Hour).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got := mustLoad(t, f.store, k); got != nil {
		t.Fatal("garbage opened")
	}
	if st := f.store.Stats(); st.Rejected != 2 {
		t.Fatalf("Stats = %+v, want two rejected", st)
	}
	// A session that would seal to more is not saved.
	big := sessionOf(k, "alice")
	big.RefreshToken = strings.Repeat("r", redisstore.MaxSealedSize)
	if err := f.store.Save(ctx, k, big); err == nil || strings.Contains(err.Error(), big.RefreshToken[:64]) {
		t.Fatalf("Save of a session over MaxSealedSize: %v", err)
	}
	mustSave(t, f.store, k, s)
	sameSession(t, mustLoad(t, f.store, k), s)
}
