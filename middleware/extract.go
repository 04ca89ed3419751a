package middleware

import (
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
)

// Extractor returns the raw token of a request; "" with a nil error means
// the request carries no token. A non-nil error is an *Error of kind
// [KindInvalidRequest].
//
// Extractors only look at the bytes of a token: they do not decode it, and
// they leave the size cap to the verifier ([verify.Verifier.Verify]), which
// refuses a token over verify.Options.MaxTokenSize before reading it.
type Extractor func(r *http.Request) (string, error)

// BearerExtractor is the default Extractor: it takes the token of an
// "Authorization: Bearer TOKEN" header as RFC 6750 section 2.1 defines it.
//
//   - The scheme is matched case-insensitively and followed by one or more
//     spaces and exactly one b64token (ALPHA DIGIT - . _ ~ + / and trailing
//     "=").
//   - Another scheme (such as Basic), or no Authorization header, gives no
//     token: the answer is then 401 without an error code.
//   - Two or more Authorization headers, a Bearer scheme without a token,
//     bytes outside printable ASCII, or a value that is not one b64token are
//     errors (401 invalid_request).
//   - An access_token parameter in the query string, or in a form body that
//     the application has already parsed (r.PostForm), is an error: RFC 6750
//     section 5.3 advises against tokens in URLs, which end up in logs. The
//     body itself is never read.
func BearerExtractor(r *http.Request) (string, error) {
	if tokenOutsideHeader(r) {
		return "", newError(KindInvalidRequest, "access tokens are accepted only in the Authorization header", nil)
	}
	return fromHeader(r.Header["Authorization"], "Bearer")
}

// HeaderExtractor returns an Extractor that reads the token from the
// header name. With a scheme (such as "Bearer" or "Token"), the value must
// be that scheme, matched case-insensitively, then spaces and the token, and
// a value with another scheme gives no token; with an empty scheme the
// whole value is the token. The header appearing more than once, bytes
// outside printable ASCII, or a value that is not one b64token are errors.
func HeaderExtractor(name, scheme string) Extractor {
	key := http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		return fromHeader(r.Header[key], scheme)
	}
}

// CookieExtractor returns an Extractor that reads the token from the
// cookie name. No such cookie, or an empty one, gives no token; two cookies
// of that name (a sign of cookie injection from a sibling domain) or a value
// that is not one b64token are errors. Cookies that net/http finds
// malformed, such as those with bytes outside ASCII, are ignored and so
// give no token.
func CookieExtractor(name string) Extractor {
	return func(r *http.Request) (string, error) {
		cookies := r.CookiesNamed(name)
		switch {
		case len(cookies) == 0 || len(cookies) == 1 && cookies[0].Value == "":
			return "", nil
		case len(cookies) > 1:
			return "", newError(KindInvalidRequest, "the token cookie appears more than once", nil)
		case !isB64Token(cookies[0].Value):
			return "", newError(KindInvalidRequest, "the token cookie is malformed", nil)
		}
		return cookies[0].Value, nil
	}
}

// fromHeader takes the token out of the values of one header.
func fromHeader(values []string, scheme string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", newError(KindInvalidRequest, "the request carries more than one credentials header", nil)
	}
	v := values[0]
	if !isPrintableASCII(v) {
		return "", newError(KindInvalidRequest, "the credentials header holds bytes outside printable ASCII", nil)
	}
	if scheme != "" {
		var ok bool
		if v, ok = cutScheme(v, scheme); !ok {
			return "", nil
		}
	}
	if v == "" {
		return "", newError(KindInvalidRequest, "the credentials header holds no token", nil)
	}
	if !isB64Token(v) {
		return "", newError(KindInvalidRequest, "the credentials header is malformed", nil)
	}
	return v, nil
}

// tokenOutsideHeader reports whether r carries an access_token in its
// query string or in a form body the application has already parsed.
func tokenOutsideHeader(r *http.Request) bool {
	return hasQueryToken(r.URL) || r.PostForm.Has("access_token")
}

// cutScheme returns what follows scheme (matched case-insensitively) and
// the spaces after it in the credentials v, and whether v uses scheme.
func cutScheme(v, scheme string) (string, bool) {
	got, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(got, scheme) {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

// hasQueryToken reports whether the query string of u has an access_token
// parameter, without allocating unless the query mentions it or holds
// percent-encoded bytes that could spell it.
func hasQueryToken(u *url.URL) bool {
	if u == nil || u.RawQuery == "" ||
		!strings.Contains(u.RawQuery, "access_token") && !strings.Contains(u.RawQuery, "%") {
		return false
	}
	q, _ := url.ParseQuery(u.RawQuery) // keeps the pairs it could parse
	return q.Has("access_token")
}

// isPrintableASCII reports whether s holds only bytes 0x20 to 0x7E. It
// tests eight bytes at a time: a token is hundreds of bytes long.
func isPrintableASCII(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		// A byte below 0x20 turns its high bit on in x-0x20 (and had it
		// off); a byte of 0x7F or more has it on in x+0x01 or in x.
		if (x-0x20*ones)&^x&highs != 0 || (x+ones|x)&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// b64tokenChars marks the bytes of a b64token before its padding:
// ALPHA DIGIT - . _ ~ + /.
var b64tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// isB64Token reports whether s is one b64token of RFC 6750 section 2.1:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	ok := true
	for i := 0; i < len(s); i++ {
		ok = ok && b64tokenChars[s[i]]
	}
	return ok
}

// checkSize refuses a token longer than limit bytes, before anything reads
// it.
func checkSize(raw string, limit int) error {
	if len(raw) > limit {
		return newError(KindInvalidToken, "the token is too large", nil)
	}
	return nil
}
