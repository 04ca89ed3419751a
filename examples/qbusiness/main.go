// Command qbusiness is a chat endpoint that asks Amazon Q Business as the
// user who calls it: tipkit's middleware verifies the user's token and
// trades it for identity-enhanced credentials, and the handler calls
// ChatSync with them, so Q Business answers from the documents that user
// may read, and keeps the conversation in that user's history.
//
//	POST /chat   {"message": "...", "conversation_id": "...", "parent_message_id": "..."}
//
// The first message of a conversation sends only "message"; the answer
// carries the conversation_id and the message_id to send as
// parent_message_id with the next message.
//
// It serves against real AWS only: it needs the TIPKIT_ variables (see the
// README) and QBUSINESS_APPLICATION_ID, and says what is missing and exits
// 2 without them. There is no local Amazon Q Business: -selftest checks
// the rest locally (tiptest for the identity provider, IAM Identity
// Center and STS, and a stand-in for ChatSync that answers with the user
// whose credentials called it) and exits 0 only when every answer was the
// expected one, 1 otherwise.
//
//	go run ./examples/qbusiness [-selftest] [-addr host:port]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/qbusiness"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

// envApplicationID names the Amazon Q Business application.
const envApplicationID = "QBUSINESS_APPLICATION_ID"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves POST /chat until ctx is done, or with -selftest checks it
// locally. It returns demo.ExitUsage (2) for bad flags or an incomplete or
// invalid environment, demo.ExitFailed (1) when the server or the
// self-test failed, demo.ExitOK (0) otherwise.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qbusiness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	selftest := fs.Bool("selftest", false, "check locally, with a stand-in for Amazon Q Business, and exit 0 only if every answer is the expected one")
	addrFlag := fs.String("addr", "", "listen address (default $"+demo.EnvAddr+", else 127.0.0.1:8080)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./examples/qbusiness [-selftest] [-addr host:port]\n\nAgainst AWS it needs:\n%s  %s    the Amazon Q Business application id\nFlags:\n",
			demo.EnvHelp(false), envApplicationID)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return demo.ExitOK
		}
		return demo.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qbusiness: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return demo.ExitUsage
	}
	if *selftest {
		if err := selfTest(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "qbusiness: self-test FAILED: %v\n", err)
			return demo.ExitFailed
		}
		return demo.ExitOK
	}

	s, err := demo.SettingsFromEnv(getenv)
	appID := strings.TrimSpace(getenv(envApplicationID))
	if err != nil || appID == "" {
		if err == nil || errors.Is(err, demo.ErrNoSettings) {
			err = errors.New("this example runs against AWS only")
		}
		fmt.Fprintf(stderr, "qbusiness: %v\nIt needs:\n%s  %s    the Amazon Q Business application id\n",
			err, demo.EnvHelp(false), envApplicationID)
		return demo.ExitUsage
	}
	mw, err := demo.NewMiddleware(ctx, s, "qbusiness")
	if err != nil {
		fmt.Fprintf(stderr, "qbusiness: %v\n", err)
		return demo.ExitUsage
	}
	defer mw.Close()

	addr := *addrFlag
	if addr == "" {
		addr = getenv(demo.EnvAddr)
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "qbusiness: %v\n", err)
		return demo.ExitFailed
	}
	mux := http.NewServeMux()
	mux.Handle("POST /chat", chat{applicationID: appID, newClient: newClient})
	srv := &http.Server{Handler: mw.Handler(mux), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "qbusiness: serving http://%s/chat for tokens of %s\n\n", ln.Addr(), s.Issuer)
	fmt.Fprintf(stdout, "With a token of your identity provider in $TOKEN:\n  curl -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n    -d '{\"message\":\"What is our travel policy?\"}' http://%s/chat\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "qbusiness: %v\n", err)
		return demo.ExitFailed
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return demo.ExitOK
}

// chatSyncer is the one method of the Q Business client the handler calls;
// *qbusiness.Client satisfies it.
type chatSyncer interface {
	ChatSync(ctx context.Context, in *qbusiness.ChatSyncInput, optFns ...func(*qbusiness.Options)) (*qbusiness.ChatSyncOutput, error)
}

// newClient returns a Q Business client acting with cfg.
func newClient(cfg aws.Config) chatSyncer { return qbusiness.NewFromConfig(cfg) }

