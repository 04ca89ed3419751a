package middleware

// The fast scans of extract.go against their plain definitions.

import (
	"strings"
	"testing"
)

// slowPrintable is isPrintableASCII byte by byte.
func slowPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// FuzzScanEquivalence: the fast scans answer as the plain ones.
func FuzzScanEquivalence(f *testing.F) {
	f.Add("Bearer abc.def-_~+/==")
	f.Add("\x1f\x20\x7e\x7f\x80\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if isPrintableASCII(s) != slowPrintable(s) {
			t.Fatalf("printable %q", s)
		}
		want := func() bool {
			end := len(strings.TrimRight(s, "="))
			if end == 0 {
				return false
			}
			for i := 0; i < end; i++ {
				switch c := s[i]; {
				case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
				default:
					return false
				}
			}
			return true
		}()
		if isB64Token(s) != want {
			t.Fatalf("b64 %q", s)
		}
	})
}

// TestScanAllBytes: every byte value at every position of a word and of
// the tail.
func TestScanAllBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte(strings.Repeat("a", 17))
			b[pos] = byte(c)
			s := string(b)
			if isPrintableASCII(s) != slowPrintable(s) {
				t.Fatalf("byte %#x at %d", c, pos)
			}
		}
	}
}
