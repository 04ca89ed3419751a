package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/qbusiness"
	"github.com/aws/aws-sdk-go-v2/service/qbusiness/types"

	"github.com/tipkit/tipkit/ctxcreds"
)

func chatRequestOf(contentType, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/chat", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestParseChat(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        chatRequest
		wantErr     error
	}{
		{"first message", "application/json", `{"message":"  What is our travel policy? "}`,
			chatRequest{Message: "What is our travel policy?"}, nil},
		{"follow-up", "application/json; charset=utf-8", `{"message":"And for Europe?","conversation_id":"c1","parent_message_id":"m1"}`,
			chatRequest{Message: "And for Europe?", ConversationID: "c1", ParentMessageID: "m1"}, nil},
		{"no content type", "", `{"message":"hi"}`, chatRequest{}, errContentType},
		{"form body", "application/x-www-form-urlencoded", `message=hi`, chatRequest{}, errContentType},
		{"empty message", "application/json", `{"message":"   "}`, chatRequest{}, errBadRequest},
		{"no message", "application/json", `{}`, chatRequest{}, errBadRequest},
		{"unknown field", "application/json", `{"message":"hi","user_id":"bob"}`, chatRequest{}, errBadRequest},
		{"two values", "application/json", `{"message":"hi"} {"message":"again"}`, chatRequest{}, errBadRequest},
		{"not JSON", "application/json", `hello`, chatRequest{}, errBadRequest},
		{"parent without conversation", "application/json", `{"message":"hi","parent_message_id":"m1"}`, chatRequest{}, errBadRequest},
		{"too large", "application/json", `{"message":"` + strings.Repeat("a", maxChatBody) + `"}`, chatRequest{}, errBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChat(chatRequestOf(tt.contentType, tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeQ records the ChatSync input and the credentials it was called with.
type fakeQ struct {
	creds aws.CredentialsProvider
	in    *qbusiness.ChatSyncInput
	err   error
}

func (f *fakeQ) ChatSync(_ context.Context, in *qbusiness.ChatSyncInput, _ ...func(*qbusiness.Options)) (*qbusiness.ChatSyncOutput, error) {
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	return &qbusiness.ChatSyncOutput{
		ConversationId:  aws.String("conv-1"),
		SystemMessageId: aws.String("msg-2"),
		SystemMessage:   aws.String("Book through the travel portal."),
		SourceAttributions: []*types.SourceAttribution{
			{Title: aws.String("Travel policy"), Url: aws.String("https://intranet.example.com/travel")},
		},
	}, nil
}

func TestChatCallsChatSyncWithTheCallersConfig(t *testing.T) {
	q := &fakeQ{}
	h := chat{applicationID: "app-1", newClient: func(cfg aws.Config) chatSyncer {
		q.creds = cfg.Credentials
		return q
	}}
	userCreds := credentials.NewStaticCredentialsProvider("AKIDALICE", "secret", "session")
	r := chatRequestOf("application/json", `{"message":"What is our travel policy?","conversation_id":"conv-1","parent_message_id":"msg-1"}`)
	r = r.WithContext(ctxcreds.WithConfig(r.Context(), &aws.Config{Region: "us-east-1", Credentials: userCreds}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got, err := q.creds.Retrieve(context.Background())
	if err != nil || got.AccessKeyID != "AKIDALICE" {
		t.Fatalf("ChatSync was not called with the caller's credentials (%q, %v)", got.AccessKeyID, err)
	}
	if aws.ToString(q.in.ApplicationId) != "app-1" || aws.ToString(q.in.UserMessage) != "What is our travel policy?" ||
		aws.ToString(q.in.ConversationId) != "conv-1" || aws.ToString(q.in.ParentMessageId) != "msg-1" {
		t.Fatalf("ChatSync input %+v", q.in)
	}
	if q.in.UserId != nil || q.in.UserGroups != nil {
		t.Fatal("the user must come from the credentials, not from UserId or UserGroups")
	}
	var answer chatAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		t.Fatal(err)
	}
	want := chatAnswer{ConversationID: "conv-1", MessageID: "msg-2", Answer: "Book through the travel portal.",
		Sources: []source{{Title: "Travel policy", URL: "https://intranet.example.com/travel"}}}
	if answer.ConversationID != want.ConversationID || answer.MessageID != want.MessageID || answer.Answer != want.Answer ||
		len(answer.Sources) != 1 || answer.Sources[0] != want.Sources[0] {
		t.Fatalf("answer %+v, want %+v", answer, want)
	}
}

func TestChatAnswers(t *testing.T) {
	withConfig := func(r *http.Request) *http.Request {
		return r.WithContext(ctxcreds.WithConfig(r.Context(), &aws.Config{Region: "us-east-1"}))
	}
	tests := []struct {
		name   string
		req    *http.Request
		err    error
		status int
	}{
		{"bad body", withConfig(chatRequestOf("application/json", `{}`)), nil, http.StatusBadRequest},
		{"wrong content type", withConfig(chatRequestOf("text/plain", `hi`)), nil, http.StatusUnsupportedMediaType},
		{"no configuration", chatRequestOf("application/json", `{"message":"hi"}`), nil, http.StatusInternalServerError},
		{"refused", withConfig(chatRequestOf("application/json", `{"message":"hi"}`)),
			&types.AccessDeniedException{Message: aws.String("no")}, http.StatusForbidden},
		{"throttled", withConfig(chatRequestOf("application/json", `{"message":"hi"}`)),
			&types.ThrottlingException{Message: aws.String("slow")}, http.StatusTooManyRequests},
		{"unreachable", withConfig(chatRequestOf("application/json", `{"message":"hi"}`)),
			errors.New("dial tcp: connection refused"), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := chat{applicationID: "app-1", newClient: func(aws.Config) chatSyncer { return &fakeQ{err: tt.err} }}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			var p struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Error == "" {
				t.Fatalf("body %q is not a JSON error", w.Body)
			}
		})
	}
}

func TestRunNeedsTheEnvironment(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"nothing set":         {},
		"no application id":   {"TIPKIT_ISSUER": "https://idp.example.com", "TIPKIT_AUDIENCE": "app", "TIPKIT_APPLICATION_ARN": "arn:aws:sso::111122223333:application/ssoins-1/apl-1", "TIPKIT_ACCESS_ROLE_ARN": "arn:aws:iam::111122223333:role/Access", "AWS_REGION": "us-east-1"},
		"incomplete TIPKIT_*": {"TIPKIT_ISSUER": "https://idp.example.com", envApplicationID: "app-1"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2", code)
			}
			for _, v := range []string{"TIPKIT_ISSUER", "TIPKIT_APPLICATION_ARN", "AWS_REGION", envApplicationID} {
				if !strings.Contains(stderr.String(), v) {
					t.Errorf("the message does not name %s:\n%s", v, stderr.String())
				}
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"-h"}, 0, "-selftest"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-selftest"}, 0, "alice asked: What is our travel policy?"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, noEnv, &stdout, &stderr); code != tt.code {
			t.Errorf("%v: exit code %d, want %d\n%s%s", tt.args, code, tt.code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String()+stderr.String(), tt.out) {
			t.Errorf("%v: the output does not hold %q:\n%s%s", tt.args, tt.out, stdout.String(), stderr.String())
		}
	}
}
