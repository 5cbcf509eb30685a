package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TAPBusyError says another process has the TAP open: the kernel lets one
// fd attach to a single-queue TAP.
type TAPBusyError struct {
	Iface   string
	Holders []string // "pid N (comm)"; empty when they could not be found
	Err     error
}

func (e *TAPBusyError) Error() string {
	who := "could not tell which (only root sees every process's files)"
	if len(e.Holders) > 0 {
		who = strings.Join(e.Holders, ", ")
	}
	return fmt.Sprintf("TAP %s is held by another process: %s; a TAP serves one program at a time: stop that one or give autoipd another TAP (%v)",
		e.Iface, who, e.Err)
}

func (e *TAPBusyError) Unwrap() error { return e.Err }

// tapHolders returns the processes with a /dev/net/tun fd attached to the
// TAP called name (fdinfo says "iff: NAME") that have a thread in our
// network namespace (names are per namespace).
func tapHolders(name string) []string {
	ourNS, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		return nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, p := range procs {
		if holdsTAP(p, name) && inNetns(p, ourNS) {
			comm, _ := os.ReadFile(filepath.Join(p, "comm"))
			out = append(out, fmt.Sprintf("pid %s (%s)", filepath.Base(p), strings.TrimSpace(string(comm))))
		}
	}
	return out
}

func holdsTAP(proc, name string) bool {
	fds, _ := os.ReadDir(filepath.Join(proc, "fd"))
	for _, fd := range fds {
		if target, _ := os.Readlink(filepath.Join(proc, "fd", fd.Name())); target != "/dev/net/tun" {
			continue
		}
		info, _ := os.ReadFile(filepath.Join(proc, "fdinfo", fd.Name()))
		for _, line := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "iff" && strings.TrimSpace(v) == name {
				return true
			}
		}
	}
	return false
}

// inNetns reports whether any thread of proc is in network namespace ns.
func inNetns(proc, ns string) bool {
	tasks, _ := filepath.Glob(filepath.Join(proc, "task", "*"))
	for _, t := range tasks {
		if l, _ := os.Readlink(filepath.Join(t, "ns", "net")); l == ns {
			return true
		}
	}
	return false
}
