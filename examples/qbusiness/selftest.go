package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/qbusiness"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// selfTest serves POST /chat behind the middleware on a loopback port,
// against tiptest and a stand-in for Amazon Q Business whose ChatSync
// answers with the user of the credentials it was called with, sends it
// the requests of two users and a few bad ones, prints a line per request,
// and returns an error naming every answer that was not the expected one.
func selfTest(ctx context.Context, stdout io.Writer) error {
	env, err := tiptest.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	mw, err := middleware.New(ctx, middlewaretest.Options(env))
	if err != nil {
		return err
	}
	defer mw.Close()
	h := chat{applicationID: "selftest", newClient: func(cfg aws.Config) chatSyncer { return standIn{env: env, cfg: cfg} }}
	mux := http.NewServeMux()
	mux.Handle("POST /chat", h)
	srv := httptest.NewServer(mw.Handler(mux))
	defer srv.Close()
	fmt.Fprintln(stdout, "qbusiness self-test: tiptest for the identity provider, IAM Identity Center and STS; ChatSync stood in for, answering with the user whose credentials called it")

	checks := []struct {
		name, token, contentType, body string
		status                         int
		answer                         string // the answer's expected text, for 200
	}{
		{"alice asks", env.IdP.Token("alice"), "application/json", `{"message":"What is our travel policy?"}`, http.StatusOK, "alice asked: What is our travel policy?"},
		{"bob asks", env.IdP.Token("bob"), "application/json", `{"message":"And mine?"}`, http.StatusOK, "bob asked: And mine?"},
		{"no token", "", "application/json", `{"message":"hi"}`, http.StatusUnauthorized, ""},
		{"a tampered token", env.IdP.Token("alice") + "x", "application/json", `{"message":"hi"}`, http.StatusUnauthorized, ""},
		{"not JSON", env.IdP.Token("alice"), "text/plain", `hi`, http.StatusUnsupportedMediaType, ""},
	}
	var failed []string
	for _, c := range checks {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/chat", strings.NewReader(c.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", c.contentType)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		got := ""
		if resp.StatusCode == http.StatusOK {
			var a chatAnswer
			if err := json.Unmarshal(body, &a); err == nil {
				got = a.Answer
			}
		}
		ok := resp.StatusCode == c.status && got == c.answer
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, fmt.Sprintf("%s: %d %q, want %d %q", c.name, resp.StatusCode, got, c.status, c.answer))
		}
		fmt.Fprintf(stdout, "%s %-18s %d %s\n", mark, c.name, resp.StatusCode, bytes.TrimSpace(body))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// standIn is the self-test's Amazon Q Business: ChatSync answers with the
// user whose identity-enhanced credentials called it, as tiptest knows it.
type standIn struct {
	env *tiptest.Env
	cfg aws.Config
}

func (s standIn) ChatSync(ctx context.Context, in *qbusiness.ChatSyncInput, _ ...func(*qbusiness.Options)) (*qbusiness.ChatSyncOutput, error) {
	creds, err := s.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	user, ok := s.env.AWS.UserFor(creds.AccessKeyID)
	if !ok {
		return nil, errors.New("ChatSync was not called with a user's identity-enhanced credentials")
	}
	return &qbusiness.ChatSyncOutput{
		ConversationId:  aws.String("selftest-conversation"),
		SystemMessageId: aws.String("selftest-message"),
		SystemMessage:   aws.String(user + " asked: " + aws.ToString(in.UserMessage)),
	}, nil
}
