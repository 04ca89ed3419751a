// Command lambda is an AWS Lambda function whose handler is the ordinary
// tipkit middleware around a net/http mux, served through the httpadapter
// of github.com/awslabs/aws-lambda-go-api-proxy, with the users' sessions
// shared between the function's instances in a DynamoDB table
// (package dynamostore): each user's token is exchanged once, whichever
// instance serves the user, and an instance started cold finds the
// sessions of its users in the table instead of exchanging again.
//
//	GET /whoami   calls STS GetCallerIdentity as the caller and answers the
//	              caller's role session (ARN, user id, account)
//
// The handler knows nothing of Lambda: the adapter turns each event into
// an *http.Request and the answer back into the event's response.
// [httpadapter.NewV2] serves API Gateway HTTP APIs (payload version 2.0)
// and function URLs, as here; [httpadapter.New] serves API Gateway REST
// APIs (payload version 1.0) and [httpadapter.NewALB] Application Load
// Balancer targets, with the same handler.
//
// Its configuration comes from the environment, as the other examples
// read it: TIPKIT_ISSUER, TIPKIT_AUDIENCE, TIPKIT_APPLICATION_ARN,
// TIPKIT_ACCESS_ROLE_ARN, optionally TIPKIT_APPLICATION_ROLE_ARN, and
// AWS_REGION (which Lambda sets), plus TIPKIT_TABLE, the table of the
// sessions, and TIPKIT_ENCRYPTION_KEY, the base64 of the 32-byte key that
// seals them (in production, decrypt a KMS data key instead: see package
// dynamostore). Building the middleware and the store makes no network
// call, so a cold start costs no round trip before the first event: the
// identity provider's keys are fetched, and the table read, on the first
// request.
//
// Lambda freezes an instance between invocations: nothing runs while it
// is frozen, so the middleware checks each user's credentials for expiry
// on the request path, and its background renewal only saves a request
// the wait. With an application role, the access role's sessions are
// role chaining, which caps them at one hour.
//
// With -selftest it needs no AWS: it starts tiptest (a local identity
// provider, IAM Identity Center and STS) and dynalite (a DynamoDB engine;
// see package dynamotest, or -dynamodb for another endpoint), builds three
// instances sharing one table, invokes them in-process with API Gateway
// v2 events for two users, then starts a fourth instance cold, and exits 0
// only when every answer was the caller's own and the fleet exchanged each
// user's token once.
//
// Build it for Lambda's provided.al2023 runtime (see template.yaml):
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./examples/lambda
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/examples/internal/demo"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
)

// The environment variables of the function beside those of every example
// (demo.EnvIssuer and the others).
const (
	EnvTable         = "TIPKIT_TABLE"          // the DynamoDB table of the sessions
	EnvEncryptionKey = "TIPKIT_ENCRYPTION_KEY" // base64 of the 32-byte key that seals the sessions
)

func main() {
	selftest := flag.Bool("selftest", false, "run locally (tiptest and dynalite), invoke three instances and a cold one, and exit 0 only if every check held")
	endpoint := flag.String("dynamodb", "", "with -selftest: the URL of a DynamoDB endpoint to use instead of starting dynalite")
	timeout := flag.Duration("timeout", 2*time.Minute, "with -selftest: the longest the self-test may take")
	flag.Parse()

	if *selftest {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		err := selfTest(ctx, os.Stdout, *endpoint)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "lambda: self-test FAILED: %v\n", err)
			os.Exit(demo.ExitFailed)
		}
		return
	}

	// The initialisation phase: configuration, clients, store and
	// middleware, with no network call.
	ctx := context.Background()
	mw, err := fromEnv(ctx, os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lambda: %v\n", err)
		os.Exit(demo.ExitUsage)
	}
	lambda.Start(httpadapter.NewV2(newHandler(mw)).ProxyWithContext)
}

// settings is the function's configuration: that of every example, the
// table of the sessions and the key that seals them.
type settings struct {
	demo.Settings
	Table        string
	Key          []byte
	StoreTimeout time.Duration // bounds each call of the store to DynamoDB; 0 is dynamostore's default (1 s)
}

