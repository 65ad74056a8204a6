package table

import (
	"context"
	"sync"
	"sync/atomic"
)

// EventType is the kind of a conntrack event, as `conntrack -E` prints it.
type EventType uint8

const (
	EventNew EventType = iota + 1
	EventUpdate
	EventDestroy
)

func (e EventType) String() string {
	switch e {
	case EventNew:
		return "NEW"
	case EventUpdate:
		return "UPDATE"
	case EventDestroy:
		return "DESTROY"
	}
	return "?"
}

// Reason says why an entry was destroyed.
type Reason uint8

const (
	ReasonNone    Reason = iota
	ReasonExpired        // deadline passed (Expire, or reclaimed by an insert/eviction)
	ReasonKilled         // deleted or replaced by the caller (RST, reopen)
	ReasonEvicted        // early-dropped to make room for a new connection
)

func (r Reason) String() string {
	switch r {
	case ReasonExpired:
		return "expired"
	case ReasonKilled:
		return "killed"
	case ReasonEvicted:
		return "evicted"
	}
	return "none"
}

// Event is one NEW / UPDATE / DESTROY notification. It is a value (pointer-free
// if V is), so delivering it allocates nothing.
type Event[V any] struct {
	Type   EventType
	Reason Reason // DESTROY only
	Time   int64  // the now of the operation that caused it
	Ref    Ref
	Key    Key // original tuple
	Meta   Meta
	V      V
	// SameState marks an UPDATE that changed only the flags
	// ([UNREPLIED] cleared, [ASSURED] set), not the state. conntrack -E
	// prints no state for it: ctnetlink sends the TCP state only with the
	// kernel's IPCT_PROTOINFO event, which a state change raises (Linux
	// 6.18, a picked-up connection's reply and its ASSURED).
	SameState bool
	// Counters, on a DESTROY from a table with Config.Acct, are the
	// entry's final accounting; conntrack -E prints them only there
	// (ctnetlink dumps CTA_COUNTERS with IPCT_DESTROY alone).
	Counters Counters
}

// Subscription receives events. With a bounded buffer the table never
// waits for it: when the buffer is full the event is dropped and counted
// (Lost, and Stats.EventsLost), like a netlink socket overrun (ENOBUFS).
// Without a bound nothing is lost and the queue grows until the
// subscriber reads it: the choice of a caller that drains after every
// operation (a replay, where one Expire may reclaim the whole table).
type Subscription[V any] struct {
	ch   chan Event[V] // bounded
	lost atomic.Uint64
	t    *Table[V]

	mu   sync.Mutex // unbounded: q[head:] are pending
	q    []Event[V]
	head int
	wake chan struct{}
}

// Subscribe installs the (single) event subscriber with a buffer of n
// events, or an unbounded queue for n <= 0, replacing any previous one.
// With no subscriber, emitting costs one atomic pointer load and a branch.
func (t *Table[V]) Subscribe(n int) *Subscription[V] {
	s := &Subscription[V]{t: t}
	if n > 0 {
		s.ch = make(chan Event[V], n)
	} else {
		s.wake = make(chan struct{}, 1)
	}
	t.sub.Store(s)
	return s
}

// C is the event channel of a bounded subscription (nil for an unbounded
// one: use Poll and Next). It is never closed (writers may still hold the
// subscription); stop reading after Close.
func (s *Subscription[V]) C() <-chan Event[V] { return s.ch }

// Poll returns the next pending event without waiting.
func (s *Subscription[V]) Poll() (Event[V], bool) {
	if s.ch != nil {
		select {
		case e := <-s.ch:
			return e, true
		default:
			return Event[V]{}, false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.q) {
		return Event[V]{}, false
	}
	e := s.q[s.head]
	s.q[s.head] = Event[V]{}
	if s.head++; s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	}
	return e, true
}

// Next waits for the next event or for ctx to end.
func (s *Subscription[V]) Next(ctx context.Context) (Event[V], error) {
	for {
		if s.ch != nil {
			select {
			case e := <-s.ch:
				return e, nil
			case <-ctx.Done():
				return Event[V]{}, ctx.Err()
			}
		}
		if e, ok := s.Poll(); ok {
			return e, nil
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Event[V]{}, ctx.Err()
		}
	}
}

// Lost returns how many events this subscriber missed.
func (s *Subscription[V]) Lost() uint64 { return s.lost.Load() }

// Close detaches the subscription; later events are not delivered.
func (s *Subscription[V]) Close() { s.t.sub.CompareAndSwap(s, nil) }

func (t *Table[V]) subscribed() *Subscription[V] { return t.sub.Load() }

func (t *Table[V]) deliver(s *Subscription[V], ev *Event[V]) {
	if s.ch == nil {
		s.mu.Lock()
		s.q = append(s.q, *ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	select {
	case s.ch <- *ev:
	default:
		s.lost.Add(1)
		t.stat().lost.Add(1)
	}
}
