package accessgrants

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// refuseAll, the client of an SDK that would cache one caller's
// credentials for the next, fails every operation before it is sent.
func TestRefuseAllSendsNothing(t *testing.T) {
	sent := false
	client := s3.NewFromConfig(aws.Config{Region: "us-east-1"}, refuseAll, func(o *s3.Options) {
		o.HTTPClient = clientFunc(func(*http.Request) (*http.Response, error) {
			sent = true
			return nil, errors.New("not to be sent")
		})
	})
	_, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("amzn-s3-demo-bucket"), Key: aws.String("k")})
	if !errors.Is(err, ErrUnsupported) || sent {
		t.Fatalf("%v (sent: %t), want ErrUnsupported and nothing sent", err, sent)
	}
}

type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
