//go:build linux

package tap

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadWait: the Link's reader, blocked in its own ppoll, is woken by a
// frame, by Close (os.ErrClosed, and Close does not hang on it) and by the
// TAP's deletion (EBADFD), and a closed Device fails at once.
func TestReadWait(t *testing.T) {
	for _, how := range []string{"frame", "close", "delete"} {
		t.Run(how, func(t *testing.T) {
			ns := newNS(t)
			ns.IP(t, "tuntap", "add", "dev", "aiprw0", "mode", "tap")
			d := openInNS(t, ns, Config{Name: "aiprw0"})
			setupKernelSide(t, ns, "aiprw0")
			type result struct {
				n   int
				err error
			}
			got := make(chan result, 1)
			go func() {
				buf := make([]byte, readBufSize)
				n, err := d.readWait(buf)
				got <- result{n, err}
			}()
			select {
			case r := <-got:
				if how != "frame" || r.err != nil {
					t.Fatalf("read returned before anything happened: %d, %v", r.n, r.err)
				}
				return // the kernel's own frame (an IPv4 broadcast?) came first: fine for "frame"
			case <-time.After(200 * time.Millisecond):
			}
			var want error
			switch how {
			case "frame":
				if _, err := d.Write(arpRequestFromUs()); err != nil {
					t.Fatal(err)
				}
			case "close":
				closed := make(chan error, 1)
				go func() { closed <- d.Close() }()
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("Close: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Close hung on the blocked reader")
				}
				want = os.ErrClosed
			case "delete":
				ns.IP(t, "link", "del", "aiprw0")
				want = unix.EBADFD
			}
			select {
			case r := <-got:
				if want == nil {
					if r.err != nil || r.n < 14 {
						t.Fatalf("read %d bytes, %v; want the kernel's ARP reply", r.n, r.err)
					}
					return
				}
				if !errors.Is(r.err, want) {
					t.Fatalf("read: %v, want %v", r.err, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the blocked read was not woken by %s", how)
			}
			if how == "close" {
				if _, err := d.readWait(make([]byte, readBufSize)); !errors.Is(err, os.ErrClosed) {
					t.Fatalf("read on a closed Device: %v, want os.ErrClosed", err)
				}
			}
		})
	}
}
