package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const jwtLike = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

// request builds a GET request to target with the given header lines
// ("Name: value", repeated names give several headers).
func request(target string, lines ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		r.Header.Add(name, value)
	}
	return r
}

// extractCase is one request given to an Extractor. want is the token, or
// the start of the error description when wantErr is set.
type extractCase struct {
	name    string
	r       *http.Request
	want    string
	wantErr bool
}

func runExtract(t *testing.T, ex Extractor, cases []extractCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ex(tc.r)
			if !tc.wantErr {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if got != "" {
				t.Fatalf("got token %q with an error", got)
			}
			wantError(t, err, jwtLike, KindInvalidRequest, tc.want)
		})
	}
}

func TestBearerExtractor(t *testing.T) {
	form := request("/")
	form.PostForm = url.Values{"access_token": {jwtLike}}
	runExtract(t, BearerExtractor, []extractCase{
		{"no header", request("/"), "", false},
		{"bearer", request("/", "Authorization: Bearer "+jwtLike), jwtLike, false},
		{"lower-case scheme", request("/", "Authorization: bearer "+jwtLike), jwtLike, false},
		{"upper-case scheme", request("/", "Authorization: BEARER "+jwtLike), jwtLike, false},
		{"several spaces", request("/", "Authorization: Bearer   "+jwtLike), jwtLike, false},
		{"b64token with padding", request("/", "Authorization: Bearer abc+/~-_.Z9=="), "abc+/~-_.Z9==", false},
		{"other query parameters", request("/?page=2&q=%41", "Authorization: Bearer "+jwtLike), jwtLike, false},
		{"basic", request("/", "Authorization: Basic dXNlcjpwYXNz"), "", false},
		{"scheme prefix only", request("/", "Authorization: Bearerx "+jwtLike), "", false},

		{"scheme without token", request("/", "Authorization: Bearer"), "the credentials header holds no token", true},
		{"scheme and space", request("/", "Authorization: Bearer "), "the credentials header holds no token", true},
		{"two tokens", request("/", "Authorization: Bearer "+jwtLike+" "+jwtLike), "the credentials header is malformed", true},
		{"comma list", request("/", "Authorization: Bearer a, Bearer b"), "the credentials header is malformed", true},
		{"padding inside", request("/", "Authorization: Bearer ab=c"), "the credentials header is malformed", true},
		{"padding only", request("/", "Authorization: Bearer =="), "the credentials header is malformed", true},
		{"quoted", request("/", `Authorization: Bearer "`+jwtLike+`"`), "the credentials header is malformed", true},
		{"two headers", request("/", "Authorization: Bearer "+jwtLike, "Authorization: Bearer "+jwtLike), "the request carries more than one", true},
		{"bearer and basic", request("/", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer "+jwtLike), "the request carries more than one", true},
		{"non-ASCII", request("/", "Authorization: Bearer "+jwtLike+"é"), "the credentials header holds bytes outside", true},
		{"non-ASCII in another scheme", request("/", "Authorization: Négociation x"), "the credentials header holds bytes outside", true},
		{"tab", request("/", "Authorization: Bearer\t"+jwtLike), "the credentials header holds bytes outside", true},
		{"NUL", request("/", "Authorization: Bearer a\x00b"), "the credentials header holds bytes outside", true},
		{"query token", request("/?access_token=" + jwtLike), "access tokens are accepted only", true},
		{"query token and header", request("/?access_token="+jwtLike, "Authorization: Bearer "+jwtLike), "access tokens are accepted only", true},
		{"query token percent-encoded", request("/?%61ccess%5Ftoken=" + jwtLike), "access tokens are accepted only", true},
		{"query token empty", request("/?x=1&access_token="), "access tokens are accepted only", true},
		{"form token", form, "access tokens are accepted only", true},
	})
}

func TestHeaderExtractor(t *testing.T) {
	runExtract(t, HeaderExtractor("x-id-token", ""), []extractCase{
		{"whole value", request("/", "X-Id-Token: "+jwtLike), jwtLike, false},
		{"absent", request("/", "Authorization: Bearer "+jwtLike), "", false},
		{"empty", request("/", "X-Id-Token: "), "the credentials header holds no token", true},
		{"with a scheme", request("/", "X-Id-Token: Bearer "+jwtLike), "the credentials header is malformed", true},
		{"twice", request("/", "X-Id-Token: a", "X-Id-Token: b"), "the request carries more than one", true},
	})
	runExtract(t, HeaderExtractor("Authorization", "Token"), []extractCase{
		{"scheme", request("/", "Authorization: token "+jwtLike), jwtLike, false},
		{"other scheme", request("/", "Authorization: Bearer "+jwtLike), "", false},
		{"query is not this extractor's business", request("/?access_token=x", "Authorization: Token "+jwtLike), jwtLike, false},
	})
}

func TestCookieExtractor(t *testing.T) {
	runExtract(t, CookieExtractor("auth"), []extractCase{
		{"cookie", request("/", "Cookie: theme=dark; auth="+jwtLike), jwtLike, false},
		{"absent", request("/", "Cookie: theme=dark"), "", false},
		{"empty", request("/", "Cookie: auth="), "", false},
		{"quoted", request("/", `Cookie: auth="`+jwtLike+`"`), jwtLike, false},
		{"non-ASCII is dropped by net/http", request("/", "Cookie: auth=é"+jwtLike), "", false},
		{"twice", request("/", "Cookie: auth=a; auth=b"), "the token cookie appears more than once", true},
		{"two headers", request("/", "Cookie: auth=a", "Cookie: auth=b"), "the token cookie appears more than once", true},
		{"not a b64token", request("/", "Cookie: auth=a!b"), "the token cookie is malformed", true},
	})
}

func TestCheckSize(t *testing.T) {
	if err := checkSize(strings.Repeat("a", 100), 100); err != nil {
		t.Fatal(err)
	}
	wantError(t, checkSize(strings.Repeat("a", 101), 100), "", KindInvalidToken, "the token is too large")
}

// TestBearerExtractorDoesNotAllocate checks the extraction of the hot path.
func TestBearerExtractorDoesNotAllocate(t *testing.T) {
	r := request("/items?page=2", "Authorization: Bearer "+jwtLike)
	allocs := testing.AllocsPerRun(1000, func() {
		if tok, err := BearerExtractor(r); tok != jwtLike || err != nil {
			t.Fatal(tok, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("BearerExtractor allocates %v times", allocs)
	}
}

// wantError checks that err is an *Error of kind k whose description
// contains desc, and that its message does not hold token.
func wantError(t testing.TB, err error, token string, k ErrorKind, desc string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want an *Error of kind %v", err, k)
	}
	if e.Kind != k || !strings.Contains(e.Description, desc) {
		t.Fatalf("error = %v (kind %v), want kind %v and a description with %q", e, e.Kind, k, desc)
	}
	if len(token) > 8 && strings.Contains(e.Error(), token) {
		t.Fatalf("error message holds the token: %v", e)
	}
	return e
}
