// Package splitmix is the project's one SplitMix64 (Steele, Lea and Flood,
// "Fast splittable pseudorandom number generators", 2014): the finaliser
// Mix, a generator Source, and Derive, which keys independent streams by
// (seed, index, stream).
//
// The protocol core draws its candidate addresses from it (autoip.Candidate)
// and the simulator every random number and fault decision, so the package
// is pure like the core: standard library only, no clock, no global state.
// Its outputs never change between releases: golden values pin them.
package splitmix

// Golden is the SplitMix64 increment, 2^64 divided by the golden ratio.
const Golden = 0x9E3779B97F4A7C15

// Mix is the SplitMix64 finaliser: a bijection of uint64 that spreads every
// input bit over the output.
func Mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Source is a SplitMix64 generator: 8 bytes of state. The zero value is a
// valid generator; set State to seed it. It is not safe for concurrent use.
type Source struct{ State uint64 }

// Next returns the next output.
func (s *Source) Next() uint64 {
	s.State += Golden
	return Mix(s.State)
}

// Derive returns the key of stream for index under seed: a different,
// independent value for every (seed, index, stream), so that a simulation
// can give each host and each purpose a stream of its own, and adding a host
// changes nobody else's draws.
func Derive(seed, index, stream uint64) uint64 {
	h := Mix(seed ^ 0x73696d2d73656564) // "sim-seed"
	h = Mix(h + (index+1)*Golden)
	return Mix(h + (stream+1)*0xC2B2AE3D27D4EB4F)
}

// Unit maps a 64-bit hash to [0, 1) using its top 53 bits.
func Unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }
