package middleware_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tipkit/tipkit/middleware"
)

// FuzzBearerExtractor feeds arbitrary Authorization values and query
// strings to BearerExtractor. It must not panic; a token it returns is one
// b64token taken from a "Bearer" value (in any case) with no query token
// beside it; every error is a 401 invalid_request that does not repeat the
// value.
func FuzzBearerExtractor(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer abc.def.ghi", ""},
		{"bearer abc", ""},
		{"Bearer", ""},
		{"Bearer    ", ""},
		{"Basic YWxpY2U6c2VjcmV0", ""},
		{"Bearer a b", ""},
		{"Bearer abc==", ""},
		{"Bearer ab=c", ""},
		{"Bearer é", ""},
		{"Bearer abc", "access_token=abc"},
		{"", "access%5Ftoken=x"},
		{"Bearer\tabc", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, value, query string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = query
		if value != "" {
			r.Header["Authorization"] = []string{value}
		}
		tok, err := middleware.BearerExtractor(r)
		if err != nil {
			var e *middleware.Error
			if !errors.As(err, &e) || e.Kind != middleware.KindInvalidRequest || tok != "" {
				t.Fatalf("error %v (token %q), want a KindInvalidRequest *Error and no token", err, tok)
			}
			if len(value) >= 8 && strings.Contains(e.Error(), value) {
				t.Fatalf("error %q repeats the header value", e.Error())
			}
			return
		}
		if tok == "" {
			return
		}
		if q, _ := url.ParseQuery(query); q.Has("access_token") {
			t.Fatalf("token %q accepted beside an access_token in the query %q", tok, query)
		}
		scheme, rest, ok := strings.Cut(value, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimLeft(rest, " ") != tok {
			t.Fatalf("token %q taken from %q", tok, value)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
				t.Fatalf("token %q holds byte %q", tok, c)
			}
		}
		if strings.TrimRight(tok, "=") == "" || strings.Contains(strings.TrimRight(tok, "="), "=") {
			t.Fatalf("token %q is not one b64token", tok)
		}
	})
}
