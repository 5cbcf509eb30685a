package interop

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// daemonBin is the autoipd binary built by TestMain (empty when not root);
// buildErr says why it is missing. simBin and simErr are the same for
// autoip-sim.
var (
	daemonBin string
	buildErr  error
	raceBuild bool // daemonBin has the race detector
	simBin    string
	simErr    error
)

// defaultParallel is how many cases run at once unless -test.parallel is
// given. The cases mostly sleep through RFC timers, so more of them than
// there are CPUs keep the package well under its five-minute budget.
const defaultParallel = "6"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit {
		_ = flag.Set("test.parallel", defaultParallel)
	}
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every privileged test skips
		}
		dir, err := os.MkdirTemp("", "aip-interop-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		daemonBin, buildErr = buildDaemon(filepath.Join(dir, "autoipd"))
		simBin, _, simErr = build(filepath.Join(dir, "autoip-sim"), "github.com/autoip-project/autoip/cmd/autoip-sim")
		return m.Run()
	}()
	os.Exit(code)
}

// buildDaemon builds cmd/autoipd with the race detector (CI runs the tests
// with -race; a race in the daemon then fails the case that hit it), or
// without it where -race cannot build.
func buildDaemon(out string) (string, error) {
	bin, race, err := build(out, "github.com/autoip-project/autoip/cmd/autoipd")
	raceBuild = race
	return bin, err
}

// build builds pkg into out, with the race detector where it can, and says
// whether it could.
func build(out, pkg string) (bin string, race bool, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if _, err := exec.Command(goBin, "build", "-race", "-o", out, pkg).CombinedOutput(); err == nil {
		return out, true, nil
	}
	if b, err := exec.Command(goBin, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, false, nil
}
