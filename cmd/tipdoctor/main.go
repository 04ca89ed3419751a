// Command tipdoctor tells an operator what is wrong with a real trusted
// identity propagation setup: the identity provider's token, the issuer,
// the audience, the server's AWS identity, IAM Identity Center's
// application, grant and trusted token issuer, the access role's trust
// policy, and, with -exchange, the exchange itself.
//
// Usage:
//
//	go run github.com/tipkit/tipkit/cmd/tipdoctor@latest [flags] < token
//
// It reads the configuration the examples read (TIPKIT_ISSUER,
// TIPKIT_AUDIENCE, TIPKIT_APPLICATION_ARN, TIPKIT_ACCESS_ROLE_ARN,
// TIPKIT_APPLICATION_ROLE_ARN, or the flags of the same meaning) and the
// standard AWS configuration (AWS_REGION, AWS_ENDPOINT_URL, the credentials
// chain), takes one user's token with -token, -token-file or on standard
// input, and prints one line per check: ok, FAIL with the cause and the fix,
// or skip with the reason (a missing setting, or a permission the caller
// lacks). -json prints one JSON object per check instead. Run it with -h for
// every flag, the checks and the IAM permissions they need.
//
// Exit status: 0 when no check failed, 1 when one did, 2 for bad usage.
//
// It fetches the discovery document of TIPKIT_ISSUER only, not of an
// issuer named by the token alone, unless -follow-token-issuer asks it to;
// it follows redirects as tipkit's verifier does. Text it did not write
// itself (from the token, the issuer, AWS, the environment) is printed with
// every control character escaped.
//
// It never prints the token, an identity context or a secret. Only
// -exchange spends the token: IAM Identity Center exchanges a token (its
// jti) once.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
)

// The environment variables of the configuration, as the examples read
// them.
const (
	envIssuer             = "TIPKIT_ISSUER"
	envAudience           = "TIPKIT_AUDIENCE"
	envApplicationArn     = "TIPKIT_APPLICATION_ARN"
	envAccessRoleArn      = "TIPKIT_ACCESS_ROLE_ARN"
	envApplicationRoleArn = "TIPKIT_APPLICATION_ROLE_ARN"
)

// Limits of the input.
const (
	maxTokenInput  = 64 << 10
	defaultTimeout = time.Minute
)

// system is what run takes from its surroundings; tests replace it.
type system struct {
	stdin          io.Reader
	stdinIsTTY     bool
	stdout, stderr io.Writer
	getenv         func(string) string
	// loadAWS loads the AWS configuration; region, when not empty,
	// overrides the configured one.
	loadAWS func(ctx context.Context, region string) (aws.Config, error)
	now     func() time.Time
	// httpClient fetches the discovery document and the key set.
	httpClient *http.Client
}

// settings is the configuration under diagnosis.
type settings struct {
	issuer             string
	audience           []string
	applicationArn     string
	accessRoleArn      string
	applicationRoleArn string
	region             string
	userClaim          string
	exchange           bool
	followTokenIssuer  bool
	json               bool
	timeout            time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stat, err := os.Stdin.Stat()
	tty := err == nil && stat.Mode()&os.ModeCharDevice != 0
	code := run(ctx, os.Args[1:], system{
		stdin: os.Stdin, stdinIsTTY: tty, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, loadAWS: loadDefaultConfig, now: time.Now,
		httpClient: &http.Client{Timeout: 10 * time.Second},
	})
	stop()
	os.Exit(code)
}

// loadDefaultConfig is the standard AWS configuration: environment,
// shared files, credentials chain.
func loadDefaultConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

// usage is the text of -h, after the flags' own lines.
const usageHead = `usage: tipdoctor [flags] [< token]

Diagnoses a trusted identity propagation setup with one user's token: each
check prints "ok", "FAIL" with the cause and the fix, or "skip" with the
reason. Exit status 0 when no check failed, 1 when one did, 2 for bad usage.

The token comes from -token, -token-file, or standard input (a leading
"Bearer " is ignored). It is never printed. Without -exchange it is not
spent: IAM Identity Center exchanges a token (its jti) only once.

Flags (each TIPKIT_ flag defaults to its environment variable):
`

