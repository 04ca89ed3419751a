// Command tenants is one server for several customers, each with its own
// identity provider and its own IAM Identity Center instance (its own
// region, application and roles): tipkit's middleware routes each token,
// by its iss, to its customer's exchange, and the handler is told which
// customer called.
//
//	GET /whoami   {"tenant": "...", "subject": "...", "region": "...", "arn": "..."}
//
// Against AWS, -tenants names a JSON file listing the customers:
//
//	[{"name": "acme", "issuer": "https://acme.okta.com/oauth2/default", "audience": ["api"],
//	  "application_arn": "arn:aws:sso::111122223333:application/ssoins-.../apl-...",
//	  "access_role_arn": "arn:aws:iam::111122223333:role/UserAccess",
//	  "application_role_arn": "arn:aws:iam::111122223333:role/TokenExchange",
//	  "region": "us-east-1", "external_id": "..."},
//	 {"name": "globex", ...}]
//
// The server re-reads the file on SIGHUP: it builds a new middleware from
// it and swaps it in, closing the old one; a file it cannot use leaves the
// running configuration in place. Without -tenants it serves two local
// customers (tiptest environments in us-east-1 and eu-west-1) and prints
// a curl command for each. -selftest checks it all locally and exits 0
// only when every answer was the expected one, 1 otherwise.
//
//	go run ./examples/tenants [-selftest] [-tenants file.json] [-addr host:port]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/examples/internal/demo"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves GET /whoami until ctx is done, or with -selftest checks it
// locally. It returns demo.ExitUsage (2) for bad flags or a file it cannot
// use, demo.ExitFailed (1) when the server or the self-test failed,
// demo.ExitOK (0) otherwise.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tenants", flag.ContinueOnError)
	fs.SetOutput(stderr)
	selftest := fs.Bool("selftest", false, "check locally, with two local customers, and exit 0 only if every answer is the expected one")
	file := fs.String("tenants", "", "JSON file of the customers to serve against AWS, re-read on SIGHUP (default: two local customers)")
	addrFlag := fs.String("addr", "", "listen address (default $"+demo.EnvAddr+", else 127.0.0.1:8080)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./examples/tenants [-selftest] [-tenants file.json] [-addr host:port]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return demo.ExitOK
		}
		return demo.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tenants: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return demo.ExitUsage
	}
	if *selftest {
		if err := selfTest(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "tenants: self-test FAILED: %v\n", err)
			return demo.ExitFailed
		}
		return demo.ExitOK
	}

	srv := &server{app: whoami{}}
	var (
		load  func(context.Context) ([]middleware.Tenant, error)
		local *customers
	)
	if *file != "" {
		load = func(ctx context.Context) ([]middleware.Tenant, error) { return loadTenants(ctx, *file) }
	} else {
		var err error
		local, err = startCustomers()
		if err != nil {
			fmt.Fprintf(stderr, "tenants: %v\n", err)
			return demo.ExitFailed
		}
		defer local.close()
		load = func(context.Context) ([]middleware.Tenant, error) { return local.tenants(), nil }
	}
	tenants, err := load(ctx)
	if err == nil {
		err = srv.configure(ctx, tenants)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tenants: %v\n", err)
		return demo.ExitUsage
	}
	defer srv.close()

	addr := cmpOr(*addrFlag, getenv(demo.EnvAddr), "127.0.0.1:8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "tenants: %v\n", err)
		return demo.ExitFailed
	}
	fmt.Fprintf(stdout, "tenants: serving http://%s/whoami for %d customers\n", ln.Addr(), len(tenants))
	if local != nil {
		fmt.Fprintf(stdout, "alice of each local customer (tokens valid one hour):\n")
		for _, env := range []*tiptest.Env{local.acme, local.globex} {
			fmt.Fprintf(stdout, "  curl -H 'Authorization: Bearer %s' http://%s/whoami\n", env.IdP.Token("alice"), ln.Addr())
		}
	} else {
		fmt.Fprintf(stdout, "kill -HUP %d re-reads %s\n", os.Getpid(), *file)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			tenants, err := load(ctx)
			if err == nil {
				err = srv.configure(ctx, tenants)
			}
			if err != nil {
				fmt.Fprintf(stderr, "tenants: configuration kept: %v\n", err)
				continue
			}
			fmt.Fprintf(stdout, "tenants: now serving %d customers\n", len(tenants))
		}
	}()

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "tenants: %v\n", err)
		return demo.ExitFailed
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	return demo.ExitOK
}

