package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tipkit/tipkit/verify"
)

// acceptedAlgorithms are the algorithms tipkit's verifier accepts by
// default (verify.Options.Algorithms).
var acceptedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// clockSkew is the leeway tipkit's verifier allows on exp, nbf and iat.
const clockSkew = verify.DefaultLeeway

// tokenInfo is the token decoded without verification.
type tokenInfo struct {
	header, claims map[string]any
	alg, kid       string
	iss, sub       string
	aud            []string
}

// decodeSegment decodes one base64url segment holding a JSON object.
func decodeSegment(seg string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return nil, fmt.Errorf("is not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("is not a JSON object")
	}
	return m, nil
}

// checkFormat decodes the token and checks its header.
func (d *doctor) checkFormat(context.Context) result {
	const fix = "give the identity provider's signed JWT (an ID token or a JWT access token), as the server receives it in the Authorization header"
	parts := strings.Split(d.token, ".")
	switch {
	case len(parts) == 5:
		return fail("the token is encrypted (a JWE of 5 parts): IAM Identity Center and tipkit need a signed JWT",
			"have the identity provider issue signed, unencrypted tokens for this audience")
	case len(parts) != 3:
		return fail(fmt.Sprintf("the token is not a JWT: it has %d dot-separated parts, not 3", len(parts)), fix)
	}
	header, err := decodeSegment(parts[0])
	if err != nil {
		return fail("the token's header "+err.Error(), fix)
	}
	claims, err := decodeSegment(parts[1])
	if err != nil {
		return fail("the token's payload "+err.Error(), fix)
	}
	if parts[2] == "" {
		return fail("the token has no signature", "have the identity provider sign its tokens with an asymmetric key (RS256 or ES256)")
	}
	t := &tokenInfo{header: header, claims: claims}
	t.alg, _ = header["alg"].(string)
	t.kid, _ = header["kid"].(string)
	var problems []string
	switch {
	case t.alg == "" || strings.EqualFold(t.alg, "none"):
		problems = append(problems, fmt.Sprintf("its algorithm (alg) is %q: the token is not signed", t.alg))
	case strings.HasPrefix(t.alg, "HS"):
		problems = append(problems, fmt.Sprintf("its algorithm %s is a shared-secret one: AWS and tipkit verify tokens with the issuer's public keys", t.alg))
	case !slices.Contains(acceptedAlgorithms, t.alg):
		problems = append(problems, fmt.Sprintf("its algorithm %s is not among those tipkit accepts (%s)", t.alg, strings.Join(acceptedAlgorithms, ", ")))
	}
	if t.kid == "" {
		problems = append(problems, "its header has no key id (kid): keys are picked from the issuer's key set by kid")
	}
	if typ, present := header["typ"]; present {
		s, _ := typ.(string)
		if n := strings.TrimPrefix(strings.ToLower(s), "application/"); n != "jwt" && n != "at+jwt" {
			problems = append(problems, fmt.Sprintf("its type (typ) %q is neither JWT nor at+jwt", s))
		}
	}
	if _, present := header["crit"]; present {
		problems = append(problems, "its header has crit extensions, which are not understood")
	}
	if len(d.token) > verify.DefaultMaxTokenSize {
		problems = append(problems, fmt.Sprintf("it is %d bytes long, more than the %d tipkit reads", len(d.token), verify.DefaultMaxTokenSize))
	}
	if len(problems) > 0 {
		return fail("the token cannot be used: "+strings.Join(problems, "; "),
			"configure the identity provider to sign with RS256 or ES256 and a key id, and send a JWT-typed token")
	}
	d.tok = t
	return ok("%s, kid %q, %d bytes", t.alg, t.kid, len(d.token))
}

// checkClaims checks that iss, sub and aud are present.
func (d *doctor) checkClaims(context.Context) result {
	c := d.tok.claims
	var problems []string
	iss, isString := c["iss"].(string)
	if !isString || iss == "" {
		problems = append(problems, "no issuer (iss)")
	}
	sub, isString := c["sub"].(string)
	if !isString || sub == "" {
		problems = append(problems, "no subject (sub)")
	}
	aud, audOK := audienceOf(c["aud"])
	if !audOK {
		problems = append(problems, "no audience (aud), or one that is not a string or a list of strings")
	}
	if len(problems) > 0 {
		return fail("the token has "+strings.Join(problems, ", "),
			"have the identity provider issue tokens with iss, sub and aud (the audience registered for this application)")
	}
	d.tok.iss, d.tok.sub, d.tok.aud = iss, sub, aud
	return ok("iss %q, sub %q, aud %s", iss, sub, quoteList(aud))
}

