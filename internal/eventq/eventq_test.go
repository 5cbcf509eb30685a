package eventq

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestOrder: entries come out by time, and in push order within a time.
func TestOrder(t *testing.T) {
	var q Queue[int]
	r := rand.New(rand.NewPCG(1, 2))
	var pushed []rec
	for i := range 2000 {
		at := int64(r.IntN(20))
		seq := q.Push(at, i)
		if seq != uint64(i+1) {
			t.Fatalf("Push #%d returned sequence %d", i, seq)
		}
		pushed = append(pushed, rec{at, seq})
		if i%7 == 0 { // interleave pops with pushes
			pushed = popCheck(t, &q, pushed)
		}
	}
	for q.Len() > 0 {
		pushed = popCheck(t, &q, pushed)
	}
	if len(pushed) != 0 {
		t.Fatalf("%d entries never came out", len(pushed))
	}
	if _, ok := q.Min(); ok {
		t.Error("Min on an empty queue reported an entry")
	}
}

// rec is what the test pushed.
type rec struct {
	at  int64
	seq uint64
}

// popCheck pops one entry and checks it is the least of what was pushed
// and not yet popped.
func popCheck(t *testing.T, q *Queue[int], pending []rec) []rec {
	t.Helper()
	minIdx := 0
	for i, p := range pending {
		m := pending[minIdx]
		if p.at < m.at || p.at == m.at && p.seq < m.seq {
			minIdx = i
		}
	}
	want := pending[minIdx]
	if it, ok := q.Min(); !ok || it.At != want.at || it.Seq != want.seq {
		t.Fatalf("Min = %+v, %v; want at %d seq %d", it, ok, want.at, want.seq)
	}
	it := q.Pop()
	if it.At != want.at || it.Seq != want.seq {
		t.Fatalf("Pop = at %d seq %d, want at %d seq %d", it.At, it.Seq, want.at, want.seq)
	}
	return slices.Delete(pending, minIdx, minIdx+1)
}

// TestPopReleasesValues: a popped entry's slot no longer holds its value,
// so the garbage collector can free it.
func TestPopReleasesValues(t *testing.T) {
	var q Queue[*int]
	for i := range 3 {
		v := i
		q.Push(int64(i), &v)
	}
	q.Pop()
	if tail := q.items[:cap(q.items)][len(q.items)]; tail.Value != nil {
		t.Errorf("the slot freed by Pop still holds %v", *tail.Value)
	}
}

// TestReset: Reset empties the queue; sequence numbers keep increasing.
func TestReset(t *testing.T) {
	var q Queue[string]
	q.Push(1, "a")
	q.Push(2, "b")
	q.Reset()
	if q.Len() != 0 {
		t.Fatalf("Len after Reset = %d", q.Len())
	}
	if seq := q.Push(0, "c"); seq != 3 {
		t.Errorf("sequence after Reset = %d, want 3", seq)
	}
}
