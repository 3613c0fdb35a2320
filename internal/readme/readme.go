// Package readme keeps the examples of tcplab's README.md true: each
// example is a generated block between two HTML comments,
//
//	<!-- generated: NAME -->
//	    indented example lines
//	<!-- end: NAME -->
//
// and the tests that know how to make an example compare it with the
// README's block, or, with -update, rewrite the block. Instructions a
// reader follows by hand are a steps block,
//
//	<!-- steps: NAME -->
//	    shell lines
//	<!-- end: NAME -->
//
// which a test runs as written.
package readme

import (
	"fmt"
	"os"
	"strings"
)

// Block returns the example called name in the README at path, without
// its indentation.
func Block(path, name string) (string, error) {
	return block(path, "generated", name)
}

// Steps returns the steps block called name in the README at path, without
// its indentation.
func Steps(path, name string) (string, error) {
	return block(path, "steps", name)
}

// block returns the block of the kind ("generated" or "steps") called name.
func block(path, kind, name string) (string, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	start, end, err := bounds(string(text), kind, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(text)[start:end], "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// Update replaces the example called name in the README at path with
// content, indented as a Markdown code block.
func Update(path, name, content string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	start, end, err := bounds(string(text), "generated", name)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
		if l == "" {
			b.WriteString("\n")
		} else {
			b.WriteString("    " + l + "\n")
		}
	}
	out := string(text)[:start] + b.String() + string(text)[end:]
	return os.WriteFile(path, []byte(out), 0o644)
}

// bounds returns where the block of the kind called name starts and ends:
// the line after its opening comment, and the start of its closing comment.
func bounds(text, kind, name string) (start, end int, err error) {
	open, cl := "<!-- "+kind+": "+name+" -->\n", "<!-- end: "+name+" -->"
	i := strings.Index(text, open)
	if i < 0 {
		return 0, 0, fmt.Errorf("no %q", strings.TrimSpace(open))
	}
	start = i + len(open)
	j := strings.Index(text[start:], cl)
	if j < 0 {
		return 0, 0, fmt.Errorf("no %q after %q", cl, strings.TrimSpace(open))
	}
	return start, start + j, nil
}
