// Package consttime holds phr to docs/security.md's claims that secrets
// are compared in constant time: share passcodes (their scrypt hashes),
// session tokens (their SHA-256, after the store's lookup by it), the
// tokens of share file locations and the lookup keys of shares. A timing
// measurement of one comparison of 32 bytes cannot tell a constant-time
// comparison from bytes.Equal on a loaded machine, so the test reads the
// source instead: each function that decides on a secret must make the
// decision with a constant-time call, and must not also compare the same
// values with ==, !=, bytes.Equal, bytes.Compare or strings.Compare (a
// shortcut put in front of the constant-time call would leak the timing
// it exists to hide).
package consttime

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = "../../.."

// A site is a function that compares a secret.
type site struct {
	file string // relative to the repository
	fn   string // "Name" or "Recv.Name"
	call string // the constant-time call it must make: "subtle.ConstantTimeCompare" or "hmac.Equal"
	what string // the claim, for the message
}

var sites = []site{
	{"pkg/share/passcode.go", "CheckPasscode", "subtle.ConstantTimeCompare", "share passcodes: the scrypt hash of the guess against the stored one"},
	{"pkg/server/sessions.go", "sessions.lookup", "subtle.ConstantTimeCompare", "bearer tokens: the token's SHA-256 against the session's"},
	{"pkg/server/passkeys.go", "passkeys.registerFinish", "subtle.ConstantTimeCompare", "a passkey registration bound to its session's token hash"},
	{"pkg/sharestore/token.go", "Store.FileByToken", "hmac.Equal", "the token of a share file's location"},
	{"pkg/sharestore/shares.go", "Store.openPart", "hmac.Equal", "a share's lookup key against its sealed part"},
	{"pkg/vault/session.go", "Secret.unwrapSlot", "subtle.ConstantTimeCompare", "a session secret's slot"},
	{"pkg/vault/vault.go", "Vault.SlotsOpenedBy", "subtle.ConstantTimeCompare", "a secret's unwrapped key against the open vault's key"},
}

func exprString(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	printer.Fprint(&b, fset, e)
	return b.String()
}

// operand reduces an expression to the value it reads: s.hash[:] and
// []byte(x) are s.hash and x.
func operand(fset *token.FileSet, e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.SliceExpr:
			e = x.X
			continue
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.CallExpr:
			// A conversion: []byte(x), string(x).
			if len(x.Args) == 1 {
				switch f := x.Fun.(type) {
				case *ast.ArrayType:
					e = x.Args[0]
					continue
				case *ast.Ident:
					if f.Name == "string" {
						e = x.Args[0]
						continue
					}
				}
			}
		}
		return exprString(fset, e)
	}
}

func isNil(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "nil"
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// check finds the problems of one function: no constant-time call, or
// one of its operands also compared otherwise.
func check(fset *token.FileSet, fd *ast.FuncDecl, want string) []string {
	var ct [][]ast.Expr
	var other []struct {
		pos      token.Pos
		how      string
		operands []ast.Expr
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			name := exprString(fset, x.Fun)
			switch name {
			case want:
				ct = append(ct, x.Args)
			case "bytes.Equal", "bytes.Compare", "strings.Compare", "reflect.DeepEqual", "slices.Equal":
				other = append(other, struct {
					pos      token.Pos
					how      string
					operands []ast.Expr
				}{x.Pos(), name, x.Args})
			}
		case *ast.BinaryExpr:
			// x == nil and len(x) != n say nothing of x's bytes.
			if (x.Op == token.EQL || x.Op == token.NEQ) && !isNil(x.X) && !isNil(x.Y) {
				other = append(other, struct {
					pos      token.Pos
					how      string
					operands []ast.Expr
				}{x.Pos(), x.Op.String(), []ast.Expr{x.X, x.Y}})
			}
		}
		return true
	})
	if len(ct) == 0 {
		return []string{"makes no " + want + " call"}
	}
	secret := map[string]bool{}
	for _, args := range ct {
		for _, a := range args {
			secret[operand(fset, a)] = true
		}
	}
	var probs []string
	for _, o := range other {
		for _, e := range o.operands {
			if secret[operand(fset, e)] {
				probs = append(probs, fset.Position(o.pos).String()+": compares "+operand(fset, e)+" with "+o.how+" too")
			}
		}
	}
	return probs
}

// TestSecretsComparedInConstantTime: every site compares its secret with
// its constant-time call and no other way.
func TestSecretsComparedInConstantTime(t *testing.T) {
	for _, s := range sites {
		t.Run(s.file+":"+s.fn, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(root, s.file), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil || funcName(fd) != s.fn {
					continue
				}
				probs := check(fset, fd, s.call)
				found++
				for _, p := range probs {
					t.Errorf("%s (%s): %s", funcName(fd), s.what, p)
				}
			}
			if found == 0 {
				t.Errorf("no function %q in %s: the claim (%s) lost its site; find where it moved", s.fn, s.file, s.what)
			}
		})
	}
}