const usageTail = `
AWS configuration: the standard one (config.LoadDefaultConfig): AWS_REGION
(IAM Identity Center's region), AWS_ENDPOINT_URL, AWS_PROFILE, the
credentials chain. The credentials are the operator's: they read the setup
(and, without TIPKIT_APPLICATION_ROLE_ARN, sign the exchange as the server's
would).

Checks, in order; a check whose prerequisite did not pass is skipped:
  token.format            decodes; algorithm accepted; kid; typ
  token.claims            iss, sub, aud present
  token.expiry            exp present and not past (with how long ago), iat, nbf
  token.jti               jti present (IAM Identity Center requires it)
  token.user-claim        the claim users are mapped by (-user-claim)
  issuer.config           TIPKIT_ISSUER equals the token's iss byte for byte
  issuer.discovery        discovery of TIPKIT_ISSUER (of the token's iss only with -follow-token-issuer):
                          reachable, https outside loopback (redirects too, as tipkit's verifier follows
                          them), its issuer equals iss
  issuer.keys             the key set reachable, the token's kid in it
  issuer.signature        the signature, checked by tipkit's verifier
  audience                the token's aud holds TIPKIT_AUDIENCE
  aws.config              region and configuration load
  aws.identity            sts:GetCallerIdentity with the configured credentials
  aws.application-role    sts:AssumeRoleWithWebIdentity with the token (with TIPKIT_APPLICATION_ROLE_ARN)
  identitycenter.application  sso:DescribeApplication
  identitycenter.grant        sso:GetApplicationGrant (JWT bearer grant)
  identitycenter.issuer       sso:DescribeTrustedTokenIssuer: issuer URL and claim mapping against the token
  identitycenter.audience     the grant's authorized audiences against the token's aud
  iam.access-role         iam:GetRole: the trust policy allows sts:AssumeRole and sts:SetContext
  exchange                -exchange: CreateTokenWithIAM then AssumeRole, as the server does
  exchange.identity       -exchange: sts:GetCallerIdentity as the user, and when the credentials expire

IAM permissions of the operator's credentials: sts:GetCallerIdentity (none
needed), sso:DescribeApplication, sso:GetApplicationGrant,
sso:DescribeTrustedTokenIssuer, iam:GetRole on the access role; an
AccessDenied makes a skip naming the missing one. -exchange without an
application role needs what the server's role needs: sso-oauth:CreateTokenWithIAM,
sts:AssumeRole and sts:SetContext on the access role.
`

