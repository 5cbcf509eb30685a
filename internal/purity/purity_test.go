// Package purity enforces the architecture of the protocol core: packages
// autoip and autoip/acd (and internal/splitmix, whose SplitMix64 they use)
// are deterministic, I/O-free state machines. They
// depend on the standard library only, import nothing that does I/O (os,
// syscall, net; net/netip is fine), never read the clock or sleep, never
// draw global randomness and never start goroutines. Everything that does
// I/O lives in the packages that drive them.
//
// The package holds tests only.
package purity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// modulePath is the module the checked packages live in.
const modulePath = "github.com/autoip-project/autoip"

// corePackages are the packages that must stay pure.
var corePackages = []string{
	modulePath + "/autoip",
	modulePath + "/autoip/acd",
	modulePath + "/internal/splitmix", // the SplitMix64 of autoip.Candidate
}

// clockFuncs are the functions of package time that read the clock, sleep
// or start timers. Every other identifier of package time (Duration, Time,
// Unix, Date, ...) is fine.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true,
}

// randAllowed are the identifiers of math/rand and math/rand/v2 that do not
// touch the global generator: the constructors of explicit generators and
// the types. Anything else (rand.IntN, rand.Shuffle, rand.Seed, ...) is
// global randomness. Being a list of what is allowed, it fails closed when
// the standard library grows.
var randAllowed = map[string]bool{
	"New": true, "NewPCG": true, "NewChaCha8": true, // constructors
	"Rand": true, "Source": true, "Source64": true, "PCG": true, "ChaCha8": true, "Zipf": true, // types
}

var randPaths = map[string]bool{"math/rand": true, "math/rand/v2": true}

// forbiddenImport reports why a core package may not import p directly,
// or "" if it may.
func forbiddenImport(p string) string {
	switch {
	case p == "net/netip":
		return ""
	case p == "os" || strings.HasPrefix(p, "os/"):
		return "does file or process I/O"
	case p == "syscall" || strings.HasPrefix(p, "syscall/"):
		return "makes system calls"
	case p == "net" || strings.HasPrefix(p, "net/"):
		return "does network I/O"
	case p == "log" || strings.HasPrefix(p, "log/"):
		return "writes logs (report through outputs instead)"
	case p == "unsafe" || p == "C":
		return "escapes the type system"
	case p == "plugin" || p == "runtime/cgo":
		return "loads foreign code"
	}
	return ""
}

// forbiddenDep reports why a core package may not depend on p even
// indirectly, or "" if it may. Standard packages that fmt and time pull in
// (os, syscall) are fine indirectly; the network stack is not.
func forbiddenDep(p string, standard bool) string {
	switch {
	case !standard && !slices.Contains(corePackages, p):
		return "is not in the standard library"
	case p == "net" || (strings.HasPrefix(p, "net/") && p != "net/netip"):
		return "does network I/O"
	case p == "os/exec" || p == "os/signal" || p == "plugin" || p == "runtime/cgo":
		return "does process I/O or loads foreign code"
	}
	return ""
}

// listPackage is the part of `go list -json` output the checks read.
type listPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	Imports    []string
	CgoFiles   []string
	DepOnly    bool
	Error      *struct{ Err string }
}

// goTool returns the go command that is running the tests. cmd/go puts
// $GOROOT/bin first on the test's PATH; runtime.GOROOT is the fallback.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := runtime.GOROOT(); root != "" { // deprecated, but a fallback only
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("cannot find the go command: not on PATH and not in runtime.GOROOT()/bin")
	return ""
}

