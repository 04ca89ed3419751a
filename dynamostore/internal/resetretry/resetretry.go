// Package resetretry is the retry rule of dynamostore's calls, and of
// dynamotest's client: a call whose connection was reset under it is made
// once more, and nothing else is retried.
package resetretry

import (
	"errors"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// New returns a retryer that makes a call once more when its connection
// was reset under it ("connection reset", "use of closed network
// connection": the same TCP reset, read at different times; the SDK's
// own retryer retries it too, aws-sdk-go-v2 #2737), and retries nothing
// else: a refused connection, throttling and a timeout fail at once.
func New() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 2
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(reset)}
	})
}

func reset(err error) aws.Ternary {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return aws.FalseTernary
	}
	msg := err.Error()
	return aws.BoolTernary(strings.Contains(msg, "connection reset") || strings.Contains(msg, "use of closed network connection"))
}
