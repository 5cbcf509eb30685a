// Command autoipd claims and defends an IPv4 link-local address (RFC 3927,
// RFC 5227) for a userspace gVisor netstack on a TAP interface. It accepts
// the flags of QNX's autoipd and the option string of QNX's lsm-autoip.so;
// run autoipd -h for the flags, their ranges and the exit codes. The logic
// is in package internal/daemon.
package main

import (
	"context"
	"os"

	"github.com/autoip-project/autoip/internal/daemon"
)

func main() {
	os.Exit(daemon.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
