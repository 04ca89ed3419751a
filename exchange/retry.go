package exchange

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// The SDK's retryer is the one retry layer of every AWS call: the client's
// own (its backoff, its retry quota), with at most Options.MaxAttempts
// attempts per call (set through the operation's RetryMaxAttempts, which
// the SDK applies to the retryer) and IAM Identity Center's
// SlowDownException retried as the throttling it is: the SDK does not
// retry it by itself.

// retryer returns r retrying SlowDownException too; nil stays nil (a
// client that is not the SDK's may hand its option functions a zero
// Options).
func retryer(r aws.Retryer) aws.Retryer {
	if r == nil {
		return nil
	}
	return retry.AddWithErrorCodes(r, "SlowDownException")
}
