package sim

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/autoip-project/autoip/internal/splitmix"
)

// Randomness. Every random number in a simulation is a pure function of
// Config.Seed and of where it is used: splitmix.Derive(seed, index,
// stream) keys an independent SplitMix64 stream for each (host or actor
// index, purpose). Adding a host therefore never changes what the others
// draw. Fault decisions are the segment's (sim/segment): hashes of (seed,
// frame number, receiver), on streams 7 and 8.

// Stream identifiers.
const (
	streamEngineSeed = iota + 1 // the engine's candidate seed (per incarnation)
	streamEngineRand            // the engine's random delays
	streamNetRand               // netstack's RandSource
	streamSecure                // netstack's SecureRNG
	streamStart                 // random arrival time
	streamActor                 // an actor's own draws
	// 7 and 8 are the segment's (fault decisions).
	streamDHCPRand = 9 // a host's DHCP client
)

// ArrivalOffset returns host's random arrival within [0, window] under
// seed, as scenarios with random arrivals draw it.
func ArrivalOffset(seed uint64, host int, window time.Duration) time.Duration {
	return time.Duration(splitmix.Derive(seed, uint64(host), streamStart) % uint64(window+1))
}

// hostRand provides a host's netstack with both of its random sources
// (math/rand.Source64 for NUD jitter and the like, io.Reader for the
// "secure" generator that seeds IP IDs) in 24 bytes, instead of the 5 KiB
// of a math/rand source. gVisor requires RandSource to be safe for
// concurrent use, hence the mutex, although a simulation drives it from one
// goroutine.
type hostRand struct {
	mu     sync.Mutex
	insec  splitmix.Source
	secure splitmix.Source
}

// Int63 implements math/rand.Source.
func (r *hostRand) Int63() int64 { return int64(r.Uint64() >> 1) }

// Uint64 implements math/rand.Source64.
func (r *hostRand) Uint64() uint64 {
	r.mu.Lock()
	v := r.insec.Next()
	r.mu.Unlock()
	return v
}

// Seed implements math/rand.Source.
func (r *hostRand) Seed(s int64) {
	r.mu.Lock()
	r.insec.State = uint64(s)
	r.mu.Unlock()
}

// secureReader is the io.Reader view of hostRand's second stream.
type secureReader hostRand

// Read fills p deterministically; it never fails.
func (r *secureReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b [8]byte
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(b[:], r.secure.Next())
		copy(p[i:], b[:])
	}
	return len(p), nil
}
