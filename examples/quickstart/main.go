// Command quickstart runs tipkit end to end on this machine, with no AWS
// account: it starts tiptest (a local identity provider, IAM Identity Center
// and STS), serves a handler behind the tipkit middleware on a loopback
// port, and sends it a burst of concurrent requests as several users. The
// handler calls STS GetCallerIdentity with the caller's aws.Config from
// ctxcreds.Config. Then it shows three refusals: a tampered token (401), a
// user Identity Center does not know (403) and AWS throttling (503).
//
// It prints what happened and exits 0 only when every check held.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

var (
	users           = []string{"alice", "bob", "carol", "dave"}
	requestsPerUser = 25
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart: FAILED:", err)
		os.Exit(1)
	}
}

// answer is what the handler returns: the access key it used and the role
// session STS reported for it.
type answer struct {
	AccessKey string `json:"access_key"`
	Arn       string `json:"arn"`
}

// whoAmI is the application's handler: nothing in it is about identity
// beyond reading the caller's configuration from the context.
func whoAmI(w http.ResponseWriter, r *http.Request) {
	cfg, ok := ctxcreds.Config(r.Context())
	if !ok {
		http.Error(w, "no AWS configuration", http.StatusInternalServerError)
		return
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		http.Error(w, "STS: "+err.Error(), http.StatusBadGateway)
		return
	}
	creds, _ := cfg.Credentials.Retrieve(r.Context())
	_ = json.NewEncoder(w).Encode(answer{AccessKey: creds.AccessKeyID, Arn: aws.ToString(out.Arn)})
}

func run(ctx context.Context, w io.Writer) error {
	env, err := tiptest.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()

	// The server needs no AWS keys: the application role, assumed with the
	// users' tokens, signs the exchange.
	base := env.Config()
	base.Credentials = nil
	mw, err := middleware.New(ctx, middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
			MaxAttempts:        2,
		},
		AWSConfig: base,
		Realm:     "quickstart",
	})
	if err != nil {
		return err
	}
	defer mw.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mw.Handler(http.HandlerFunc(whoAmI))}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/whoami"
	fmt.Fprintf(w, "identity provider %s\nlocal AWS         %s\nserver            %s\n\n", env.IdP.Issuer(), env.AWS.URL(), url)

	if err := burst(ctx, w, env, url); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return refusals(ctx, w, env, url)
}

// burst sends requestsPerUser concurrent requests for each user, each user
// with one token, and checks that every answer used that user's
// credentials and that each user cost exactly one exchange.
func burst(ctx context.Context, w io.Writer, env *tiptest.Env, url string) error {
	type tally struct {
		requests int
		keys     map[string]bool
		owners   map[string]bool
	}
	var mu sync.Mutex
	tallies := map[string]*tally{} // filled before any request starts: read concurrently below
	for _, user := range users {
		tallies[user] = &tally{keys: map[string]bool{}, owners: map[string]bool{}}
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(users)*requestsPerUser)
	for _, user := range users {
		token := env.IdP.Token(user)
		for range requestsPerUser {
			wg.Go(func() {
				status, body, err := call(ctx, url, token)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("%s: status %d: %s", user, status, body)
				}
				if err != nil {
					errc <- err
					return
				}
				var a answer
				if err := json.Unmarshal([]byte(body), &a); err != nil {
					errc <- err
					return
				}
				owner, _ := env.AWS.UserFor(a.AccessKey)
				mu.Lock()
				t := tallies[user]
				t.requests++
				t.keys[a.AccessKey] = true
				t.owners[owner] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "USER\tREQUESTS\tEXCHANGES\tCREDENTIALS USED BELONG TO\n")
	for _, user := range users {
		t := tallies[user]
		owners := keysOf(t.owners)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", user, t.requests, len(t.keys), strings.Join(owners, ", "))
		if len(owners) != 1 || owners[0] != user {
			return fmt.Errorf("%s's requests used credentials of %v", user, owners)
		}
		if len(t.keys) != 1 {
			return fmt.Errorf("%s cost %d exchanges, want 1", user, len(t.keys))
		}
	}
	tw.Flush()
	created, assumed := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole")
	fmt.Fprintf(w, "AWS saw %d CreateTokenWithIAM, %d AssumeRole and %d AssumeRoleWithWebIdentity calls for %d requests\n",
		created, assumed, env.AWS.Calls("AssumeRoleWithWebIdentity"), len(users)*requestsPerUser)
	if created != len(users) || assumed != len(users) {
		return fmt.Errorf("%d exchanges for %d users", created, len(users))
	}
	return nil
}

// refusals shows the answers to a tampered token, an unknown user and AWS
// throttling.
func refusals(ctx context.Context, w io.Writer, env *tiptest.Env, url string) error {
	good := env.IdP.Token("erin")
	tampered := good[:len(good)-4] + flip(good[len(good)-4:])
	env.AWS.RemoveUser("mallory")
	cases := []struct {
		name   string
		token  string
		setup  func()
		status int
	}{
		{"tampered token", tampered, func() {}, http.StatusUnauthorized},
		{"user unknown to IAM Identity Center", env.IdP.Token("mallory"), func() {}, http.StatusForbidden},
		{"AWS throttling", env.IdP.Token("frank"), func() {
			env.AWS.SetFault("AssumeRole", tiptest.Fault{Code: "Throttling"})
		}, http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		c.setup()
		status, h, body, err := callHeaders(ctx, url, c.token)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s -> %d\n  body: %s\n", c.name, status, strings.TrimSpace(body))
		for _, name := range []string{"WWW-Authenticate", "Retry-After"} {
			if v := h.Get(name); v != "" {
				fmt.Fprintf(w, "  %s: %s\n", name, v)
			}
		}
		if status != c.status {
			return fmt.Errorf("%s: status %d, want %d", c.name, status, c.status)
		}
		if strings.Contains(body, c.token) {
			return errors.New("an answer echoed the token")
		}
	}
	fmt.Fprintln(w, "\nOK: every request ran with its own user's credentials, one exchange per user")
	return nil
}

// call GETs url with token and returns the status and body.
func call(ctx context.Context, url, token string) (int, string, error) {
	status, _, body, err := callHeaders(ctx, url, token)
	return status, body, err
}

// callHeaders is call that also returns the response headers.
func callHeaders(ctx context.Context, url, token string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body), err
}

// flip changes every character of s, keeping it base64url.
func flip(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