// goList runs `go list -deps -json` on the core packages.
func goList(t *testing.T) []listPackage {
	t.Helper()
	cmd := exec.Command(goTool(t), append([]string{"list", "-deps", "-json"}, corePackages...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	var pkgs []listPackage
	d := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listPackage
		if err := d.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// checkDeps applies the dependency rules to go list output and returns
// one line per violation.
func checkDeps(pkgs []listPackage) []string {
	var bad []string
	found := map[string]bool{}
	for _, p := range pkgs {
		if p.Error != nil {
			bad = append(bad, fmt.Sprintf("%s: go list error: %s", p.ImportPath, p.Error.Err))
		}
		if why := forbiddenDep(p.ImportPath, p.Standard); why != "" {
			bad = append(bad, fmt.Sprintf("dependency %s %s", p.ImportPath, why))
		}
		if !slices.Contains(corePackages, p.ImportPath) {
			continue
		}
		found[p.ImportPath] = true
		for _, imp := range p.Imports {
			if why := forbiddenImport(imp); why != "" {
				bad = append(bad, fmt.Sprintf("%s imports %s, which %s", p.ImportPath, imp, why))
			}
		}
		if len(p.CgoFiles) > 0 {
			bad = append(bad, fmt.Sprintf("%s uses cgo (%s)", p.ImportPath, strings.Join(p.CgoFiles, ", ")))
		}
	}
	for _, c := range corePackages {
		if !found[c] {
			bad = append(bad, fmt.Sprintf("core package %s missing from go list output", c))
		}
	}
	return bad
}

// TestCoreDependsOnStandardLibraryOnly runs go list -deps on the core
// packages.
func TestCoreDependsOnStandardLibraryOnly(t *testing.T) {
	pkgs := goList(t)
	for _, bad := range checkDeps(pkgs) {
		t.Error(bad)
	}
	if t.Failed() {
		t.Log("the core packages must stay pure; move I/O into the packages that drive them")
	}
}

// TestCheckDepsCatchesViolations makes sure checkDeps is not vacuous.
func TestCheckDepsCatchesViolations(t *testing.T) {
	core := func(imports ...string) listPackage {
		return listPackage{ImportPath: corePackages[0], Imports: imports}
	}
	ok := []listPackage{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "os", Standard: true, DepOnly: true}, // via fmt: fine
		{ImportPath: "net/netip", Standard: true},
		core("fmt", "net/netip", "time", "math/rand/v2", corePackages[1], corePackages[2]),
		{ImportPath: corePackages[1], Imports: []string{"encoding/binary"}},
		{ImportPath: corePackages[2]},
	}
	if bad := checkDeps(ok); len(bad) != 0 {
		t.Errorf("clean package list reported: %q", bad)
	}
	tests := []struct {
		name string
		pkgs []listPackage
		want string
	}{
		{"gvisor", []listPackage{{ImportPath: "gvisor.dev/gvisor/pkg/tcpip"}}, "gvisor.dev/gvisor/pkg/tcpip is not in the standard library"},
		{"x/sys", []listPackage{{ImportPath: "golang.org/x/sys/unix"}}, "golang.org/x/sys/unix is not in the standard library"},
		{"water", []listPackage{{ImportPath: "github.com/songgao/water"}}, "water is not in the standard library"},
		{"gopacket", []listPackage{{ImportPath: "github.com/google/gopacket"}}, "gopacket is not in the standard library"},
		{"persist", []listPackage{{ImportPath: modulePath + "/autoip/persist"}}, "persist is not in the standard library"},
		{"net indirectly", []listPackage{{ImportPath: "net", Standard: true, DepOnly: true}}, "dependency net does network I/O"},
		{"os directly", []listPackage{core("os")}, "imports os, which does file or process I/O"},
		{"syscall directly", []listPackage{core("syscall")}, "imports syscall"},
		{"net directly", []listPackage{core("net")}, "imports net,"},
		{"cgo", []listPackage{{ImportPath: corePackages[1], CgoFiles: []string{"x.go"}}}, "uses cgo"},
		{"go list error", []listPackage{{ImportPath: corePackages[1], Error: &struct{ Err string }{"boom"}}}, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := checkDeps(append(slices.Clone(ok), tt.pkgs...))
			if !slices.ContainsFunc(bad, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("checkDeps = %q, want a line containing %q", bad, tt.want)
			}
		})
	}
	if bad := checkDeps(ok[:3]); len(bad) == 0 {
		t.Error("missing core packages not reported")
	}
}

// finding is one violation in source.
type finding struct {
	pos token.Position
	msg string
}

func (f finding) String() string { return fmt.Sprintf("%s:%d: %s", f.pos.Filename, f.pos.Line, f.msg) }

// fakeImporter hands out empty packages: the checker needs only to know
// which import an identifier names, not what the import declares.
type fakeImporter map[string]*types.Package

func (m fakeImporter) Import(p string) (*types.Package, error) {
	if pkg, ok := m[p]; ok {
		return pkg, nil
	}
	pkg := types.NewPackage(p, importName(p))
	pkg.MarkComplete()
	m[p] = pkg
	return pkg, nil
}

// importName is the default name of the package at import path p: its last
// element, skipping a major version suffix (math/rand/v2 is rand).
func importName(p string) string {
	base := path.Base(p)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		if dir := path.Dir(p); dir != "." {
			base = path.Base(dir)
		}
	}
	return strings.ReplaceAll(base, "-", "_")
}

