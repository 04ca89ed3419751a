package tiptest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
)

// Alphabets of the random identifiers; their lengths divide 256, so that
// a random byte picks each character with the same probability.
const (
	idAlphabet     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"                                 // 32
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" // 64
)

// randomBytes returns n bytes of crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return b
}

// randomFrom returns n random characters of alphabet.
func randomFrom(alphabet string, n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// randomID returns n random characters as in AWS key and role ids.
func randomID(n int) string { return randomFrom(idAlphabet, n) }

// randomSecret returns a 40-character secret access key.
func randomSecret() string { return randomFrom(secretAlphabet, 40) }

// randomToken returns prefix followed by n random bytes in base64.
func randomToken(prefix string, n int) string {
	return prefix + base64.StdEncoding.EncodeToString(randomBytes(n))
}

// newRequestID returns a random UUID, the shape of AWS request ids.
func newRequestID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