// parse reads the flags, the environment and the token. It returns the
// exit status 2 (or 0 for -h) when the doctor should not run.
func parse(args []string, sys system) (settings, string, int, bool) {
	fs := flag.NewFlagSet("tipdoctor", flag.ContinueOnError)
	fs.SetOutput(sys.stderr)
	var s settings
	token := fs.String("token", "", "the user's token (visible to other users of this machine: prefer -token-file or standard input)")
	tokenFile := fs.String("token-file", "", `file holding the user's token ("-": standard input)`)
	issuer := fs.String("issuer", "", "the exact iss of the identity provider's tokens, as registered in IAM Identity Center ("+envIssuer+")")
	audience := fs.String("audience", "", "the audiences the server accepts, comma-separated ("+envAudience+")")
	fs.StringVar(&s.applicationArn, "application-arn", "", "the IAM Identity Center application ("+envApplicationArn+")")
	fs.StringVar(&s.accessRoleArn, "access-role-arn", "", "the role assumed with each user's identity context ("+envAccessRoleArn+")")
	fs.StringVar(&s.applicationRoleArn, "application-role-arn", "", "optional: the role assumed with the token to sign the exchange ("+envApplicationRoleArn+")")
	fs.StringVar(&s.region, "region", "", "IAM Identity Center's region (default: AWS_REGION, or the AWS configuration's)")
	fs.StringVar(&s.userClaim, "user-claim", "email", "the token claim the trusted token issuer maps users by")
	fs.BoolVar(&s.exchange, "exchange", false, "also exchange the token as the server would (spends the token)")
	fs.BoolVar(&s.followTokenIssuer, "follow-token-issuer", false, "fetch the discovery document and keys of the token's iss even when it is not "+envIssuer+
		" (or that is not set): the token is not verified yet, so its iss may name any host")
	fs.BoolVar(&s.json, "json", false, "print one JSON object per check")
	fs.DurationVar(&s.timeout, "timeout", defaultTimeout, "bound on the whole diagnosis")
	fs.Usage = func() {
		fmt.Fprint(sys.stderr, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(sys.stderr, usageTail)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s, "", 0, false
		}
		return s, "", 2, false
	}
	fail := func(format string, a ...any) (settings, string, int, bool) {
		fmt.Fprintf(sys.stderr, "tipdoctor: %s\n", printable(fmt.Sprintf(format, a...)))
		return s, "", 2, false
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q (see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name, value, env string) string {
		if set[name] {
			return strings.TrimSpace(value)
		}
		return strings.TrimSpace(sys.getenv(env))
	}
	s.issuer = pick("issuer", *issuer, envIssuer)
	for a := range strings.SplitSeq(pick("audience", *audience, envAudience), ",") {
		if a = strings.TrimSpace(a); a != "" {
			s.audience = append(s.audience, a)
		}
	}
	s.applicationArn = pick("application-arn", s.applicationArn, envApplicationArn)
	s.accessRoleArn = pick("access-role-arn", s.accessRoleArn, envAccessRoleArn)
	s.applicationRoleArn = pick("application-role-arn", s.applicationRoleArn, envApplicationRoleArn)
	s.region = strings.TrimSpace(s.region)
	s.userClaim = strings.TrimSpace(s.userClaim)
	switch {
	case s.userClaim == "":
		return fail("-user-claim must name a claim")
	case s.timeout <= 0:
		return fail("-timeout must be positive")
	case s.applicationArn != "" && !isARN(s.applicationArn, "sso", "application/"):
		return fail("%s %q is not an IAM Identity Center application ARN (arn:aws:sso::ACCOUNT:application/ssoins-.../apl-...)", envApplicationArn, s.applicationArn)
	case s.accessRoleArn != "" && !isARN(s.accessRoleArn, "iam", "role/"):
		return fail("%s %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", envAccessRoleArn, s.accessRoleArn)
	case s.applicationRoleArn != "" && !isARN(s.applicationRoleArn, "iam", "role/"):
		return fail("%s %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", envApplicationRoleArn, s.applicationRoleArn)
	case s.applicationRoleArn != "" && s.applicationRoleArn == s.accessRoleArn:
		return fail("%s and %s must be different roles", envApplicationRoleArn, envAccessRoleArn)
	case s.exchange && (s.applicationArn == "" || s.accessRoleArn == ""):
		return fail("-exchange needs %s and %s", envApplicationArn, envAccessRoleArn)
	}
	tok, err := readToken(*token, set["token"], *tokenFile, set["token-file"], sys)
	if err != nil {
		return fail("%v", err)
	}
	return s, tok, 0, true
}

// readToken returns the token of -token, -token-file or standard input.
func readToken(flagValue string, flagSet bool, file string, fileSet bool, sys system) (string, error) {
	var raw []byte
	switch {
	case flagSet && fileSet:
		return "", errors.New("give the token with -token or -token-file, not both")
	case flagSet:
		raw = []byte(flagValue)
	case fileSet && file != "-":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("reading -token-file: %w", err)
		}
		defer f.Close()
		if raw, err = io.ReadAll(io.LimitReader(f, maxTokenInput+1)); err != nil {
			return "", fmt.Errorf("reading -token-file: %w", err)
		}
	default:
		if sys.stdinIsTTY {
			fmt.Fprintln(sys.stderr, "tipdoctor: reading the token from standard input (paste it, then Ctrl-D); -h for help")
		}
		var err error
		if raw, err = io.ReadAll(io.LimitReader(sys.stdin, maxTokenInput+1)); err != nil {
			return "", fmt.Errorf("reading the token from standard input: %w", err)
		}
	}
	if len(raw) > maxTokenInput {
		return "", fmt.Errorf("the token is longer than %d bytes", maxTokenInput)
	}
	tok := strings.TrimSpace(string(raw))
	const scheme = "bearer"
	if len(tok) >= len(scheme) && strings.EqualFold(tok[:len(scheme)], scheme) &&
		(len(tok) == len(scheme) || tok[len(scheme)] == ' ' || tok[len(scheme)] == '\t') {
		tok = strings.TrimSpace(tok[len(scheme):])
	}
	if tok == "" {
		return "", errors.New("no token: give one with -token, -token-file or on standard input (see -h)")
	}
	return tok, nil
}

