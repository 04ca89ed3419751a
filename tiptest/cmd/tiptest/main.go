// Command tiptest runs the local identity provider and the local AWS IAM
// Identity Center + STS of package tiptest until it is interrupted, so that
// programs written in any language can be tried against them.
//
// Usage:
//
//	tiptest [-refresh-grant] [-token-ttl 1h] [-region us-east-1] [-audience tipkit-test]
//	        [-break NAME,...] [-unknown-user NAME,...] [-fault OP=WHAT[:N]]...
//
// The first line it writes to standard output is one JSON object describing
// the environment:
//
//	{"endpoint":"http://127.0.0.1:PORT","region":"us-east-1",
//	 "issuer":"http://127.0.0.1:PORT","jwks_url":"...","audience":"tipkit-test",
//	 "application_arn":"arn:aws:sso::...","access_role_arn":"arn:aws:iam::...",
//	 "application_role_arn":"arn:aws:iam::...",
//	 "access_key_id":"AKIA...","secret_access_key":"..."}
//
// endpoint is the base URL of STS and SSO OIDC (BaseEndpoint of an AWS SDK
// client); access_key_id and secret_access_key are the long-term keys of the
// server's IAM user. A few lines for people follow, then the same settings
// as shell lines, one per variable, values in single quotes, for
// cmd/tipdoctor, the examples and AWS SDKs:
//
//	export AWS_ENDPOINT_URL='http://127.0.0.1:PORT'
//	export AWS_REGION='us-east-1'
//	export AWS_ACCESS_KEY_ID='AKIA...'
//	export AWS_SECRET_ACCESS_KEY='...'
//	export TIPKIT_ISSUER='http://127.0.0.1:PORT'
//	export TIPKIT_AUDIENCE='tipkit-test'
//	export TIPKIT_APPLICATION_ARN='arn:aws:sso::...'
//	export TIPKIT_ACCESS_ROLE_ARN='arn:aws:iam::123456789012:role/tipkit-access'
//	export TIPKIT_APPLICATION_ROLE_ARN='arn:aws:iam::123456789012:role/tipkit-application'
//
// A token of the local identity provider for a user is minted by
// GET <issuer>/token?user=NAME (optional alg=ES256 or EdDSA, ttl=15m,
// omit=jti,email).
//
// -break sets the local IAM Identity Center or IAM up wrongly on purpose,
// to see what a diagnosis (cmd/tipdoctor) or a program makes of it; the
// exchange then fails as AWS's would:
//
//	issuer-slash  the trusted token issuer's URL ends with a slash the tokens' iss lacks
//	issuer        the trusted token issuer's URL is another identity provider's
//	audience      the application authorises another audience than the tokens'
//	grant         the application has no JWT bearer grant
//	set-context   the access role's trust policy allows sts:AssumeRole but not sts:SetContext
//	tag-session   the access role's trust policy does not allow sts:TagSession (session tags)
//	source-identity  the access role's trust policy does not allow sts:SetSourceIdentity
//	application   the application does not exist
//	access-role   the access role does not exist
//
// -unknown-user removes users from the Identity Center directory: their
// tokens are refused with InvalidGrantException.
//
// # Faults
//
// Faults make the local AWS answer as a busy or failing AWS does, to try a
// program's retries, timeouts and error handling. -fault OP=WHAT[:N], which
// may be repeated, starts with one:
//
//	-fault AssumeRole=throttle                    every AssumeRole answers Throttling
//	-fault CreateTokenWithIAM=200ms               every CreateTokenWithIAM answers 200 ms late
//	-fault AssumeRole=1s+unavailable:2            the next 2 AssumeRole wait 1 s, then answer 503
//	-fault CreateTokenWithIAM=InvalidGrantException  an AWS error code, answered as it is
//
// OP is AssumeRole, AssumeRoleWithWebIdentity, GetCallerIdentity,
// CreateTokenWithIAM, DescribeApplication, GetApplicationGrant,
// DescribeTrustedTokenIssuer or GetRole. WHAT is a latency (a Go
// duration), an error, or LATENCY+ERROR; an error is an AWS error code or
// one of these kinds, which name each protocol's code:
//
//	throttle     Throttling (STS, IAM), SlowDownException (SSO OIDC), ThrottlingException (sso-admin)
//	internal     500: InternalError (STS, IAM), InternalServerException
//	unavailable  503: ServiceUnavailable (STS, IAM), ServiceUnavailableException
//	deny         AccessDenied (STS, IAM), AccessDeniedException
//
// :N limits the fault to the next N calls of OP; without it the fault
// stays until cleared. A later fault of OP replaces the earlier one. A
// fault applies before the request's signature is checked, as AWS's
// throttling does, and the call still counts.
//
// While tiptest runs, the server of endpoint also takes, under
// /_tiptest/, a path no AWS API it serves uses (an S3 bucket name cannot
// hold an underscore):
//
//	POST   /_tiptest/faults  sets a fault, replacing OP's: a JSON body
//	                         (Content-Type: application/json) such as
//	                         {"operation":"AssumeRole","fault":"throttle","latency":"1s","count":2},
//	                         fault and latency as in -fault, both optional but not both empty,
//	                         count as :N; answers 204, or 400 with the reason
//	DELETE /_tiptest/faults  removes every fault; answers 204
//	GET    /_tiptest/calls   the requests each operation received since the start,
//	                         refused or not: {"AssumeRole":3,"CreateTokenWithIAM":1}
//
// For example:
//
//	curl --json '{"operation":"CreateTokenWithIAM","fault":"throttle","count":1}' "$AWS_ENDPOINT_URL/_tiptest/faults"
//
// # Not served
//
// The small S3 and S3 Access Grants of package tiptest are not offered to
// other programs: S3 Control sends GetDataAccess to a host name of the
// account ("123456789012.127.0.0.1"), which no resolver answers, and grants
// and buckets are set up with Go calls (AWS.Grant, AWS.CreateBucket).
// Test S3 code in Go, with tiptest.New or tiptest.NewEnv.
//
// tiptest listens on 127.0.0.1 only and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tipkit/tipkit/tiptest"
)

