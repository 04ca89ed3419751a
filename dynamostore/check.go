package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// checkTimeout bounds Check and CreateTable when their context has no
// deadline.
const checkTimeout = 10 * time.Second

// Check tells whether s can work with its table: the client reaches
// DynamoDB at its endpoint, the table exists with the key schema the
// store needs (a string partition key pk and no sort key), and the
// client's credentials allow every call the store makes (DescribeTable,
// PutItem, GetItem, DeleteItem). It writes, reads and deletes one item of
// its own, <prefix>:check:<random>, which expires within seconds if Check
// is interrupted.
//
// Call it once at start. A Store that cannot work with its table is
// otherwise silent: every call fails, each replica works alone (users are
// still served), and the fleet never shares. The error names the likely
// cause (endpoint, table, credentials, permissions) and wraps the SDK's;
// it never holds a secret. ctx bounds the whole check, 10 seconds when it
// has no deadline: Options.Timeout does not apply.
func (s *Store) Check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	if err != nil {
		return s.explain("DescribeTable", err)
	}
	if err := keySchemaError(out.Table); err != nil {
		return fmt.Errorf("dynamostore: Check: table %s: %w", s.table, err)
	}
	name := s.names.Prefix + ":check:" + randomHex()
	value := randomHex()
	steps := []struct {
		what string
		run  func() error
	}{
		{"PutItem", func() error {
			ok, err := s.putOwn(ctx, name, value, time.Now().Add(10*time.Second))
			if err == nil && !ok {
				err = errors.New("the condition of a new item failed: this engine does not evaluate conditions as DynamoDB does")
			}
			return err
		}},
		{"GetItem", func() error {
			_, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: itemKey(name), ConsistentRead: aws.Bool(true)})
			return err
		}},
		{"DeleteItem", func() error { return s.deleteOwn(ctx, name, value) }},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			return s.explain(step.what, err)
		}
	}
	return nil
}

// keySchemaError returns an error when t's key is not the store's.
func keySchemaError(t *types.TableDescription) error {
	if t == nil {
		return errors.New("DynamoDB described no table")
	}
	if len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != attrKey || t.KeySchema[0].KeyType != types.KeyTypeHash {
		return errors.New("its key schema is not the store's: a partition key named " + attrKey + " and no sort key (see CreateTable)")
	}
	for _, a := range t.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == attrKey && a.AttributeType != types.ScalarAttributeTypeS {
			return errors.New("its partition key " + attrKey + " is not of type string (S)")
		}
	}
	return nil
}

// explain wraps err, the failure of the call what of Check, with its
// likely cause.
func (s *Store) explain(what string, err error) error {
	var (
		dnsErr   *net.DNSError
		opErr    *net.OpError
		notFound *types.ResourceNotFoundException
		apiErr   smithy.APIError
	)
	cause := ""
	switch {
	case errors.As(err, &notFound):
		cause = "the table " + s.table + " does not exist at this endpoint and region (create it with CreateTable, or check Options.Table, the client's Region and BaseEndpoint)"
	case errors.As(err, &dnsErr):
		cause = "cannot resolve the endpoint's host name: check the client's Region and BaseEndpoint"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		cause = "cannot connect to the endpoint: check the client's BaseEndpoint, and that the network (a VPC endpoint, a proxy) lets this host reach DynamoDB"
	case errors.As(err, &apiErr) && strings.Contains(apiErr.ErrorCode(), "AccessDenied"):
		cause = "the credentials may not call " + what + " on the table: the store needs dynamodb:GetItem, PutItem, DeleteItem and, for Check, DescribeTable on " + s.table
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "UnrecognizedClientException" || apiErr.ErrorCode() == "InvalidSignatureException" ||
		apiErr.ErrorCode() == "MissingAuthenticationTokenException" || apiErr.ErrorCode() == "ExpiredTokenException"):
		cause = "DynamoDB refused the client's credentials (missing, expired, or of another partition)"
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "ProvisionedThroughputExceededException" || apiErr.ErrorCode() == "ThrottlingException"):
		cause = "DynamoDB throttled the call: the table's capacity is too low (on-demand billing avoids this)"
	case errors.Is(err, context.DeadlineExceeded):
		cause = "no answer from DynamoDB in time: the endpoint drops packets (a firewall, a security group, no route to DynamoDB)"
	default:
		cause = "DynamoDB refused a call the store needs"
	}
	return fmt.Errorf("dynamostore: Check: %s on table %s failed: %s: %w", what, s.table, cause, err)
}

// randomHex returns 16 random bytes in hex.
func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// CreateTable creates the table named table as the store needs it: a
// string partition key pk, on-demand billing (PAY_PER_REQUEST), and time
// to live on the expiry attribute ([AttrExpiry]) so that DynamoDB deletes
// expired items in time (the store never relies on it). It returns once
// the table is active. A table that exists already is fine (its time to
// live is enabled when it is not); an engine without a time-to-live API
// (dynalite) is fine too. ctx bounds the whole call, 10 seconds when it
// has no deadline.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	if client == nil {
		return errNoClient
	}
	if table == "" {
		return errTable
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, checkTimeout)
		defer cancel()
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: CreateTable %s: %w", table, err)
	}
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			return fmt.Errorf("dynamostore: CreateTable %s: %w", table, err)
		}
		if out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			if err := keySchemaError(out.Table); err != nil {
				return fmt.Errorf("dynamostore: CreateTable: the table %s exists: %w", table, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamostore: CreateTable %s: the table is not active: %w", table, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return enableTTL(ctx, client, table)
}

// enableTTL enables time to live on the expiry attribute of table, unless
// it is enabled, or the engine has no time-to-live API.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if noTTLAPI(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dynamostore: CreateTable %s: DescribeTimeToLive: %w", table, err)
	}
	if d := out.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrExpiry &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(AttrExpiry), Enabled: aws.Bool(true)},
	})
	if err != nil && !noTTLAPI(err) {
		return fmt.Errorf("dynamostore: CreateTable %s: UpdateTimeToLive: %w", table, err)
	}
	return nil
}

// noTTLAPI reports whether err says the engine has no time-to-live API.
func noTTLAPI(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.ErrorCode(), "UnknownOperation")
}