// chat is the handler of POST /chat.
type chat struct {
	applicationID string
	newClient     func(aws.Config) chatSyncer
}

// chatRequest is the body of POST /chat.
type chatRequest struct {
	Message         string `json:"message"`
	ConversationID  string `json:"conversation_id,omitempty"`
	ParentMessageID string `json:"parent_message_id,omitempty"`
}

// chatAnswer is the answer of POST /chat.
type chatAnswer struct {
	ConversationID string   `json:"conversation_id"`
	MessageID      string   `json:"message_id"`
	Answer         string   `json:"answer"`
	Sources        []source `json:"sources,omitempty"`
}

// source is a document Q Business cited.
type source struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url,omitempty"`
}

// maxChatBody is the largest body POST /chat reads.
const maxChatBody = 64 << 10

// errBadRequest marks the errors of parseChat, all answered 400 (415 for a
// wrong content type).
var (
	errBadRequest  = errors.New("bad request")
	errContentType = errors.New("the body must be application/json")
)

// parseChat reads and checks the body of a POST /chat request.
func parseChat(r *http.Request) (chatRequest, error) {
	var req chatRequest
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return req, errContentType
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxChatBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: the body is not a chat request: %v", errBadRequest, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: the body holds more than one JSON value", errBadRequest)
	}
	if dec.InputOffset() > maxChatBody {
		return req, fmt.Errorf("%w: the body is larger than %d bytes", errBadRequest, maxChatBody)
	}
	req.Message = strings.TrimSpace(req.Message)
	if req.Message == "" {
		return req, fmt.Errorf("%w: message is required", errBadRequest)
	}
	if req.ParentMessageID != "" && req.ConversationID == "" {
		return req, fmt.Errorf("%w: parent_message_id needs conversation_id", errBadRequest)
	}
	return req, nil
}

func (h chat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parseChat(r)
	switch {
	case errors.Is(err, errContentType):
		writeJSON(w, http.StatusUnsupportedMediaType, demo.Problem{Error: "invalid_request", Description: err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, demo.Problem{Error: "invalid_request", Description: strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")})
		return
	}
	cfg, ok := ctxcreds.Config(r.Context())
	if !ok {
		writeJSON(w, http.StatusInternalServerError, demo.NoConfig)
		return
	}
	in := &qbusiness.ChatSyncInput{ApplicationId: aws.String(h.applicationID), UserMessage: aws.String(req.Message)}
	if req.ConversationID != "" {
		in.ConversationId = aws.String(req.ConversationID)
	}
	if req.ParentMessageID != "" {
		in.ParentMessageId = aws.String(req.ParentMessageID)
	}
	out, err := h.newClient(cfg).ChatSync(r.Context(), in)
	if err != nil {
		status, problem := qProblem(err)
		writeJSON(w, status, problem)
		return
	}
	answer := chatAnswer{
		ConversationID: aws.ToString(out.ConversationId),
		MessageID:      aws.ToString(out.SystemMessageId),
		Answer:         aws.ToString(out.SystemMessage),
	}
	for _, s := range out.SourceAttributions {
		if s != nil {
			answer.Sources = append(answer.Sources, source{Title: aws.ToString(s.Title), URL: aws.ToString(s.Url)})
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

// qProblem maps a ChatSync error to an HTTP status and body.
func qProblem(err error) (int, demo.Problem) {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return http.StatusBadGateway, demo.Problem{Error: "upstream_error", Description: "Amazon Q Business could not be reached"}
	}
	switch code := ae.ErrorCode(); code {
	case "AccessDeniedException", "LicenseNotFoundException":
		return http.StatusForbidden, demo.Problem{Error: "access_denied", Description: "Amazon Q Business refused this user (" + code + ")"}
	case "ResourceNotFoundException":
		return http.StatusNotFound, demo.Problem{Error: "not_found", Description: "no such conversation or application"}
	case "ValidationException", "ConflictException":
		return http.StatusBadRequest, demo.Problem{Error: "invalid_request", Description: "Amazon Q Business rejected the request (" + code + ")"}
	case "ThrottlingException", "ServiceQuotaExceededException":
		return http.StatusTooManyRequests, demo.Problem{Error: "slow_down", Description: "Amazon Q Business is throttling requests"}
	default:
		return http.StatusBadGateway, demo.Problem{Error: "upstream_error", Description: "Amazon Q Business answered " + code}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