// info is the JSON object of the first output line.
type info struct {
	Endpoint           string `json:"endpoint"`
	Region             string `json:"region"`
	Issuer             string `json:"issuer"`
	JWKSURL            string `json:"jwks_url"`
	Audience           string `json:"audience"`
	ApplicationArn     string `json:"application_arn"`
	AccessRoleArn      string `json:"access_role_arn"`
	ApplicationRoleArn string `json:"application_role_arn"`
	AccessKeyID        string `json:"access_key_id"`
	SecretAccessKey    string `json:"secret_access_key"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run starts the environment described by args, prints its description to
// stdout and serves until ctx is done. It returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tiptest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	refresh := fs.Bool("refresh-grant", false, "give the application the refresh_token grant")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of Identity Center tokens and identity contexts")
	region := fs.String("region", "us-east-1", "AWS region of the local Identity Center and STS")
	audience := fs.String("audience", "tipkit-test", "audience of the local identity provider's tokens")
	breaks := fs.String("break", "", "comma-separated misconfigurations: "+strings.Join(breakNames, ", "))
	unknown := fs.String("unknown-user", "", "comma-separated users that IAM Identity Center does not know")
	var faults []faultSpec
	fs.Func("fault", "`OP=WHAT[:N]` makes an operation fail or wait from the start; repeatable (see below)", func(v string) error {
		f, err := parseFaultFlag(v)
		if err == nil {
			faults = append(faults, f)
		}
		return err
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tiptest [flags]")
		fmt.Fprintln(stderr, "Runs a local OpenID Connect identity provider and a local AWS IAM Identity Center + STS on 127.0.0.1.")
		fmt.Fprintln(stderr, "Not S3 or S3 Access Grants: those of package tiptest are for Go tests (tiptest.New).")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, usageFaults, strings.Join(faultOpNames(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tiptest: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "tiptest: -token-ttl must be positive")
		return 2
	}
	if *region == "" || *audience == "" {
		fmt.Fprintln(stderr, "tiptest: -region and -audience must not be empty")
		return 2
	}
	broken := splitList(*breaks)
	for _, b := range broken {
		if !slices.Contains(breakNames, b) {
			fmt.Fprintf(stderr, "tiptest: unknown -break %q (want %s)\n", b, strings.Join(breakNames, ", "))
			return 2
		}
	}

	opts := []tiptest.Option{
		tiptest.WithTokenTTL(*ttl),
		tiptest.WithRegion(*region),
		tiptest.WithAudience(*audience),
	}
	if *refresh {
		opts = append(opts, tiptest.WithRefreshGrant())
	}
	env, err := tiptest.NewEnv(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "tiptest: %v\n", err)
		return 1
	}
	defer func() { _ = env.Close() }()
	if err := env.AWS.Configure(func(s *tiptest.Setup) { breakSetup(s, broken) }); err != nil {
		fmt.Fprintf(stderr, "tiptest: %v\n", err)
		return 1
	}
	for _, user := range splitList(*unknown) {
		env.AWS.RemoveUser(user)
	}
	for _, s := range faults {
		f, _ := s.resolve() // checked by parseFaultFlag
		env.AWS.SetFault(s.Operation, f)
	}
	env.AWS.HandleControl(controlHandler(env.AWS))

	creds := env.AWS.ServerCredentials()
	line, err := json.Marshal(info{
		Endpoint:           env.AWS.URL(),
		Region:             env.AWS.Region(),
		Issuer:             env.IdP.Issuer(),
		JWKSURL:            env.IdP.JWKSURL(),
		Audience:           env.IdP.Audience(),
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn,
		AccessKeyID:        creds.AccessKeyID,
		SecretAccessKey:    creds.SecretAccessKey,
	})
	if err != nil {
		fmt.Fprintf(stderr, "tiptest: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "identity provider: %s (audience %q)\n", env.IdP.Issuer(), env.IdP.Audience())
	fmt.Fprintf(stdout, "  mint a token:    curl '%s/token?user=alice'\n", env.IdP.Issuer())
	fmt.Fprintf(stdout, "AWS (STS + SSO OIDC): %s, region %s, refresh grant %v, token TTL %v\n",
		env.AWS.URL(), env.AWS.Region(), *refresh, *ttl)
	fmt.Fprintf(stdout, "  faults:          POST or DELETE %s%sfaults, counters: GET %s%scalls\n",
		env.AWS.URL(), tiptest.ControlPath, env.AWS.URL(), tiptest.ControlPath)
	if len(broken) > 0 || *unknown != "" {
		fmt.Fprintf(stdout, "broken on purpose: %s; unknown users: %s\n", strings.Join(broken, ", "), strings.Join(splitList(*unknown), ", "))
	}
	if len(faults) > 0 {
		names := make([]string, len(faults))
		for i, f := range faults {
			names[i] = f.String()
		}
		fmt.Fprintf(stdout, "faults from the start: %s\n", strings.Join(names, ", "))
	}
	for _, v := range exports(env) {
		fmt.Fprintf(stdout, "export %s=%s\n", v.name, shellQuote(v.value))
	}
	fmt.Fprintln(stdout, "press Ctrl-C to stop")

	<-ctx.Done()
	fmt.Fprintln(stderr, "tiptest: stopping")
	return 0
}

// usageFaults ends -h; %s is the list of operations.
const usageFaults = `
-fault OP=WHAT[:N] makes OP fail or wait, from the start; repeat it for
several operations. WHAT is a latency (200ms), an error, or LATENCY+ERROR;
an error is an AWS error code (InvalidGrantException) or one of:
  throttle     Throttling (STS, IAM), SlowDownException (SSO OIDC), ThrottlingException (sso-admin)
  internal     500: InternalError (STS, IAM), InternalServerException
  unavailable  503: ServiceUnavailable (STS, IAM), ServiceUnavailableException
  deny         AccessDenied (STS, IAM), AccessDeniedException
:N limits the fault to the next N calls; without it, it stays until cleared.
OP is one of %s.

While it runs, the AWS endpoint also serves, on 127.0.0.1 as the rest:
  POST   /_tiptest/faults  a JSON body, Content-Type application/json:
                           {"operation":"AssumeRole","fault":"throttle","latency":"1s","count":2}
                           (fault and latency as in -fault, one may be left out; count as :N)
  DELETE /_tiptest/faults  removes every fault
  GET    /_tiptest/calls   requests per operation, refused or not: {"AssumeRole":3}
`

// envVar is one line of the export block.
type envVar struct{ name, value string }

// exports are the variables of the export lines: the AWS SDKs' standard
// ones and every TIPKIT_ variable cmd/tipdoctor and the examples read.
func exports(env *tiptest.Env) []envVar {
	creds := env.AWS.ServerCredentials()
	return []envVar{
		{"AWS_ENDPOINT_URL", env.AWS.URL()},
		{"AWS_REGION", env.AWS.Region()},
		{"AWS_ACCESS_KEY_ID", creds.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey},
		{"TIPKIT_ISSUER", env.IdP.Issuer()},
		{"TIPKIT_AUDIENCE", env.IdP.Audience()},
		{"TIPKIT_APPLICATION_ARN", env.ApplicationArn},
		{"TIPKIT_ACCESS_ROLE_ARN", env.AccessRoleArn},
		{"TIPKIT_APPLICATION_ROLE_ARN", env.ApplicationRoleArn},
	}
}

// shellQuote quotes s for a POSIX shell: in single quotes, each single
// quote of s closing the quotes, escaped with a backslash, and reopening
// them.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// breakNames are the values of -break.
var breakNames = []string{"issuer-slash", "issuer", "audience", "grant", "set-context", "tag-session", "source-identity", "application", "access-role"}

// breakSetup applies the misconfigurations named in broken to s.
func breakSetup(s *tiptest.Setup, broken []string) {
	for _, b := range broken {
		switch b {
		case "issuer-slash":
			s.IssuerURL = strings.TrimSuffix(s.IssuerURL, "/") + "/"
		case "issuer":
			s.IssuerURL = "https://idp.example.com"
		case "audience":
			for i, a := range s.Audiences {
				s.Audiences[i] = "not-" + a
			}
		case "grant":
			s.JWTBearerGrant = false
		case "set-context":
			s.AccessRoleSetContext = false
		case "tag-session":
			s.AccessRoleTagSession = false
		case "source-identity":
			s.AccessRoleSetSourceIdentity = false
		case "application":
			s.Application = false
		case "access-role":
			s.AccessRole = false
		}
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
