package daemon

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockHolder is the process holding an flock, as /proc/locks tells it.
type lockHolder struct {
	pid int // 0: not found
	uid int // -1: unknown
}

// findLockHolder looks up who holds the flock on f's file in /proc/locks
// (lines like "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF", the device
// in hex major:minor, then the inode).
func findLockHolder(f *os.File) lockHolder {
	none := lockHolder{uid: -1}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return none
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return none
	}
	defer locks.Close()
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Waiters are listed as "1: -> FLOCK ..."; holders are not.
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		pid, err := strconv.Atoi(fields[4])
		if err != nil || pid <= 0 {
			continue
		}
		return lockHolder{pid: pid, uid: uidOf(pid)}
	}
	return none
}

// uidOf returns the real uid of process pid, or -1.
func uidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if uid, err := strconv.Atoi(f[0]); err == nil {
					return uid
				}
			}
		}
	}
	return -1
}