// isARN reports whether s is an ARN of service whose resource starts with
// prefix and names something after it.
func isARN(s, service, prefix string) bool {
	a, err := arn.Parse(s)
	return err == nil && a.Service == service && a.AccountID != "" &&
		len(a.Resource) > len(prefix) && strings.HasPrefix(a.Resource, prefix)
}

// run diagnoses the setup described by args and the environment and
// returns the exit status.
func run(ctx context.Context, args []string, sys system) int {
	s, token, code, ok := parse(args, sys)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rep := &reporter{out: sys.stdout, json: s.json, secrets: []string{token}}
	d := &doctor{s: s, token: token, sys: sys, rep: rep, status: map[string]status{}}
	d.diagnose(ctx)
	if rep.err != nil {
		fmt.Fprintf(sys.stderr, "tipdoctor: writing the report: %s\n", printable(rep.err.Error()))
		return 1
	}
	if rep.failed > 0 {
		return 1
	}
	return 0
}

// status is the outcome of a check.
type status string

const (
	statusOK   status = "ok"
	statusFail status = "FAIL"
	statusSkip status = "skip"
)

// result is one check's line, or JSON object.
type result struct {
	Check  string   `json:"check"`
	Status status   `json:"status"`
	Detail string   `json:"detail,omitempty"` // ok: what was found; skip: why
	Cause  string   `json:"cause,omitempty"`  // FAIL
	Causes []string `json:"causes,omitempty"` // FAIL: causes left open, most likely first
	Fix    string   `json:"fix,omitempty"`    // FAIL
}

// reporter prints results as they come, with any secret it was given
// blanked out of them.
type reporter struct {
	out     io.Writer
	json    bool
	secrets []string
	failed  int
	err     error
}

// nameWidth aligns the text report.
const nameWidth = 27

// print writes r, with secrets blanked out and every rune a terminal
// could act on escaped: its text holds what the token, the issuer, AWS
// and the environment said.
func (p *reporter) print(r result) {
	r.Check = printable(r.Check)
	r.Detail, r.Cause, r.Fix = printable(p.redact(r.Detail)), printable(p.redact(r.Cause)), printable(p.redact(r.Fix))
	causes := make([]string, len(r.Causes))
	for i, c := range r.Causes {
		causes[i] = printable(p.redact(c))
	}
	r.Causes = causes
	if r.Status == statusFail {
		p.failed++
	}
	if p.err != nil {
		return
	}
	if p.json {
		b, err := json.Marshal(r)
		if err == nil {
			_, err = fmt.Fprintf(p.out, "%s\n", b)
		}
		p.err = err
		return
	}
	var b strings.Builder
	text := r.Detail
	if r.Status == statusFail {
		text = r.Cause
	}
	indent := strings.Repeat(" ", 6+nameWidth+1)
	fmt.Fprintf(&b, "%-4s  %-*s %s\n", r.Status, nameWidth, r.Check, strings.Join(strings.Fields(text), " "))
	for i, c := range r.Causes {
		b.WriteString(wrap(fmt.Sprintf("%s%d. ", indent, i+1), indent+"   ", c))
	}
	if r.Fix != "" {
		b.WriteString(wrap(indent+"fix: ", indent+"     ", r.Fix))
	}
	_, p.err = io.WriteString(p.out, b.String())
}

// lineWidth is the width the text report wraps the causes and fixes of a
// failed check at; the line of a check is never broken.
const lineWidth = 120

// wrap writes text after first, breaking it at spaces into lines of at
// most lineWidth bytes (a longer word stays whole), each next line after
// indent.
func wrap(first, indent, text string) string {
	var b strings.Builder
	line := first
	lineHasWord := false
	for word := range strings.FieldsSeq(text) {
		if lineHasWord && len(line)+1+len(word) > lineWidth {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line, lineHasWord = indent, false
		}
		if lineHasWord {
			line += " "
		}
		line += word
		lineHasWord = true
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
	return b.String()
}

// printable returns s with every rune that strconv.IsPrint refuses
// (control characters such as ESC, BEL, CR and DEL, the C1 controls,
// format characters such as bidirectional overrides, line and paragraph
// separators) written as its Go escape (\x1b, \a, \u202e), and every byte
// that is not UTF-8 as \xNN. Backslashes are left as they are: the text
// is for reading, not for unquoting.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// redact blanks the secrets out of s.
func (p *reporter) redact(s string) string {
	for _, secret := range p.secrets {
		if len(secret) >= 8 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}
