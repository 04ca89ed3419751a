package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

// TestSelfTest runs the example's -selftest in-process: two users through
// the same server and role, each seeing only their own files.
func TestSelfTest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := demo.SelfTest(ctx, "nethttp", newHandler, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"alice/notes.txt", "bob/plan.txt", "403", "OK:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the self-test output lacks %q:\n%s", want, out.String())
		}
	}
}
