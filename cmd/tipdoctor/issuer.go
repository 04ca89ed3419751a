package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tipkit/tipkit/verify"
)

// maxDocument bounds the discovery document and key set read.
const maxDocument = 1 << 20

// difference names how a differs from b, two URLs that should be equal
// byte for byte; aName and bName say where each comes from. It returns
// "" when they are equal.
func difference(aName, a, bName, b string) string {
	switch {
	case a == b:
		return ""
	case strings.TrimSpace(a) != a || strings.TrimSpace(b) != b:
		return "one of them has leading or trailing spaces"
	case strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/"):
		if strings.HasSuffix(a, "/") {
			return fmt.Sprintf("%s ends with a slash and %s does not", aName, bName)
		}
		return fmt.Sprintf("%s ends with a slash and %s does not", bName, aName)
	case strings.EqualFold(a, b):
		return "they differ only in upper and lower case"
	}
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA == nil && errB == nil {
		switch {
		case ua.Scheme != ub.Scheme:
			return fmt.Sprintf("%s uses %s and %s uses %s", aName, orDefault(ua.Scheme, "no scheme"), bName, orDefault(ub.Scheme, "no scheme"))
		case ua.Host != ub.Host:
			return fmt.Sprintf("their hosts differ: %q and %q", ua.Host, ub.Host)
		case ua.Path != ub.Path:
			return fmt.Sprintf("their paths differ: %q and %q", ua.Path, ub.Path)
		}
	}
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return fmt.Sprintf("they differ from byte %d on", n)
}

// checkIssuerConfig compares TIPKIT_ISSUER with the token's iss.
func (d *doctor) checkIssuerConfig(context.Context) result {
	if d.s.issuer == "" {
		return skip("%s (-issuer) is not set; the token's iss is %q", envIssuer, d.tok.iss)
	}
	if diff := difference(envIssuer, d.s.issuer, "the token's iss", d.tok.iss); diff != "" {
		return fail(fmt.Sprintf("%s %q is not the token's iss %q: %s; tipkit refuses tokens whose iss is not configured exactly", envIssuer, d.s.issuer, d.tok.iss, diff),
			fmt.Sprintf("set %s=%s (exactly, as the identity provider writes it and IAM Identity Center's trusted token issuer has it)", envIssuer, d.tok.iss))
	}
	return ok("equals the token's iss")
}

// fetchable reports why keys may not be fetched from raw: "" when it is an
// https URL, or an http one on a loopback host.
func fetchable(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "it is not an absolute URL"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	case u.Scheme == "http":
		return "it is plain http outside loopback: tipkit and IAM Identity Center fetch keys over https only"
	}
	return fmt.Sprintf("its scheme %q is neither https nor http", u.Scheme)
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// maxRedirects is the number of redirects checkRedirect follows in a
// chain.
const maxRedirects = 5

// checkRedirect is the redirect rule of tipkit's verifier (the default
// client of verify.Options.HTTPClient), which the server fetches the same
// documents with: at most five redirects, and each to an https URL or
// an http one on a loopback host. A refused redirect is not requested.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects { // via holds the first request and the redirects followed
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if why := fetchable(req.URL.String()); why != "" {
		return fmt.Errorf("refused the redirect: %s", why)
	}
	return nil
}

// getJSON fetches url and decodes its JSON body into v. Redirects are
// followed under checkRedirect, whatever client the system gave.
func (d *doctor) getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	if d.sys.httpClient != nil {
		client = *d.sys.httpClient
	}
	client.CheckRedirect = checkRedirect
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("it answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New("its answer is not the expected JSON document")
	}
	return nil
}

// checkDiscovery reads the issuer's discovery document: TIPKIT_ISSUER's,
// which the token's iss must equal, or, with -follow-token-issuer, the
// token's iss. Without that flag, an iss that TIPKIT_ISSUER does not vouch
// for is never fetched: the token is not verified yet, and its iss can
// name any host.
func (d *doctor) checkDiscovery(ctx context.Context) result {
	iss := d.tok.iss
	switch {
	case d.s.followTokenIssuer:
	case d.s.issuer == "":
		return skip("%s (-issuer) is not set, and the token's iss %q is not fetched without it: the token is not verified yet; "+
			"set %s, or run with -follow-token-issuer", envIssuer, iss, envIssuer)
	case d.s.issuer != iss:
		return skip("the token's iss %q is not %s %q (see issuer.config), and is not fetched: the token is not verified yet; "+
			"run with -follow-token-issuer to fetch it anyway", iss, envIssuer, d.s.issuer)
	}
	if why := fetchable(iss); why != "" {
		return fail(fmt.Sprintf("the token's iss %q cannot be an issuer: %s", iss, why),
			"register and use the identity provider's https issuer URL")
	}
	u := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := d.getJSON(ctx, u, &doc); err != nil {
		return fail(fmt.Sprintf("the discovery document %s cannot be read: %v", u, err),
			"check that the token's iss is the identity provider's issuer URL and that it is reachable from here (and from AWS)")
	}
	if diff := difference("the discovery document's issuer", doc.Issuer, "the token's iss", iss); diff != "" {
		return fail(fmt.Sprintf("the discovery document %s names the issuer %q, not the token's iss %q: %s", u, doc.Issuer, iss, diff),
			"use tokens whose iss is exactly the issuer the identity provider announces (and register that URL as the trusted token issuer)")
	}
	if doc.JWKSURI == "" {
		return fail(fmt.Sprintf("the discovery document %s has no jwks_uri", u), "fix the identity provider's discovery document")
	}
	if why := fetchable(doc.JWKSURI); why != "" {
		return fail(fmt.Sprintf("the discovery document's jwks_uri %q is unusable: %s", doc.JWKSURI, why),
			"serve the identity provider's key set over https")
	}
	d.jwksURI = doc.JWKSURI
	return ok("its issuer is the token's iss; keys at %s", doc.JWKSURI)
}