// audienceOf reads an aud claim: a string or a non-empty list of strings.
func audienceOf(v any) ([]string, bool) {
	switch a := v.(type) {
	case string:
		return []string{a}, a != ""
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, isString := e.(string)
			if !isString || s == "" {
				return nil, false
			}
			out = append(out, s)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// numericDate reads a NumericDate claim; present reports whether the claim
// exists, valid whether it is a number.
func numericDate(c map[string]any, name string) (t time.Time, present, valid bool) {
	v, present := c[name]
	if !present {
		return time.Time{}, false, false
	}
	n, isNumber := v.(json.Number)
	if !isNumber {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 || math.IsNaN(f) {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, true
}

// ago formats a duration to the second.
func ago(d time.Duration) string { return d.Truncate(time.Second).String() }

// checkExpiry checks exp, iat and nbf against the clock.
func (d *doctor) checkExpiry(context.Context) result {
	now := d.sys.now()
	c := d.tok.claims
	exp, expPresent, expValid := numericDate(c, "exp")
	iat, iatPresent, iatValid := numericDate(c, "iat")
	nbf, nbfPresent, nbfValid := numericDate(c, "nbf")
	var problems, fixes []string
	add := func(problem, fix string) {
		problems, fixes = append(problems, problem), append(fixes, fix)
	}
	const fresh = "get a fresh token from the identity provider"
	switch {
	case !expPresent:
		add("the token has no expiry (exp), which IAM Identity Center and tipkit require", "configure the identity provider to set exp on its tokens")
	case !expValid:
		add("its exp is not a number of seconds", "configure the identity provider to set exp as a NumericDate")
	case !now.Before(exp):
		add(fmt.Sprintf("the token expired %s ago (exp %s)", ago(now.Sub(exp)), exp.Format(time.RFC3339)), fresh)
	}
	switch {
	case !iatPresent:
		add("the token has no issue time (iat)", "configure the identity provider to set iat on its tokens")
	case !iatValid:
		add("its iat is not a number of seconds", "configure the identity provider to set iat as a NumericDate")
	case iat.After(now.Add(clockSkew)):
		add(fmt.Sprintf("it was issued %s in the future (iat %s): this machine's clock or the identity provider's is wrong",
			ago(iat.Sub(now)), iat.Format(time.RFC3339)), "set the clocks right (NTP)")
	}
	if expValid && iatValid && !iat.Before(exp) {
		add(fmt.Sprintf("its exp %s is not after its iat %s", exp.Format(time.RFC3339), iat.Format(time.RFC3339)),
			"configure a positive token lifetime at the identity provider")
	}
	switch {
	case nbfPresent && !nbfValid:
		add("its nbf is not a number of seconds", "configure the identity provider to set nbf as a NumericDate")
	case nbfPresent && nbf.After(now.Add(clockSkew)):
		add(fmt.Sprintf("it is not valid before %s, %s from now", nbf.Format(time.RFC3339), ago(nbf.Sub(now))), "wait, or set the clocks right (NTP)")
	}
	if len(problems) > 0 {
		return fail(strings.Join(problems, "; "), fixes[0])
	}
	return ok("expires in %s (%s), issued %s ago", ago(exp.Sub(now)), exp.Format(time.RFC3339), ago(now.Sub(iat)))
}

// checkJTI checks that the token has a jti.
func (d *doctor) checkJTI(context.Context) result {
	jti, isString := d.tok.claims["jti"].(string)
	if !isString || jti == "" {
		return fail("the token has no token id (jti): IAM Identity Center refuses such tokens with InvalidGrantException",
			"use a token type of the identity provider that carries jti (often the access token rather than the ID token), or add the claim in its token configuration")
	}
	return ok("present (IAM Identity Center exchanges a jti once in 24 hours)")
}

// claimValue returns the string value of the claim at path (names joined
// by dots for nested objects).
func claimValue(claims map[string]any, path string) (value string, present bool) {
	var v any = claims
	for name := range strings.SplitSeq(path, ".") {
		m, isObject := v.(map[string]any)
		if !isObject {
			return "", false
		}
		if v, present = m[name]; !present {
			return "", false
		}
	}
	s, _ := v.(string)
	return s, true
}

// checkUserClaim checks the claim users are mapped by.
func (d *doctor) checkUserClaim(context.Context) result {
	v, present := claimValue(d.tok.claims, d.s.userClaim)
	switch {
	case !present:
		return fail(fmt.Sprintf("the token has no %s claim, by which the trusted token issuer finds the user in IAM Identity Center", d.s.userClaim),
			fmt.Sprintf("have the identity provider put %s in its tokens (for example with the matching scope), or, if the trusted token issuer maps another claim, give it with -user-claim", d.s.userClaim))
	case v == "":
		return fail(fmt.Sprintf("the token's %s claim is empty or not a string", d.s.userClaim),
			fmt.Sprintf("have the identity provider set %s to the user's value of the Identity Center attribute it is mapped to", d.s.userClaim))
	}
	return ok("%s %q", d.s.userClaim, v)
}
