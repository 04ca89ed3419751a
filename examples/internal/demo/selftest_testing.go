package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestSelfTest runs an example's -selftest in-process as a test of that
// example: two users through the same server and role, each seeing only
// their own files. Each example's main_test.go calls it with its router.
func TestSelfTest(t *testing.T, name string, router Router) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := SelfTest(ctx, name, router, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"alice/notes.txt", "bob/plan.txt", "403", "OK:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the self-test output lacks %q:\n%s", want, out.String())
		}
	}
}
