package topology

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// statementStart matches a string literal that begins with a replication,
// fencing or grant statement: what only topology may send. Text for
// operators that names a statement mid-sentence ("... and CHANGE MASTER
// yourself") does not begin with one; statements are written in capitals
// here, as everywhere in this repository, so prose ("kill a session") is
// not taken for one.
var statementStart = regexp.MustCompile(`^\s*(SHOW\s+(SLAVE|REPLICA|MASTER|BINARY|ALL\s+SLAVES)|FLUSH\s+TABLES|CHANGE\s+(MASTER|REPLICATION)|(START|STOP|RESET)\s+(SLAVE|REPLICA)|KILL\s|SET\s+(GLOBAL|@@GLOBAL))`)

// TestOnlyTopologySendsSQL keeps the SQL dialect in one package (issue 17):
// no Go file outside topology/ and the test trees, tests aside, holds a
// string literal that starts such a statement or reads mysql.user.
func TestOnlyTopologySendsSQL(t *testing.T) {
	root := ".."
	fset := token.NewFileSet()
	var found []string
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case rel == ".":
				return nil
			case rel == "topology", rel == "tests", strings.HasPrefix(d.Name(), "."), d.Name() == "node_modules", d.Name() == "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if statementStart.MatchString(s) || strings.Contains(strings.ToLower(s), "mysql.user") {
				found = append(found, fset.Position(lit.Pos()).String()+": "+lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files from %s: the walk is not looking at the repository", checked, root)
	}
	if len(found) > 0 {
		t.Fatalf("SQL outside topology/ (add a method to topology instead):\n%s", strings.Join(found, "\n"))
	}
}
