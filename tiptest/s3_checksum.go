package tiptest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// crc64NVMEPoly is the CRC-64/NVME polynomial, bit-reversed as
// crc64.MakeTable wants it.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)

// s3ChecksumHeader is the prefix of the x-amz-checksum-ALGORITHM headers.
const s3ChecksumHeader = "X-Amz-Checksum-"

// s3ChecksumNotAValue are the x-amz-checksum- headers that hold no
// checksum.
var s3ChecksumNotAValue = map[string]bool{
	s3ChecksumHeader + "Mode":      true,
	s3ChecksumHeader + "Type":      true,
	s3ChecksumHeader + "Algorithm": true,
}

// s3Checksum is the full-object checksum of an object: its algorithm
// ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", ...) and its base64
// value.
type s3Checksum struct {
	algorithm string
	value     string
}

// s3ChecksumAlgorithms gives the hash of each checksum algorithm the local
// S3 verifies.
var s3ChecksumAlgorithms = map[string]func() hash.Hash{
	"CRC32":     func() hash.Hash { return crc32.NewIEEE() },
	"CRC32C":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"CRC64NVME": func() hash.Hash { return crc64.New(crc64NVMETable) },
	"SHA1":      sha1.New,
	"SHA256":    sha256.New,
	"SHA512":    sha512.New,
	"MD5":       md5.New,
}

// computeS3Checksum returns the base64 checksum of body with algorithm,
// which must be a key of s3ChecksumAlgorithms.
func computeS3Checksum(algorithm string, body []byte) string {
	h := s3ChecksumAlgorithms[algorithm]()
	h.Write(body)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// checkS3Digests verifies the Content-MD5 header and the one
// x-amz-checksum-ALGORITHM header a PutObject may carry, and returns the
// checksum to store with the object (none when the writer sent none).
func checkS3Digests(r *http.Request, body []byte) (s3Checksum, *apiError) {
	if md5Header := r.Header.Get("Content-Md5"); md5Header != "" {
		raw, err := base64.StdEncoding.DecodeString(md5Header)
		if err != nil || len(raw) != md5.Size {
			return s3Checksum{}, s3Err("InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		if computeS3Checksum("MD5", body) != md5Header {
			return s3Checksum{}, s3Err("BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	}
	var names []string
	for name := range r.Header {
		if strings.HasPrefix(name, s3ChecksumHeader) && !s3ChecksumNotAValue[name] {
			names = append(names, name)
		}
	}
	switch len(names) {
	case 0:
		return s3Checksum{}, nil
	case 1:
	default:
		return s3Checksum{}, s3Err("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}
	algorithm := strings.ToUpper(strings.TrimPrefix(names[0], s3ChecksumHeader))
	if _, ok := s3ChecksumAlgorithms[algorithm]; !ok || algorithm == "MD5" {
		return s3Checksum{}, s3Err("InvalidRequest", "The algorithm type you specified in x-amz-checksum- header is invalid.")
	}
	if sdk := r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"); sdk != "" && !strings.EqualFold(sdk, algorithm) {
		return s3Checksum{}, s3Err("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
	}
	sent := r.Header.Get(names[0])
	if computeS3Checksum(algorithm, body) != sent {
		return s3Checksum{}, s3Err("BadDigest", "The "+algorithm+" you specified did not match the calculated checksum.")
	}
	return s3Checksum{algorithm: algorithm, value: sent}, nil
}