// checkKeys reads the key set and looks for the token's kid.
func (d *doctor) checkKeys(ctx context.Context) result {
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			Use string `json:"use"`
		} `json:"keys"`
	}
	if err := d.getJSON(ctx, d.jwksURI, &set); err != nil {
		return fail(fmt.Sprintf("the key set %s cannot be read: %v", d.jwksURI, err),
			"make the identity provider's key set reachable from here (and from AWS)")
	}
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
		if k.Kid != d.tok.kid {
			continue
		}
		switch {
		case k.Use != "" && k.Use != "sig":
			return fail(fmt.Sprintf("the key %q of %s is for %q, not for signatures", k.Kid, d.jwksURI, k.Use),
				"have the identity provider sign with a signing key of its key set")
		case k.Alg != "" && k.Alg != d.tok.alg:
			return fail(fmt.Sprintf("the key %q of %s is for %s, and the token says %s", k.Kid, d.jwksURI, k.Alg, d.tok.alg),
				"have the identity provider sign with the algorithm of the key")
		}
		return ok("the key set holds the token's key (%s, one of %d)", k.Kty, len(set.Keys))
	}
	return fail(fmt.Sprintf("the key set %s has no key %q (it has %s): the token was signed by a key the issuer does not publish (now)",
		d.jwksURI, d.tok.kid, quoteList(kids)),
		"use a token of this issuer signed with a current key; a token of another environment or issuer cannot verify here")
}

// checkSignature verifies the token with tipkit's verifier, the code the
// server runs, at a time within the token's validity so that only the
// signature and the key are judged (token.expiry judges the time).
func (d *doctor) checkSignature(ctx context.Context) result {
	exp, _, expValid := numericDate(d.tok.claims, "exp")
	if !expValid {
		return skip("tipkit's verifier needs a valid exp (see token.expiry)")
	}
	at := d.sys.now()
	if !at.Before(exp) {
		at = exp.Add(-time.Second)
	}
	for _, name := range []string{"iat", "nbf"} {
		if t, _, valid := numericDate(d.tok.claims, name); valid && t.After(at) {
			if !t.Before(exp) {
				return skip("the token is valid at no time: its %s is not before its exp (see token.expiry)", name)
			}
			at = t
		}
	}
	v, err := verify.New(ctx, verify.Options{
		Issuers:  []verify.Issuer{{Issuer: d.tok.iss, Audience: d.tok.aud}},
		Now:      func() time.Time { return at },
		CacheTTL: -1,
	})
	if err != nil {
		return fail(fmt.Sprintf("tipkit's verifier refuses the issuer %q: %v", d.tok.iss, err),
			"use the identity provider's https issuer URL")
	}
	defer v.Close()
	if _, err := v.Verify(ctx, d.token); err != nil {
		var verr *verify.Error
		desc := err.Error()
		if errors.As(err, &verr) {
			desc = verr.Description
		}
		if errors.Is(err, verify.ErrUnavailable) {
			return fail("tipkit's verifier could not fetch the issuer's keys: "+desc, "make the issuer's discovery document and key set reachable")
		}
		return fail("tipkit's verifier refuses the token: "+desc,
			"use an untampered token of the issuer, signed with a key of its key set")
	}
	return ok("valid (checked by tipkit's verifier, as the server checks it)")
}

// checkAudience compares the token's aud with TIPKIT_AUDIENCE.
func (d *doctor) checkAudience(context.Context) result {
	if len(d.s.audience) == 0 {
		return skip("%s (-audience) is not set; the token's aud is %s", envAudience, quoteList(d.tok.aud))
	}
	for _, a := range d.tok.aud {
		if slices.Contains(d.s.audience, a) {
			return ok("the token's aud holds %q, accepted by %s", a, envAudience)
		}
	}
	return fail(fmt.Sprintf("the token's aud %s holds none of %s %s: the server would refuse it", quoteList(d.tok.aud), envAudience, quoteList(d.s.audience)),
		fmt.Sprintf("set %s to the audience the identity provider issues tokens for (%s), which must also be an authorized audience of the application's JWT bearer grant, or have the identity provider issue tokens for %q",
			envAudience, strings.Join(d.tok.aud, ","), d.s.audience[0]))
}
