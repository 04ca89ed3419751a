package tiptest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4 constants.
const (
	sigv4Algorithm  = "AWS4-HMAC-SHA256"
	sigv4Terminator = "aws4_request"
	sigv4TimeFormat = "20060102T150405Z"
	sigv4DateFormat = "20060102"
	// sigv4MaxSkew is how far X-Amz-Date may be from the server's wall clock.
	sigv4MaxSkew = 5 * time.Minute
)

// sigv4Problem classifies why the signature of a request was refused; each
// protocol turns it into its own error code.
type sigv4Problem int

const (
	sigMissing      sigv4Problem = iota + 1 // no Authorization header
	sigIncomplete                           // malformed Authorization or X-Amz-Date
	sigUnknownKey                           // access key id not issued here
	sigBadToken                             // session token missing, unexpected or wrong
	sigExpired                              // temporary credentials past their expiry
	sigMismatch                             // signature, date or payload hash mismatch
	sigWrongService                         // credential scope names another service
	sigWrongRegion                          // credential scope names another region
)

// sigv4Error is a refused signature.
type sigv4Error struct {
	problem sigv4Problem
	msg     string
}

func (e *sigv4Error) Error() string { return e.msg }

func sigFail(p sigv4Problem, format string, args ...any) *sigv4Error {
	return &sigv4Error{problem: p, msg: fmt.Sprintf(format, args...)}
}

// sigv4MismatchMessage is the text AWS answers for a wrong signature.
const sigv4MismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// sigv4Creds is what the verifier needs to know of an access key.
type sigv4Creds struct {
	secret  string
	token   string    // session token; empty for long-term keys
	expires time.Time // zero for long-term keys
}

// sigv4Auth is a parsed Authorization header.
type sigv4Auth struct {
	accessKeyID   string
	date          string // YYYYMMDD of the credential scope
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     []byte
}

// scope returns the credential scope date/region/service/aws4_request.
func (a *sigv4Auth) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/" + a.terminator
}

// sigv4Verifier checks AWS Signature Version 4 on requests signed with an
// Authorization header.
type sigv4Verifier struct {
	service string
	region  string
	// wallNow gives the time X-Amz-Date is compared with.
	wallNow func() time.Time
	// clockNow gives the time credential expiry is compared with.
	clockNow func() time.Time
	// lookup finds the credentials of an access key id.
	lookup func(accessKeyID string) (sigv4Creds, bool)
}

// verify checks the signature of r, whose body was already read into body,
// and returns the access key id that signed it.
func (v *sigv4Verifier) verify(r *http.Request, body []byte) (string, *sigv4Error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "", sigFail(sigMissing, "Request is missing Authentication Token")
	}
	auth, err := parseSigv4Authorization(header)
	if err != nil {
		return "", err
	}
	signedAt, err := v.checkDate(r, auth)
	if err != nil {
		return "", err
	}
	if err := v.checkScope(auth); err != nil {
		return "", err
	}
	creds, err := v.checkCredentials(r, auth)
	if err != nil {
		return "", err
	}
	payloadHash, err := checkPayloadHash(r, body)
	if err != nil {
		return "", err
	}
	canonical, err := canonicalRequest(r, canonicalURI(r.URL), auth.signedHeaders, payloadHash)
	if err != nil {
		return "", err
	}
	want := sigv4Signature(creds.secret, auth, signedAt, canonical)
	if subtle.ConstantTimeCompare(want, auth.signature) != 1 {
		return "", sigFail(sigMismatch, "%s", sigv4MismatchMessage)
	}
	return auth.accessKeyID, nil
}