// checkSource reports, in the files of one package, calls and other uses
// of the clock functions of package time, package-level functions of
// math/rand and math/rand/v2 other than the constructors, go statements,
// dot imports of those packages, forbidden imports and go:linkname. Files
// are type-checked against empty imports, so that a local variable that
// shadows a package name is not mistaken for it.
func checkSource(fset *token.FileSet, files []*ast.File) []finding {
	var out []finding
	add := func(pos token.Pos, format string, args ...any) {
		out = append(out, finding{fset.Position(pos), fmt.Sprintf(format, args...)})
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{
		Importer:    fakeImporter{},
		Error:       func(error) {}, // empty imports make errors; uses are still recorded
		FakeImportC: true,
	}
	name := "p"
	if len(files) > 0 {
		name = files[0].Name.Name
	}
	_, _ = conf.Check(name, fset, files, info) // errors: see Error above

	for _, f := range files {
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, "`\"")
			if why := forbiddenImport(p); why != "" {
				add(imp.Pos(), "import of %q, which %s", p, why)
			}
			if imp.Name != nil && imp.Name.Name == "." && (p == "time" || randPaths[p]) {
				add(imp.Pos(), "dot import of %q hides clock and randomness uses from this check", p)
			}
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if strings.HasPrefix(c.Text, "//go:linkname") {
					add(c.Pos(), "go:linkname can reach the runtime clock behind this check's back")
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				add(n.Pos(), "go statement: the core starts no goroutines")
			case *ast.SelectorExpr:
				id, ok := n.X.(*ast.Ident)
				if !ok {
					return true
				}
				pn, ok := info.Uses[id].(*types.PkgName)
				if !ok {
					return true
				}
				p, sel := pn.Imported().Path(), n.Sel.Name
				switch {
				case p == "time" && clockFuncs[sel]:
					add(n.Pos(), "%s.%s reads the clock or sleeps: take the time as an argument", id.Name, sel)
				case randPaths[p] && !randAllowed[sel]:
					add(n.Pos(), "%s.%s (%s) uses global randomness: draw from the configured *rand.Rand", id.Name, sel, p)
				}
			}
			return true
		})
	}
	return out
}

// TestCoreSourceIsPure parses every non-test .go file of the core packages,
// whatever its build constraints, and checks it.
func TestCoreSourceIsPure(t *testing.T) {
	var dirs []string
	for _, p := range goList(t) {
		if slices.Contains(corePackages, p.ImportPath) {
			dirs = append(dirs, p.Dir)
		}
	}
	if len(dirs) != len(corePackages) {
		t.Fatalf("found directories %q for %d core packages", dirs, len(corePackages))
	}
	for _, dir := range dirs {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		byPkg := map[string][]*ast.File{}
		var pkgNames []string
		nfiles := 0
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Errorf("parse: %v", err)
				continue
			}
			if _, ok := byPkg[f.Name.Name]; !ok {
				pkgNames = append(pkgNames, f.Name.Name)
			}
			byPkg[f.Name.Name] = append(byPkg[f.Name.Name], f)
			nfiles++
		}
		if nfiles == 0 {
			t.Errorf("%s: no Go files found", dir)
		}
		for _, pn := range pkgNames {
			for _, fd := range checkSource(fset, byPkg[pn]) {
				t.Error(fd)
			}
		}
		t.Logf("%s: %d files checked", dir, nfiles)
	}
}

