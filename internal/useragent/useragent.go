// Package useragent tags the AWS calls tipkit makes, in the form the
// official trusted identity propagation plugins use (p/aws-tip#VERSION).
package useragent

import (
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Version is tipkit's version, sent in the user agent of every AWS call
// tipkit makes.
const Version = "0.2.0"

// Key is the user agent entry tipkit adds to its AWS calls.
const Key = "p/tipkit#" + Version

// Add is the API option that tags a call with Key.
var Add func(*middleware.Stack) error = awsmiddleware.AddUserAgentKeyValue("p", "tipkit#"+Version)
