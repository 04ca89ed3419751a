package middleware_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// TestOversizedTokenCostsLittle: a token over MaxTokenSize is refused
// before it is decoded, so that what a request makes the verifier allocate
// does not grow with the token: a signed 1 MiB token, and 1 MiB of bytes
// that are no token, each cost a few hundred bytes to refuse. (FuzzVerify
// asserts the refusal for every input over the cap; a fuzz function cannot
// measure memory.)
func TestOversizedTokenCostsLittle(t *testing.T) {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	v, err := verify.New(context.Background(), verify.Options{
		Issuers: []verify.Issuer{{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}},
		Now:     idp.Clock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if _, err := v.Verify(context.Background(), idp.Token("alice")); err != nil {
		t.Fatal(err) // keys fetched: nothing is left to set up lazily
	}
	for name, tok := range map[string]string{
		"signed":   idp.Token("alice", tiptest.WithClaims(map[string]any{"pad": strings.Repeat("p", 1<<20)})),
		"no token": strings.Repeat("a", 1<<20),
	} {
		// The least of three measures: a goroutine of the test binary
		// (a key refresh) may allocate during one.
		per := uint64(1 << 62)
		for range 3 {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const runs = 20
			for range runs {
				if _, err := v.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "too large") {
					t.Fatalf("%s: a %d-byte token: %v", name, len(tok), err)
				}
			}
			runtime.ReadMemStats(&after)
			per = min(per, (after.TotalAlloc-before.TotalAlloc)/runs)
		}
		if per > 4<<10 {
			t.Errorf("%s: refusing a %d-byte token allocates %d bytes", name, len(tok), per)
		} else {
			t.Logf("%s: refusing a %d-byte token allocates %d bytes", name, len(tok), per)
		}
	}
}
