package sim

import (
	"encoding/binary"
	"sync"
)

// Randomness. Every random number in a simulation is a pure function of
// Config.Seed and of where it is used: derive(seed, index, stream) keys an
// independent SplitMix64 stream for each (host or actor index, purpose).
// Adding a host therefore never changes what the others draw, and fault
// decisions (loss, duplication, ...) are hashes of (seed, frame number,
// receiver) rather than draws from a shared generator, so that whether or
// not a frame is delivered to one host cannot shift the dice for another
// (this is what makes filtered and unfiltered delivery equivalent).

const golden = 0x9E3779B97F4A7C15

// mix64 is the SplitMix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Stream identifiers for derive.
const (
	streamEngineSeed = iota + 1 // the engine's candidate seed (per incarnation)
	streamEngineRand            // the engine's random delays
	streamNetRand               // netstack's RandSource
	streamSecure                // netstack's SecureRNG
	streamStart                 // random arrival time
	streamActor                 // an actor's own draws
	streamLoss                  // per-delivery loss
	streamFrame                 // per-frame delay, reordering, duplication, echo
)

// derive returns the key of stream for index under seed.
func derive(seed, index, stream uint64) uint64 {
	h := mix64(seed ^ 0x73696d2d73656564) // "sim-seed"
	h = mix64(h + (index+1)*golden)
	return mix64(h + (stream+1)*0xC2B2AE3D27D4EB4F)
}

// unit maps a 64-bit hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// splitMix is a SplitMix64 generator: 8 bytes of state.
type splitMix struct{ s uint64 }

func (r *splitMix) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// hostRand provides a host's netstack with both of its random sources
// (math/rand.Source64 for NUD jitter and the like, io.Reader for the
// "secure" generator that seeds IP IDs) in 24 bytes, instead of the 5 KiB
// of a math/rand source. gVisor requires RandSource to be safe for
// concurrent use, hence the mutex, although a simulation drives it from one
// goroutine.
type hostRand struct {
	mu     sync.Mutex
	insec  splitMix
	secure splitMix
}

// Int63 implements math/rand.Source.
func (r *hostRand) Int63() int64 { return int64(r.Uint64() >> 1) }

// Uint64 implements math/rand.Source64.
func (r *hostRand) Uint64() uint64 {
	r.mu.Lock()
	v := r.insec.next()
	r.mu.Unlock()
	return v
}

// Seed implements math/rand.Source.
func (r *hostRand) Seed(s int64) {
	r.mu.Lock()
	r.insec.s = uint64(s)
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
		binary.LittleEndian.PutUint64(b[:], r.secure.next())
		copy(p[i:], b[:])
	}
	return len(p), nil
}
