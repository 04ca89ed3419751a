// Package readmetest finds the Go snippets of a Markdown file and turns
// each into a Go file that the go command can type-check, so that a test
// fails as soon as a snippet of README.md stops compiling.
//
// A snippet is a fenced block opened by a line "```go". It takes one of two
// forms:
//
//   - A whole file: its first line that is not blank starts with
//     "package ". It is compiled as it is, and must be gofmt-ed. When it
//     imports "testing" it is written as a _test.go file (next to a doc.go
//     declaring its package without the _test suffix), so a test can be
//     shown whole.
//   - A fragment: any other block. It must follow, with only blank lines
//     in between, an HTML comment that begins with the line
//     "<!-- compiled as:" and holds a whole Go file in which one line is
//     "<snippet>" (indentation allowed): the fragment replaces that line.
//     The comment declares what the fragment uses without showing it
//     (imports, variables given as parameters) and may use what the
//     fragment declares after it (for example "_ = mw"). Markdown renders
//     the comment invisibly.
//
// Each file carries //line directives, so the go command reports an error
// at its line in the Markdown file.
//
// The package's test writes every snippet of the module's README.md as a
// package of its own in a directory inside the module whose name starts
// with an underscore (so that ./... skips it, while the module's go.mod
// and go.sum resolve its imports offline), runs go vet on them all, then
// go test on the snippets that are tests, and fails on any error.
package readmetest

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Snippet is one Go block of a Markdown file.
type Snippet struct {
	// Line is the line of the Markdown file where the block's code starts
	// (the line after its opening fence), counting from 1.
	Line int
	// Code is the block's text, each line ending in a newline.
	Code string
	// Wrapper is the text of the "compiled as" comment before a fragment
	// (without its first and last lines), empty for a whole file;
	// WrapperLine is the Markdown line of its first line.
	Wrapper     string
	WrapperLine int
}

// Whole reports whether s is a whole Go file.
func (s Snippet) Whole() bool {
	for line := range strings.Lines(s.Code) {
		if t := strings.TrimSpace(line); t != "" {
			return strings.HasPrefix(t, "package ")
		}
	}
	return false
}

const (
	wrapperStart = "<!-- compiled as:"
	wrapperEnd   = "-->"
	placeholder  = "<snippet>"
)

// Extract returns the Go snippets of the Markdown text md, in order. It
// fails on a fence left open, a fragment without its "compiled as"
// comment, and a comment without exactly one placeholder line.
func Extract(md []byte) ([]Snippet, error) {
	var (
		out      []Snippet
		lines    []string
		sc       = bufio.NewScanner(bytes.NewReader(md))
		lastHTML struct {
			text      string
			firstLine int
			endLine   int
		}
	)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == wrapperStart:
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != wrapperEnd; i++ {
				body = append(body, lines[i])
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: %q is never closed by %q", start+1, wrapperStart, wrapperEnd)
			}
			lastHTML.text = strings.Join(body, "\n") + "\n"
			lastHTML.firstLine, lastHTML.endLine = start+2, i+1
		case strings.HasPrefix(line, "```"):
			fence := line
			lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			start := i
			var body strings.Builder
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body.WriteString(lines[i])
				body.WriteByte('\n')
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: the block opened by %q is never closed", start+1, fence)
			}
			if lang != "go" {
				continue
			}
			s := Snippet{Line: start + 2, Code: body.String()}
			if !s.Whole() {
				if lastHTML.text == "" || !onlyBlank(lines[lastHTML.endLine:start]) {
					return nil, fmt.Errorf("line %d: a Go fragment (no package clause) needs a %q comment right before it", start+1, wrapperStart)
				}
				if n := countPlaceholders(lastHTML.text); n != 1 {
					return nil, fmt.Errorf("line %d: the %q comment holds %d %q lines, want 1", lastHTML.firstLine-1, wrapperStart, n, placeholder)
				}
				s.Wrapper, s.WrapperLine = lastHTML.text, lastHTML.firstLine
			}
			lastHTML.text = ""
			out = append(out, s)
		}
	}
	return out, nil
}

// onlyBlank reports whether every line of lines is blank.
func onlyBlank(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return false
		}
	}
	return true
}

// countPlaceholders counts the lines of text that are the placeholder.
func countPlaceholders(text string) int {
	n := 0
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == placeholder {
			n++
		}
	}
	return n
}

// Source returns the Go file of s, with //line directives naming name (the
// Markdown file) so that errors point into it.
func (s Snippet) Source(name string) []byte {
	var b bytes.Buffer
	directive := func(line int) {
		fmt.Fprintf(&b, "//line %s:%d\n", name, line)
	}
	if s.Whole() {
		directive(s.Line)
		b.WriteString(s.Code)
		return b.Bytes()
	}
	directive(s.WrapperLine)
	n := 0
	for line := range strings.Lines(s.Wrapper) {
		if strings.TrimSpace(line) == placeholder {
			directive(s.Line)
			b.WriteString(s.Code)
			directive(s.WrapperLine + n + 1)
		} else {
			b.WriteString(line)
		}
		n++
	}
	return b.Bytes()
}

// Gofmt returns an error when s is a whole file that gofmt would change.
// Fragments are not checked: their indentation is the Markdown's.
func (s Snippet) Gofmt() error {
	if !s.Whole() {
		return nil
	}
	formatted, err := format.Source([]byte(s.Code))
	if err != nil {
		return err
	}
	if !bytes.Equal(formatted, []byte(s.Code)) {
		return fmt.Errorf("the snippet at line %d is not gofmt-ed", s.Line)
	}
	return nil
}

// Write writes s into dir (which must exist and be empty) as a package of
// its own, its file named after name: snippet.go, or snippet_test.go next
// to a doc.go when it imports "testing".
func (s Snippet) Write(dir, name string) error {
	src := s.Source(name)
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.ImportsOnly)
	if err != nil {
		return fmt.Errorf("the snippet at line %d: %w", s.Line, err)
	}
	file := "snippet.go"
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "testing" {
			file = "snippet_test.go"
			pkg := strings.TrimSuffix(f.Name.Name, "_test")
			doc := "// Package " + pkg + " holds a test snippet.\npackage " + pkg + "\n"
			if err := os.WriteFile(filepath.Join(dir, "doc.go"), []byte(doc), 0o644); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, file), src, 0o644)
}