// TestCheckSourceCatchesViolations runs the source checker on in-memory
// snippets: every forbidden construct is found at the right line, and
// the allowed ones are not reported.
func TestCheckSourceCatchesViolations(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line: substring", in order
	}{
		{"time.Now call", `package p

import "time"

func f() time.Time {
	return time.Now()
}
`, []string{"6: time.Now reads the clock"}},
		{"every clock function", `package p

import "time"

func f() {
	_ = time.Since(time.Time{})
	_ = time.Until(time.Time{})
	time.Sleep(1)
	<-time.After(1)
	time.AfterFunc(1, func() {})
	time.NewTimer(1)
	time.NewTicker(1)
	time.Tick(1)
}
`, []string{"6: time.Since", "7: time.Until", "8: time.Sleep", "9: time.After ", "10: time.AfterFunc", "11: time.NewTimer", "12: time.NewTicker", "13: time.Tick"}},
		{"renamed import and method value", `package p

import clock "time"

var now = clock.Now

func f() { clock.Sleep(clock.Second) }
`, []string{"5: clock.Now", "7: clock.Sleep"}},
		{"dot import", `package p

import . "time"

func f() { _ = Now() }
`, []string{"3: dot import of \"time\""}},
		{"global rand v2", `package p

import "math/rand/v2"

func f() int {
	rand.Shuffle(3, func(i, j int) {})
	return rand.IntN(6)
}
`, []string{"6: rand.Shuffle (math/rand/v2)", "7: rand.IntN (math/rand/v2)"}},
		{"global rand v1 renamed", `package p

import mrand "math/rand"

func f() int {
	mrand.Seed(1)
	return mrand.Int()
}
`, []string{"6: mrand.Seed (math/rand)", "7: mrand.Int (math/rand)"}},
		{"goroutine", `package p

func f() {
	go func() {}()
}
`, []string{"4: go statement"}},
		{"forbidden imports", `package p

import (
	"net"
	"os"
	"syscall"
	"net/netip"
)

var _ = net.IPv4len
var _ = os.Args
var _ = syscall.Getpid
var _ netip.Addr
`, []string{"4: import of \"net\"", "5: import of \"os\"", "6: import of \"syscall\""}},
		{"linkname", `package p

import _ "unsafe"

//go:linkname nanotime runtime.nanotime
func nanotime() int64
`, []string{"3: import of \"unsafe\"", "5: go:linkname"}},
		{"allowed uses", `package p

import (
	"math/rand/v2"
	"time"
)

type clock struct{ Now func() time.Time }

func f(t time.Time, d time.Duration, c clock, r *rand.Rand) time.Time {
	g := rand.New(rand.NewPCG(1, 2))
	_ = rand.New(rand.NewChaCha8([32]byte{}))
	_ = g.IntN(6) + r.IntN(6)
	var s rand.Source = rand.NewPCG(3, 4)
	_ = s
	_ = time.Unix(0, 0).Add(d * time.Second)
	_ = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	_ = c.Now
	return t.Add(time.Duration(r.Int64N(int64(d))))
}

func shadow(time clock) { _ = time.Now() }

func shadowRand() {
	rand := struct{ IntN func(int) int }{}
	_ = rand.IntN
}
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "snippet.go", tt.src, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			got := checkSource(fset, []*ast.File{f})
			var lines []string
			for _, fd := range got {
				lines = append(lines, fd.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("findings:\n%s\nwant %d: %q", strings.Join(lines, "\n"), len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				line, sub, _ := strings.Cut(w, ": ")
				if want := "snippet.go:" + line + ": "; !strings.HasPrefix(lines[i], want) || !strings.Contains(lines[i], sub) {
					t.Errorf("finding %d = %q, want %q... containing %q", i, lines[i], want, sub)
				}
			}
		})
	}
}

// TestCheckSourceOnCoreCopy adds a clock read to a copy of a real core
// file and makes sure the checker reports it with its file and line.
func TestCheckSourceOnCoreCopy(t *testing.T) {
	var dir string
	for _, p := range goList(t) {
		if p.ImportPath == corePackages[0] {
			dir = p.Dir
		}
	}
	name := filepath.Join(dir, "engine.go")
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	clean, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	if got := checkSource(fset, []*ast.File{clean}); len(got) != 0 {
		t.Fatalf("clean engine.go reported: %v", got)
	}
	lines := strings.Count(string(src), "\n")
	dirty := string(src) + "\nfunc sneaky() time.Time { go func() {}(); return time.Now() }\n"
	fset = token.NewFileSet()
	f, err := parser.ParseFile(fset, name, dirty, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := checkSource(fset, []*ast.File{f})
	want := []string{
		fmt.Sprintf("%s:%d: go statement", name, lines+2),
		fmt.Sprintf("%s:%d: time.Now reads the clock", name, lines+2),
	}
	if len(got) != len(want) {
		t.Fatalf("findings %v, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i].String(), want[i]) {
			t.Errorf("finding %q, want prefix %q", got[i], want[i])
		}
	}
}

func TestImportName(t *testing.T) {
	for p, want := range map[string]string{
		"time":                       "time",
		"math/rand":                  "rand",
		"math/rand/v2":               "rand",
		modulePath + "/autoip/acd":   "acd",
		"gvisor.dev/gvisor/pkg/v2":   "pkg",
		"example.com/go-thing":       "go_thing",
		"example.com/vendor/v":       "v",
		"example.com/version/vector": "vector",
	} {
		if got := importName(p); got != want {
			t.Errorf("importName(%q) = %q, want %q", p, got, want)
		}
	}
}
