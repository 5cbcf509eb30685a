package daemon

import "bytes"

// hookOutputLimit bounds what is kept of a hook's stdout and of its stderr,
// per run. The rest is read and discarded (so the hook never blocks on a
// full pipe) and counted.
const hookOutputLimit = 64 << 10

// limitedBuffer keeps the first hookOutputLimit bytes written to it and
// counts the rest in dropped. It must not embed bytes.Buffer: io.Copy, which
// os/exec uses to drain a hook's pipe, would find the promoted ReadFrom and
// read everything into memory past the limiting Write.
type limitedBuffer struct {
	buf     bytes.Buffer
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := max(hookOutputLimit-b.buf.Len(), 0)
	if room < len(p) {
		b.buf.Write(p[:room])
		b.dropped += len(p) - room
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what was kept.
func (b *limitedBuffer) String() string { return b.buf.String() }