// settingsFromEnv reads the function's settings through getenv
// (os.Getenv).
func settingsFromEnv(getenv func(string) string) (settings, error) {
	s, err := demo.SettingsFromEnv(getenv)
	if errors.Is(err, demo.ErrNoSettings) {
		return settings{}, fmt.Errorf("%w; the function needs:\n%s  %s  the DynamoDB table of the sessions\n  %s  base64 of the 32-byte key that seals them",
			err, demo.EnvHelp(false), EnvTable, EnvEncryptionKey)
	}
	if err != nil {
		return settings{}, err
	}
	out := settings{Settings: s, Table: strings.TrimSpace(getenv(EnvTable))}
	if out.Table == "" {
		return settings{}, fmt.Errorf("%s is not set: the DynamoDB table of the sessions", EnvTable)
	}
	out.Key, err = base64.StdEncoding.DecodeString(strings.TrimSpace(getenv(EnvEncryptionKey)))
	if err != nil || len(out.Key) != 32 {
		// Neither the value nor the decoder's error, which may quote it.
		return settings{}, fmt.Errorf("%s must be the base64 of 32 bytes", EnvEncryptionKey)
	}
	return out, nil
}

// fromEnv builds the function's middleware, and its store, from the
// environment read through getenv.
func fromEnv(ctx context.Context, getenv func(string) string) (*middleware.Middleware, error) {
	s, err := settingsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(s.Region))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	ddb := dynamodb.NewFromConfig(cfg) // the store makes its calls with its own retry rule
	return newMiddleware(ctx, s, cfg, ddb)
}

// newMiddleware builds an instance's middleware from s, with cfg for its
// AWS calls and a dynamostore.Store on ddb as the store of its sessions.
// It makes no network call.
func newMiddleware(ctx context.Context, s settings, cfg aws.Config, ddb *dynamodb.Client) (*middleware.Middleware, error) {
	store, err := dynamostore.New(ddb, dynamostore.Options{Table: s.Table, EncryptionKeys: [][]byte{s.Key}, Timeout: s.StoreTimeout})
	if err != nil {
		return nil, err
	}
	x := exchange.Options{
		ApplicationArn:     s.ApplicationArn,
		AccessRoleArn:      s.AccessRoleArn,
		ApplicationRoleArn: s.ApplicationRoleArn,
		Config:             cfg,
	}
	if s.ApplicationRoleArn == "" {
		// The function's own role signs the exchange.
		x.SSOOIDCClient = ssooidc.NewFromConfig(cfg)
		x.STSClient = sts.NewFromConfig(cfg)
	}
	return middleware.New(ctx, middleware.Options{
		Issuer:    s.Issuer,
		Audience:  s.Audience,
		Exchange:  x,
		AWSConfig: cfg,
		Cache:     exchange.CacheOptions{Store: store},
		Realm:     "lambda",
	})
}

// newHandler routes the function's API behind mw. Nothing in it is about
// Lambda.
func newHandler(mw *middleware.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", whoAmI)
	return mw.Handler(mux)
}

// identity is the answer of GET /whoami: the role session STS reports for
// the caller's credentials, and their access key id (no secret: it names
// the credentials, and lets the self-test ask tiptest whose they are).
type identity struct {
	Arn         string `json:"arn"`
	UserID      string `json:"user_id"`
	Account     string `json:"account"`
	AccessKeyID string `json:"access_key_id"`
}

// whoAmI calls STS GetCallerIdentity with the caller's aws.Config from the
// request context.
func whoAmI(w http.ResponseWriter, r *http.Request) {
	cfg, ok := ctxcreds.Config(r.Context())
	if !ok {
		writeJSON(w, http.StatusInternalServerError, demo.NoConfig)
		return
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		writeJSON(w, http.StatusBadGateway, demo.Problem{Error: "sts_error", Description: "STS GetCallerIdentity failed for the signed-in user"})
		return
	}
	creds, err := cfg.Credentials.Retrieve(r.Context())
	if err != nil {
		writeJSON(w, http.StatusBadGateway, demo.Problem{Error: "no_credentials", Description: "the signed-in user's credentials could not be read"})
		return
	}
	writeJSON(w, http.StatusOK, identity{
		Arn:         aws.ToString(out.Arn),
		UserID:      aws.ToString(out.UserId),
		Account:     aws.ToString(out.Account),
		AccessKeyID: creds.AccessKeyID,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