// parseSigv4Authorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=h1;h2, Signature=HEX".
func parseSigv4Authorization(h string) (*sigv4Auth, *sigv4Error) {
	algorithm, rest, ok := strings.Cut(h, " ")
	if !ok || algorithm != sigv4Algorithm {
		return nil, sigFail(sigIncomplete, "Unsupported AWS 'algorithm': '%s'. Use %s.", algorithm, sigv4Algorithm)
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if _, dup := params[k]; !ok || dup {
			return nil, sigFail(sigIncomplete, "Authorization header has a malformed or repeated component: '%s'.", part)
		}
		params[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[k] == "" {
			return nil, sigFail(sigIncomplete, "Authorization header requires '%s' parameter. Authorization=%s", k, algorithm)
		}
	}
	auth := &sigv4Auth{}
	if err := auth.setCredential(params["Credential"]); err != nil {
		return nil, err
	}
	if err := auth.setSignedHeaders(params["SignedHeaders"]); err != nil {
		return nil, err
	}
	sig, decErr := hex.DecodeString(params["Signature"])
	if decErr != nil || len(sig) != sha256.Size {
		return nil, sigFail(sigIncomplete, "Signature is not 64 hexadecimal characters.")
	}
	auth.signature = sig
	return auth, nil
}

func (a *sigv4Auth) setCredential(c string) *sigv4Error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[0] == "" {
		return sigFail(sigIncomplete, "Credential should be of the form AKID/DATE/REGION/SERVICE/%s.", sigv4Terminator)
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func (a *sigv4Auth) setSignedHeaders(s string) *sigv4Error {
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || (i > 0 && names[i-1] >= n) {
			return sigFail(sigIncomplete, "SignedHeaders must be lowercase, sorted and unique: '%s'.", s)
		}
	}
	for _, required := range []string{"host", "x-amz-date"} {
		if !slices.Contains(names, required) {
			return sigFail(sigMismatch, "'%s' must be a 'SignedHeader' in the AWS Authorization.", required)
		}
	}
	a.signedHeaders = names
	return nil
}

// checkDate checks X-Amz-Date against the credential scope and the wall
// clock, and returns it.
func (v *sigv4Verifier) checkDate(r *http.Request, auth *sigv4Auth) (time.Time, *sigv4Error) {
	raw := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(sigv4TimeFormat, raw)
	if err != nil {
		return time.Time{}, sigFail(sigIncomplete,
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if auth.date != t.Format(sigv4DateFormat) {
		return time.Time{}, sigFail(sigMismatch,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.date, t.Format(sigv4DateFormat), raw)
	}
	now := v.wallNow().UTC()
	if t.Before(now.Add(-sigv4MaxSkew)) {
		return time.Time{}, sigFail(sigMismatch, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			raw, now.Add(-sigv4MaxSkew).Format(sigv4TimeFormat), now.Format(sigv4TimeFormat))
	}
	if t.After(now.Add(sigv4MaxSkew)) {
		return time.Time{}, sigFail(sigMismatch, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
			raw, now.Add(sigv4MaxSkew).Format(sigv4TimeFormat), now.Format(sigv4TimeFormat))
	}
	return t, nil
}

// checkScope checks the service, region and terminator of the scope.
func (v *sigv4Verifier) checkScope(auth *sigv4Auth) *sigv4Error {
	if auth.service != v.service {
		return sigFail(sigWrongService, "Credential should be scoped to correct service: '%s'. ", v.service)
	}
	if auth.region != v.region {
		return sigFail(sigWrongRegion, "Credential should be scoped to a valid region, not '%s'. ", auth.region)
	}
	if auth.terminator != sigv4Terminator {
		return sigFail(sigMismatch, "Credential should be scoped with a valid terminator: '%s', not '%s'.",
			sigv4Terminator, auth.terminator)
	}
	return nil
}

// checkCredentials finds the signing key and checks its session token and
// expiry.
func (v *sigv4Verifier) checkCredentials(r *http.Request, auth *sigv4Auth) (sigv4Creds, *sigv4Error) {
	creds, ok := v.lookup(auth.accessKeyID)
	if !ok {
		return sigv4Creds{}, sigFail(sigUnknownKey, "The security token included in the request is invalid.")
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(creds.token)) != 1 {
		return sigv4Creds{}, sigFail(sigBadToken, "The security token included in the request is invalid.")
	}
	if !creds.expires.IsZero() && !v.clockNow().Before(creds.expires) {
		return sigv4Creds{}, sigFail(sigExpired, "The security token included in the request is expired")
	}
	return creds, nil
}

// checkPayloadHash returns the hex SHA-256 of body, refusing an
// X-Amz-Content-Sha256 header that differs from it.
func checkPayloadHash(r *http.Request, body []byte) (string, *sigv4Error) {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if sent := r.Header.Get("X-Amz-Content-Sha256"); sent != "" && sent != hash {
		return "", sigFail(sigMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return hash, nil
}

// canonicalRequest builds the SigV4 canonical request of r, whose
// canonical URI is uri.
func canonicalRequest(r *http.Request, uri string, signedHeaders []string, payloadHash string) (string, *sigv4Error) {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(uri + "\n")
	b.WriteString(query + "\n")
	for _, name := range signedHeaders {
		b.WriteString(name + ":" + canonicalHeaderValue(r, name) + "\n")
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(signedHeaders, ";") + "\n")
	b.WriteString(payloadHash)
	return b.String(), nil
}

// canonicalURI URI-encodes the escaped path once more, as SigV4 requires
// for every service but S3.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' || isUnreserved(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalQuery sorts the query parameters by name then value, each
// RFC 3986-encoded.
func canonicalQuery(raw string) (string, *sigv4Error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return "", sigFail(sigMismatch, "The query string is malformed.")
	}
	pairs := make([]string, 0, len(values))
	for k, vs := range values {
		for _, v := range vs {
			pairs = append(pairs, sigv4Escape(k)+"="+sigv4Escape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&"), nil
}

// sigv4Escape percent-encodes every byte but the unreserved characters.
func sigv4Escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// canonicalHeaderValue returns the trimmed, comma-joined values of header
// name as the client signed them.
func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = []string{strconv.FormatInt(r.ContentLength, 10)}
	default:
		values = r.Header.Values(name)
	}
	for i, v := range values {
		values[i] = collapseSpaces(v)
	}
	return strings.Join(values, ",")
}

// collapseSpaces trims spaces and turns every run of spaces into one.
func collapseSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	prevSpace := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && prevSpace {
			continue
		}
		prevSpace = s[i] == ' '
		b.WriteByte(s[i])
	}
	return b.String()
}

// sigv4Signature computes the signature of the canonical request.
func sigv4Signature(secret string, auth *sigv4Auth, signedAt time.Time, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := sigv4Algorithm + "\n" + signedAt.Format(sigv4TimeFormat) + "\n" +
		auth.scope() + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), auth.date)
	key = hmacSHA256(key, auth.region)
	key = hmacSHA256(key, auth.service)
	key = hmacSHA256(key, auth.terminator)
	return hmacSHA256(key, stringToSign)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
