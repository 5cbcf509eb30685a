package daemon

import (
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Why a hook's process group was killed before the hook ended by itself.
const (
	endedByTimeout  = "timeout"
	endedByShutdown = "shutdown"
)

// contain waits until the hook whose process group leader is pid exits, its
// timeout passes or abort is closed, then kills the whole process group:
// whatever the hook started and left behind dies with it, and a hook cut
// short by the timeout or the shutdown dies with its children. It returns
// "" when the hook ended by itself, else endedByTimeout or
// endedByShutdown. The caller then reaps the leader (cmd.Wait).
//
// The leader is left unreaped until the group is killed (waitExited uses
// WNOWAIT), so its pid, which is the group id, cannot have been reused by
// an unrelated process group: kill(-pid) hits only the hook's group.
func contain(pid int, timeout time.Duration, abort <-chan struct{}) string {
	exited := make(chan struct{})
	go func() {
		waitExited(pid)
		close(exited)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	why := ""
	select {
	case <-exited:
	case <-timer.C:
		why = endedByTimeout
	case <-abort:
		why = endedByShutdown
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if why != "" {
		<-exited
	}
	return why
}

// waitExited blocks until process pid (our child) has exited, without
// reaping it.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
