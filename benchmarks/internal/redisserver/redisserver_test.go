package redisserver

import (
	"os"
	"testing"
)

func TestStartClose(t *testing.T) {
	s := ForTest(t)
	if !ping(s.Addr()) {
		t.Fatal("no PONG")
	}
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // closing again does nothing
		t.Fatal(err)
	}
	if ping(s.Addr()) {
		t.Fatal("PONG after Close")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left behind: %v", dir, err)
	}
}
