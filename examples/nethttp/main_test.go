package main

import (
	"testing"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

// TestSelfTest runs the example's -selftest in-process: two users through
// the same server and role, each seeing only their own files.
func TestSelfTest(t *testing.T) { demo.TestSelfTest(t, "nethttp", newHandler) }
