// Command hook is the autoipd -hook that aipbench uses to time events: it
// takes the time first thing and reports "EVENT UNIX-NANOS AUTOIPD_TIME
// AUTOIPD_PID" on the unix socket named by AIPBENCH_HOOK_SOCK. It imports
// as little as possible, so that its own start-up adds little to what it
// measures. bench/run.sh builds it as aipbench-hook next to aipbench.
//
// With the single argument -idle it blocks forever instead: the RSS
// baseline of aipbench idle.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	now := time.Now()
	if len(os.Args) == 2 && os.Args[1] == "-idle" {
		// aipbench's RSS baseline: a minimal Go program (runtime and
		// package net, no gVisor) doing nothing.
		select {}
	}
	sock := os.Getenv("AIPBENCH_HOOK_SOCK")
	if sock == "" {
		fmt.Fprintln(os.Stderr, "aipbench-hook: AIPBENCH_HOOK_SOCK is not set")
		os.Exit(1)
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "aipbench-hook:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %d %s %s\n", os.Getenv("AUTOIPD_EVENT"), now.UnixNano(), os.Getenv("AUTOIPD_TIME"), os.Getenv("AUTOIPD_PID"))
}
