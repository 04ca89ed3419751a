package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tipkit/tipkit/tiptest"
)

// terminalSafe fails t if out holds anything a terminal could act on: a
// control byte other than the newline, DEL, a C1 control, a format
// character such as a bidirectional override, or a byte that is not
// UTF-8.
func terminalSafe(t *testing.T, name, out string) {
	t.Helper()
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == '\n':
		case r == utf8.RuneError && n == 1:
			t.Errorf("%s: byte %#x at %d is not UTF-8: %q", name, out[i], i, out)
			return
		case r < 0x20 || r == 0x7f || !strconv.IsPrint(r):
			t.Errorf("%s: rune %U at %d reaches the terminal: %q", name, r, i, out)
			return
		}
		i += n
	}
}

// hostileStatus is the status line of hostileIssuer: a reason phrase
// that would retitle the window, clear the screen and ring the bell.
const hostileStatus = "502 Bad\x1b]0;owned\x07\x1b[2J\x7f\u009b31m Gateway"

// hostileIssuer is an issuer whose every answer has hostileStatus for a
// status line, which net/http's server cannot write: the connection is
// taken over.
func hostileIssuer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", hostileStatus)
		_ = buf.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHostileTextIsEscaped runs the doctor on a token whose alg holds
// terminal controls, and on an issuer whose status line does: neither
// reaches the terminal raw, in the text report or in -json.
func TestHostileTextIsEscaped(t *testing.T) {
	env := tiptest.New(t)
	b64 := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	badAlg := b64(map[string]any{"alg": "\x1b[31m\x07\x7f\u202e", "kid": "k\x1b[2J"}) + "." +
		b64(map[string]any{"iss": env.IdP.Issuer(), "sub": "a", "aud": "a"}) + ".c2ln"

	issuer := hostileIssuer(t)
	badStatus := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": issuer.URL}))

	for _, tc := range []struct {
		name, token string
		vars        map[string]string
		check, want string // the check that fails, and what its cause says
	}{
		{"alg", badAlg, nil, "token.format", `\x1b[31m\a\x7f\u202e`},
		{"status line", badStatus, map[string]string{envIssuer: issuer.URL}, "issuer.discovery", `Bad\x1b]0;owned\a\x1b[2J\x7f\u009b31m Gateway`},
	} {
		for _, mode := range [][]string{nil, {"-json"}} {
			name := tc.name + " " + strings.Join(mode, "")
			sys, stdout, stderr := testSystem(env, tc.token, tc.vars)
			if code := run(context.Background(), mode, sys); code != 1 {
				t.Errorf("%s: exit %d, want 1", name, code)
			}
			out := stdout.String() + stderr.String()
			terminalSafe(t, name, out)
			if !strings.Contains(out, tc.check) {
				t.Errorf("%s: no %s in %q", name, tc.check, out)
			}
			if mode == nil && !strings.Contains(out, tc.want) {
				t.Errorf("%s: the report does not show %s escaped: %q", name, tc.want, out)
			}
		}
	}
}

// TestReportEscapes prints a result holding every kind of rune a
// terminal could act on, in both report forms.
func TestReportEscapes(t *testing.T) {
	hostile := "a\x1b[2Jb\x07c\x7fd\re\x00f\u009bg\u202eh\xffi\u2028j"
	for _, asJSON := range []bool{false, true} {
		var out bytes.Buffer
		p := &reporter{out: &out, json: asJSON}
		p.print(result{Check: "x", Status: statusFail, Cause: hostile, Causes: []string{hostile}, Fix: hostile})
		p.print(result{Check: "y", Status: statusOK, Detail: hostile})
		terminalSafe(t, fmt.Sprintf("json %v", asJSON), out.String())
		if !asJSON && !strings.Contains(out.String(), `a\x1b[2Jb\ac\x7fd\re\x00f\u009bg\u202eh\xffi\u2028j`) {
			t.Errorf("not escaped as expected: %q", out.String())
		}
	}
	if got := printable("café — ok \"quoted\" \\ path"); got != "café — ok \"quoted\" \\ path" {
		t.Errorf("printable changed printable text: %q", got)
	}
}
