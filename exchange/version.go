package exchange

import (
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Version is tipkit's version, sent in the user agent of every AWS call
// tipkit makes.
const Version = "0.1.0"

// UserAgentKey is the user agent entry tipkit adds to its AWS calls, in the
// form the official trusted identity propagation plugins use.
const UserAgentKey = "p/tipkit#" + Version

// addUserAgent is the API option that tags a call.
var addUserAgent func(*middleware.Stack) error = awsmiddleware.AddUserAgentKeyValue("p", "tipkit#"+Version)
