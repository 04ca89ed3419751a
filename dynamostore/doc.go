// Package dynamostore implements [exchange.Store] on a DynamoDB table, so
// that the replicas of a service (containers, Lambda functions) share
// their users' sessions, exchange each user's token once, and renew each
// user once.
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	if err != nil {
//		return err
//	}
//	client := dynamodb.NewFromConfig(cfg)
//	store, err := dynamostore.New(client, dynamostore.Options{
//		Table:          "tipkit-sessions",
//		EncryptionKeys: [][]byte{key}, // 32 bytes, see "Keys from KMS"
//		NameKey:        nameKey,       // 32 more
//	})
//	if err != nil {
//		return err
//	}
//	if err := store.Check(ctx); err != nil { // endpoint, table, credentials, permissions
//		return err
//	}
//	// Every replica's middleware, otherwise configured as for one replica:
//	//	middleware.Options{..., Cache: exchange.CacheOptions{Store: store}}
//
// # The table
//
// One table, which several applications may share (each with its own
// [Options.Prefix] or its own keys): a partition key pk of type string,
// no sort key, on-demand billing, and time to live on the attribute exp.
// [CreateTable] makes it; so does this CloudFormation resource:
//
//	TipkitSessions:
//	  Type: AWS::DynamoDB::Table
//	  Properties:
//	    TableName: tipkit-sessions
//	    BillingMode: PAY_PER_REQUEST
//	    AttributeDefinitions:
//	      - AttributeName: pk
//	        AttributeType: S
//	    KeySchema:
//	      - AttributeName: pk
//	        KeyType: HASH
//	    TimeToLiveSpecification:
//	      AttributeName: exp
//	      Enabled: true
//	    SSESpecification:
//	      SSEEnabled: true
//
// Each item is one of a user's entries. Its attributes are:
//
//   - pk (S): the item's name, <prefix>:<namespace>:{<user>}:<kind>, where
//     <prefix> is [Options.Prefix], <namespace> a keyed hash of
//     [exchange.StoreKey.Namespace] (HMAC-SHA256 under the name key, 8
//     bytes in hex) and <user> a keyed hash of the namespace, the issuer
//     and the subject (16 bytes in hex). The kind is s for the session, l
//     for the lease, and t:<token> for the mark of a token already
//     exchanged, <token> a keyed hash (16 bytes in hex) of
//     [exchange.TokenID].
//   - v (B), on a session: the session, sealed (below).
//   - h (S), on a lease or a mark: the holder's value, given to Acquire or
//     ClaimToken (the Cache's are random).
//   - exp (N): the Unix time, in seconds and rounded up, after which the
//     item is absent ([AttrExpiry]).
//
// Neither a name nor an attribute shows a user, an issuer, an ARN or a
// token, nor any of the session's secrets.
//
// DynamoDB deletes items past their time to live lazily (typically within
// days), and some engines never: the store reads an item at or past its
// exp as absent, in every read and every condition. Load reads with
// strong consistency. Acquire and ClaimToken put their item on the
// condition
//
//	attribute_not_exists(pk) OR exp <= :now OR h = :me
//
// so that they report true when the item was absent, expired, or already
// held with the same value (a call whose answer was lost); Release and
// ReleaseToken delete it on the condition h = :me.
//
// # Sealing
//
// A session is sealed as package redisstore seals it: encoded as JSON and
// sealed with AES-256-GCM under [Options.EncryptionKeys][0], as
//
//	version (1 byte, 1) | key ID (4 bytes) | nonce (12 random bytes) | ciphertext and tag
//
// with the version, the key ID and the item's pk as associated data, so
// that a value copied to another item (another user's, another
// namespace's) fails to open. A value that fails to open, of another
// type, or longer than [MaxSealedSize], is absent: Load returns no
// session and counts it in [Stats].Rejected. The session opened must also
// name the item's issuer and subject, or it is rejected too. Every key of
// EncryptionKeys opens and the first seals, so keys rotate as with
// redisstore: add the new key second everywhere, then make it first, and
// remove the old one once its sessions have expired. Set [Options.NameKey]
// to keep names stable across a rotation.
//
// # Keys from KMS
//
// Keep the keys out of the environment: generate a data key once,
//
//	aws kms generate-data-key --key-id alias/tipkit --key-spec AES_256 \
//	  --query CiphertextBlob --output text > sessions-key.b64
//
// store the encrypted key (CiphertextBlob) in the service's configuration,
// and decrypt it once at start, with kms:Decrypt on that KMS key:
//
//	blob, err := base64.StdEncoding.DecodeString(os.Getenv("TIPKIT_STORE_KEY_ENCRYPTED"))
//	if err != nil {
//		return err
//	}
//	out, err := kms.NewFromConfig(cfg).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
//	if err != nil {
//		return err
//	}
//	key := out.Plaintext // 32 bytes: EncryptionKeys[0]
//
// A name key is made the same way. Every replica decrypts the same blobs,
// and so shares the same keys.
//
// # Permissions
//
// The store calls GetItem, PutItem and DeleteItem, and Check calls
// DescribeTable, on its table only:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Effect": "Allow",
//	    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable"],
//	    "Resource": "arn:aws:dynamodb:REGION:ACCOUNT:table/tipkit-sessions"
//	  }]
//	}
//
// CreateTable needs dynamodb:CreateTable, DescribeTimeToLive and
// UpdateTimeToLive besides; a deployment tool usually makes the table
// instead.
//
// # Timeouts and failures
//
// Each method is bounded by [Options.Timeout], retries included, and
// makes its call with a retry rule of its own, whatever the client's
// retryer: a call whose connection was reset under it ("use of closed
// network connection", aws-sdk-go-v2 #2737) is made once more, and nothing
// else is retried. A failure (throttling, a timeout, an endpoint that
// refuses connections, refused credentials) is returned at once as an
// error wrapping the SDK's, never holding a secret, and counted in
// [Stats].Errors; the [exchange.Cache] then works alone for that flight,
// and users are served all the same. The SDK's own retryer would retry
// throttling and refused connections with pauses, and a table that cannot
// be reached would cost every new user the whole Timeout. The client's
// retry settings still apply to [Store.Check] and [CreateTable].
//
// New does not contact DynamoDB: call [Store.Check] at start, which tells
// a wrong endpoint or region, a missing table or one of another key
// schema, refused credentials, or a missing permission.
//
// A lease is not fenced: a holder paused beyond the lease's ttl may still
// save after another replica took the lease, and the last save wins. Either
// save is stored under its own user's name and sealed for it, so two
// holders at once never cross users.
package dynamostore
