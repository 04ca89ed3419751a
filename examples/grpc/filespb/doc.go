// Package filespb holds the generated Go code of files.proto, the file
// service of examples/grpc: messages (files.pb.go) and the client and
// server of service Files (files_grpc.pb.go). generate.sh regenerates them
// with pinned generators.
package filespb

//go:generate sh generate.sh
