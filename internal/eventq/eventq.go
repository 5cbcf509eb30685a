// Package eventq is the project's one event queue: a binary min-heap of
// values ordered by (time, insertion sequence). Entries due at the same
// instant come out in the order they were pushed, never in map or goroutine
// order, which is what makes the deterministic clock (stack.DetClock) and
// the simulated segment (sim/segment) reproducible.
//
// Entries cannot be removed from the middle; a user that cancels one keeps
// the sequence number Push returned and skips stale entries as they come
// out (lazy deletion), which does not change the order of the others.
package eventq

// Item is one entry: its time, the sequence number Push gave it, its value.
type Item[T any] struct {
	At    int64
	Seq   uint64
	Value T
}

// Queue is the heap. The zero value is an empty queue. It is not safe for
// concurrent use.
type Queue[T any] struct {
	items []Item[T]
	seq   uint64
}

// Len returns the number of entries.
func (q *Queue[T]) Len() int { return len(q.items) }

// Push adds v at time at and returns its sequence number, one more than the
// previous Push's.
func (q *Queue[T]) Push(at int64, v T) uint64 {
	q.seq++
	q.items = append(q.items, Item[T]{At: at, Seq: q.seq, Value: v})
	h := q.items
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return q.seq
}

// Min returns the earliest entry without removing it; ok is false when the
// queue is empty.
func (q *Queue[T]) Min() (it Item[T], ok bool) {
	if len(q.items) == 0 {
		return it, false
	}
	return q.items[0], true
}

// Pop removes and returns the earliest entry. The queue must not be empty.
func (q *Queue[T]) Pop() Item[T] {
	h := q.items
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	var zero Item[T]
	h[n] = zero // drop the reference the value may hold
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(&h[r], &h[l]) {
			m = r
		}
		if !less(&h[m], &h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.items = h
	return top
}

// Reset empties the queue and releases its storage; sequence numbers go on
// increasing.
func (q *Queue[T]) Reset() { q.items = nil }

func less[T any](a, b *Item[T]) bool {
	if a.At != b.At {
		return a.At < b.At
	}
	return a.Seq < b.Seq
}
