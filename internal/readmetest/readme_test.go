package readmetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot is the directory of the module's go.mod, seen from this
// package's directory.
const moduleRoot = "../.."

// TestREADMESnippetsCompile type-checks (go vet) every Go snippet of the
// module's README.md, each as a package of its own inside this module, so
// that the module's go.mod and go.sum resolve its imports offline.
func TestREADMESnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	md, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippets, err := Extract(md)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if len(snippets) < 4 {
		t.Fatalf("README.md: found %d Go snippets; is the extraction broken?", len(snippets))
	}
	whole := 0
	for _, s := range snippets {
		if err := s.Gofmt(); err != nil {
			t.Errorf("README.md: %v", err)
		}
		if s.Whole() {
			whole++
		}
	}
	if whole == 0 {
		t.Error("README.md has no whole-file Go snippet: the production main should be one")
	}
	out, tests, err := vet(t, "README.md", snippets)
	if err != nil {
		t.Fatalf("a Go snippet of README.md does not compile (%v):\n%s", err, out)
	}
	// The tests the README shows are run too: what they claim holds.
	if len(tests) > 0 {
		if out, err := goCommand(t, append([]string{"test", "-count=1"}, tests...)...); err != nil {
			t.Fatalf("a test shown in README.md fails (%v):\n%s", err, out)
		}
	}
}

// TestBrokenSnippetFails checks that the check above catches a snippet
// that does not compile, and names its line in the Markdown file.
func TestBrokenSnippetFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	md := "# t\n\n<!-- compiled as:\npackage snippet\n\nfunc f() {\n\t<snippet>\n}\n-->\n\n```go\nx := undefinedName\n_ = x\n```\n"
	snippets, err := Extract([]byte(md))
	if err != nil || len(snippets) != 1 {
		t.Fatalf("Extract: %d snippets, %v", len(snippets), err)
	}
	out, _, err := vet(t, "fake.md", snippets)
	if err == nil {
		t.Fatal("a snippet with an undefined name passed")
	}
	if !strings.Contains(out, "fake.md:12:") || !strings.Contains(out, "undefinedName") {
		t.Fatalf("the error does not name the snippet's line 12:\n%s", out)
	}
}

// vet writes each snippet as a package in a fresh directory inside the
// module (named with a leading underscore, which ./... patterns skip) and
// runs go vet on them all; it returns go vet's output, the packages that
// hold a test, and go vet's error.
func vet(t *testing.T, name string, snippets []Snippet) (out string, tests []string, err error) {
	t.Helper()
	dir, err := os.MkdirTemp(".", "_snippets")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var pkgs []string
	for i, s := range snippets {
		sub := filepath.Join(dir, fmt.Sprintf("s%02d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(sub, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pkg := "./" + filepath.ToSlash(sub)
		pkgs = append(pkgs, pkg)
		if _, err := os.Stat(filepath.Join(sub, "snippet_test.go")); err == nil {
			tests = append(tests, pkg)
		}
	}
	out, err = goCommand(t, append([]string{"vet"}, pkgs...)...)
	return out, tests, err
}

// goCommand runs the go command with args in this package's directory,
// offline: every import must resolve from the module's own go.mod and the
// module cache. It returns the combined output.
func goCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func TestExtract(t *testing.T) {
	md := strings.Join([]string{
		"```sh",
		"go test ./...",
		"```",
		"```go",
		"package main",
		"",
		"func main() {}",
		"```",
		"<!-- compiled as:",
		"package snippet",
		"func f() int {",
		"\t<snippet>",
		"\treturn x",
		"}",
		"-->",
		"",
		"```go",
		"x := 1",
		"```",
	}, "\n") + "\n"
	got, err := Extract([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Whole() || got[0].Line != 5 || got[1].Whole() || got[1].Line != 18 || got[1].WrapperLine != 10 {
		t.Fatalf("%+v", got)
	}
	want := "//line x.md:10\npackage snippet\nfunc f() int {\n//line x.md:18\nx := 1\n//line x.md:13\n\treturn x\n}\n"
	if src := string(got[1].Source("x.md")); src != want {
		t.Fatalf("Source:\n%s\nwant:\n%s", src, want)
	}

	for name, bad := range map[string]string{
		"fragment without comment": "```go\nx := 1\n```\n",
		"comment not right before": "<!-- compiled as:\npackage p\nfunc f() {\n<snippet>\n}\n-->\ntext\n```go\nx := 1\n```\n",
		"no placeholder":           "<!-- compiled as:\npackage p\n-->\n```go\nx := 1\n```\n",
		"fence left open":          "```go\npackage main\n",
		"comment left open":        "<!-- compiled as:\npackage p\n",
	} {
		if _, err := Extract([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestGofmt(t *testing.T) {
	if err := (Snippet{Code: "package main\nfunc main() {}\n"}).Gofmt(); err == nil {
		t.Error("an unformatted whole file passed")
	}
	if err := (Snippet{Code: "package main\n\nfunc main() {}\n"}).Gofmt(); err != nil {
		t.Error(err)
	}
}