// cmpOr returns the first of values that is not empty.
func cmpOr(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// server authenticates each request with the current middleware, which
// configure replaces as a whole when the customers change: a request
// under way finishes on the middleware it started with (one that would
// start an exchange after that middleware closed is answered 503 with
// Retry-After, and its retry reaches the new one).
type server struct {
	current atomic.Pointer[middleware.Middleware]
	app     http.Handler
}

// configure builds a middleware for tenants and swaps it in, closing the
// old one once the exchanges under way are done. On error the running one
// stays.
func (s *server) configure(ctx context.Context, tenants []middleware.Tenant) error {
	m, err := middleware.New(ctx, middleware.Options{Tenants: tenants, Realm: "tenants"})
	if err != nil {
		return err
	}
	if old := s.current.Swap(m); old != nil {
		return old.Close()
	}
	return nil
}

func (s *server) close() error {
	if m := s.current.Swap(nil); m != nil {
		return m.Close()
	}
	return nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := s.current.Load()
	r2, err := m.Authenticate(r)
	if err != nil {
		m.HandleError(w, r, err)
		return
	}
	s.app.ServeHTTP(w, r2)
}

// whoami answers who is calling: the caller's tenant and subject, the
// region of the tenant's AWS configuration, and the ARN STS knows the
// caller's credentials by.
type whoami struct{}

func (whoami) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg, ok := ctxcreds.Config(r.Context())
	id, _ := ctxcreds.IdentityFrom(r.Context())
	if !ok {
		http.Error(w, "no AWS configuration", http.StatusInternalServerError)
		return
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		http.Error(w, "AWS refused the caller's credentials", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer{Tenant: id.Tenant(), Subject: id.Subject(), Region: cfg.Region, Arn: aws.ToString(out.Arn)})
}

// answer is the body of GET /whoami.
type answer struct {
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
	Region  string `json:"region"`
	Arn     string `json:"arn"`
}

// tenantConfig is one customer of the -tenants file.
type tenantConfig struct {
	Name               string   `json:"name"`
	Issuer             string   `json:"issuer"`
	Audience           []string `json:"audience"`
	ApplicationArn     string   `json:"application_arn"`
	AccessRoleArn      string   `json:"access_role_arn"`
	ApplicationRoleArn string   `json:"application_role_arn"` // empty: the server's own credentials sign the exchange
	Region             string   `json:"region"`               // of the customer's IAM Identity Center instance
	ExternalID         string   `json:"external_id"`          // of the customer's Amazon Q Business data accessor, if it has one
}

// dataAccessor shapes the sessions of a customer whose data is reached
// through an Amazon Q Business data accessor: each carries the session tag
// qbusiness-dataaccessor:ExternalId the data accessor requires, the user
// as a tag of its own, and the user as source identity, so that CloudTrail
// names the user across role chains. The access role's trust policy must
// allow sts:TagSession and sts:SetSourceIdentity.
func dataAccessor(externalID string) func(claims map[string]any) (exchange.SessionOptions, error) {
	return func(claims map[string]any) (exchange.SessionOptions, error) {
		sub, _ := claims["sub"].(string)
		if sub == "" {
			return exchange.SessionOptions{}, errors.New("the token has no subject")
		}
		return exchange.SessionOptions{
			Tags: map[string]string{
				"qbusiness-dataaccessor:ExternalId": externalID,
				"user":                              sub,
			},
			SourceIdentity: sub,
		}, nil
	}
}

// loadTenants reads the customers of the file at path. The AWS
// configuration of each comes from config.LoadDefaultConfig in the
// customer's region.
func loadTenants(ctx context.Context, path string) ([]middleware.Tenant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var cs []tenantConfig
	if err := dec.Decode(&cs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%s lists no customer", path)
	}
	tenants := make([]middleware.Tenant, 0, len(cs))
	for _, c := range cs {
		if c.Region == "" {
			return nil, fmt.Errorf("%s: customer %q has no region", path, c.Name)
		}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.Region))
		if err != nil {
			return nil, fmt.Errorf("loading the AWS configuration of %q: %w", c.Name, err)
		}
		x := exchange.Options{ApplicationArn: c.ApplicationArn, AccessRoleArn: c.AccessRoleArn, ApplicationRoleArn: c.ApplicationRoleArn, Config: cfg}
		if c.ExternalID != "" {
			x.Session = dataAccessor(c.ExternalID)
		}
		if c.ApplicationRoleArn == "" {
			x.SSOOIDCClient, x.STSClient = ssooidc.NewFromConfig(cfg), sts.NewFromConfig(cfg)
		}
		tenants = append(tenants, middleware.Tenant{
			Name:      c.Name,
			Issuers:   []verify.Issuer{{Issuer: c.Issuer, Audience: c.Audience}},
			Exchange:  x,
			AWSConfig: cfg,
		})
	}
	return tenants, nil
}
