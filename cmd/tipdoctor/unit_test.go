package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDifference(t *testing.T) {
	cases := []struct{ a, b, want string }{
		{"https://idp.example.com", "https://idp.example.com", ""},
		{"https://idp.example.com/", "https://idp.example.com", "A ends with a slash and B does not"},
		{"https://idp.example.com", "https://idp.example.com/", "B ends with a slash and A does not"},
		{"https://IDP.example.com", "https://idp.example.com", "they differ only in upper and lower case"},
		{"http://idp.example.com", "https://idp.example.com", "A uses http and B uses https"},
		{"https://idp.example.com:8443", "https://idp.example.com", `their hosts differ: "idp.example.com:8443" and "idp.example.com"`},
		{"https://idp.example.com/a", "https://idp.example.com/b", `their paths differ: "/a" and "/b"`},
		{"https://idp.example.com ", "https://idp.example.com", "one of them has leading or trailing spaces"},
		{"%zz", "%zy", "they differ from byte 2 on"},
	}
	for _, tc := range cases {
		if got := difference("A", tc.a, "B", tc.b); got != tc.want {
			t.Errorf("difference(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestTrustPolicy(t *testing.T) {
	const server = "arn:aws:iam::111122223333:role/TokenExchange"
	cases := []struct {
		name, doc, principal   string
		assume, set, viaAcount bool
	}{
		{"both actions", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/TokenExchange"},"Action":["sts:AssumeRole","sts:SetContext"]}]}`,
			server, true, true, false},
		{"no SetContext", `{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/TokenExchange"]},"Action":"sts:AssumeRole"}}`,
			server, true, false, false},
		{"wildcard action", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/TokenExchange"},"Action":"STS:*"}]}`,
			server, true, true, false},
		{"role with a path", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/apps/TokenExchange"},"Action":"sts:*"}]}`,
			server, true, true, false},
		{"account root", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:SetContext"]}]}`,
			server, true, true, true},
		{"account id", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["sts:AssumeRole","sts:Set*"]}]}`,
			server, true, true, true},
		{"another principal", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Other"},"Action":"sts:*"}]}`,
			server, false, false, false},
		{"another account", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:*"}]}`,
			server, false, false, false},
		{"service principal", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
			server, false, false, false},
		{"deny wins", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:*"},{"Effect":"Deny","Principal":"*","Action":"sts:SetContext"}]}`,
			server, true, false, false},
		{"not action", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"NotAction":"sts:SetContext"}]}`,
			server, true, false, false},
		{"unknown principal", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/X"},"Action":"sts:*"}]}`,
			"", true, true, false},
	}
	for _, tc := range cases {
		p, err := decodePolicy(url.PathEscape(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		a, s := p.allows(tc.principal, "sts:AssumeRole"), p.allows(tc.principal, "sts:SetContext")
		if a.allowed != tc.assume || s.allowed != tc.set || (a.viaAccount || s.viaAccount) != tc.viaAcount {
			t.Errorf("%s: AssumeRole %+v, SetContext %+v", tc.name, a, s)
		}
	}
	for _, bad := range []string{"", "%7B", "[]", `{"Statement":5}`, `{"Statement":[5]}`} {
		if _, err := decodePolicy(bad); err == nil {
			t.Errorf("decodePolicy(%q) accepted it", bad)
		}
	}
	if got := principalOf("arn:aws:sts::111122223333:assumed-role/TokenExchange/i-0123"); got != server {
		t.Errorf("principalOf = %q", got)
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "sts:AssumeRole", true}, {"sts:*", "sts:SetContext", true}, {"sts:Assume*", "sts:AssumeRole", true},
		{"sts:Assume?ole", "sts:AssumeRole", true}, {"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", false},
		{"sts:*Context", "sts:SetContext", true}, {"*:*e*", "sts:SetContext", true}, {"iam:*", "sts:SetContext", false},
		{"", "", true}, {"", "a", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

// FuzzTokenChecks runs the checks of the token itself, which need no
// network, on any input: they must not panic, and never print the token.
func FuzzTokenChecks(f *testing.F) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	f.Add(b64(`{"alg":"RS256","kid":"k","typ":"JWT"}`) + "." + b64(`{"iss":"https://i","sub":"s","aud":"a","exp":4102444800,"iat":1,"jti":"j","email":"e@x"}`) + ".c2ln")
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{"exp":"x","aud":[1],"nbf":-5}`) + ".")
	f.Add("a.b.c.d.e")
	f.Add(b64(`{"alg":"ES256","kid":1}`) + "." + b64(`{"email":{"a":"b"},"exp":1e400}`) + ".x")
	f.Fuzz(func(t *testing.T, token string) {
		var out bytes.Buffer
		d := &doctor{
			s:      settings{userClaim: "email"},
			token:  token,
			sys:    system{now: func() time.Time { return time.Unix(1_700_000_000, 0) }},
			rep:    &reporter{out: &out, json: true, secrets: []string{token}},
			status: map[string]status{},
		}
		for _, c := range []check{
			{"token.format", nil, d.checkFormat},
			{"token.claims", []string{"token.format"}, d.checkClaims},
			{"token.expiry", []string{"token.format"}, d.checkExpiry},
			{"token.jti", []string{"token.format"}, d.checkJTI},
			{"token.user-claim", []string{"token.format"}, d.checkUserClaim},
			{"issuer.config", []string{"token.claims"}, d.checkIssuerConfig},
			{"audience", []string{"token.claims"}, d.checkAudience},
		} {
			r := d.runCheck(context.Background(), c)
			r.Check = c.name
			d.status[c.name] = r.Status
			d.rep.print(r)
		}
		if len(token) >= 8 && strings.Contains(out.String(), token) {
			t.Fatal("the token was printed")
		}
		_, _ = io.Copy(io.Discard, &out)
	})
}

func TestWrap(t *testing.T) {
	long := strings.Repeat("word ", 40)
	out := wrap("FAIL  x ", "      ", long)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if len(l) > lineWidth || !strings.HasPrefix(l, "FAIL  x ") && !strings.HasPrefix(l, "      word") {
			t.Errorf("line %q", l)
		}
	}
	if strings.Count(out, "word") != 40 {
		t.Errorf("words lost: %q", out)
	}
	if got := wrap("a ", "  ", strings.Repeat("x", 200)); got != "a "+strings.Repeat("x", 200)+"\n" {
		t.Errorf("a long word is broken: %q", got)
	}
	if got := wrap("ok ", "  ", ""); got != "ok\n" {
		t.Errorf("empty text: %q", got)
	}
}
