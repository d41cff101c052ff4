package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/quorumha/quorumha"

// TestBinaryImportsNoTestTree: the production binary depends on nothing
// under tests/ (issue 17; `go list -deps ./cmd/quorumha` says the same).
// It follows the module's own imports from this package's non-test files.
func TestBinaryImportsNoTestTree(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	seen := map[string]bool{}
	var visit func(pkg, via string)
	var bad []string
	visit = func(pkg, via string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, modulePath), "/")
		if rel == "tests" || strings.HasPrefix(rel, "tests/") {
			bad = append(bad, pkg+" (imported by "+via+")")
		}
		files, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(rel), "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files in %s", pkg, filepath.Join(root, rel))
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == modulePath || strings.HasPrefix(p, modulePath+"/") {
					visit(p, pkg)
				}
			}
		}
	}
	visit(modulePath+"/cmd/quorumha", "")
	if len(seen) < 8 || !seen[modulePath+"/topology"] || !seen[modulePath+"/sandbox"] {
		t.Fatalf("followed only %d packages: the walk is not following imports", len(seen))
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("the binary imports the test tree:\n%s", strings.Join(bad, "\n"))
	}
}
