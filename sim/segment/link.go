package segment

import (
	"errors"
	"fmt"
	"time"
)

// MaxDelay bounds the link model's delays.
const MaxDelay = time.Minute

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid simulation configuration")

// LinkModel describes the segment's delivery faults. The zero value is an
// ideal segment: every frame reaches every port it concerns at once.
//
// Delay, jitter, reordering and duplication act on the frame (the segment
// is a shared medium: a frame reaches all receivers at the same time); loss
// is decided per receiver. Every decision is a hash of (seed, frame number,
// receiver), never a draw from a shared generator, so whether one port
// receives a frame never shifts the dice for another.
type LinkModel struct {
	// Latency is added to every frame's delivery, 0..MaxDelay.
	Latency time.Duration
	// Jitter adds a uniform random delay in [0, Jitter], 0..MaxDelay.
	Jitter time.Duration
	// Loss is the probability that a receiver misses a frame, 0..1.
	Loss float64
	// Dup is the probability that a frame is delivered a second time,
	// DupDelay (default 100µs) after the first copy, 0..1.
	Dup      float64
	DupDelay time.Duration
	// Reorder is the probability that a frame is held back by ReorderDelay
	// (default 5ms), letting later frames overtake it, 0..1.
	Reorder      float64
	ReorderDelay time.Duration
	// Echo is the probability that a frame is also delivered back to its
	// sender EchoDelay (default 10µs) later, as repeaters, some Wi-Fi
	// access points and some USB links do; PortConfig.Echo adds a
	// per-port probability. 0..1.
	Echo      float64
	EchoDelay time.Duration
}

// WithDefaults returns m with the zero delays of duplicates, held-back
// frames and echoes set to their defaults.
func (m LinkModel) WithDefaults() LinkModel {
	if m.DupDelay == 0 {
		m.DupDelay = 100 * time.Microsecond
	}
	if m.ReorderDelay == 0 {
		m.ReorderDelay = 5 * time.Millisecond
	}
	if m.EchoDelay == 0 {
		m.EchoDelay = 10 * time.Microsecond
	}
	return m
}

// Validate reports the first out-of-range field, naming it, its value and
// the accepted range.
func (m LinkModel) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"latency", m.Latency}, {"jitter", m.Jitter}, {"dup delay", m.DupDelay},
		{"reorder delay", m.ReorderDelay}, {"echo delay", m.EchoDelay},
	} {
		if d.v < 0 || d.v > MaxDelay {
			return fmt.Errorf("%w: link %s %v is out of range 0..%v", ErrInvalid, d.name, d.v, MaxDelay)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", m.Loss}, {"dup", m.Dup}, {"reorder", m.Reorder}, {"echo", m.Echo}} {
		if err := CheckProbability("link "+p.name, p.v); err != nil {
			return err
		}
	}
	return nil
}

// CheckProbability returns an error naming the value unless 0 <= v <= 1.
func CheckProbability(name string, v float64) error {
	if !(v >= 0 && v <= 1) { // also catches NaN
		return fmt.Errorf("%w: %s %v is out of range 0..1", ErrInvalid, name, v)
	}
	return nil
}

// ideal reports whether frames can be delivered at once, without the heap.
func (m LinkModel) ideal() bool {
	return m.Latency == 0 && m.Jitter == 0 && m.Dup == 0 && m.Reorder == 0 && m.Echo == 0
}
