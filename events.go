package tcpct

import (
	"context"
	"time"

	"github.com/fdac824a/tcpct/fsm"
	"github.com/fdac824a/tcpct/table"
)

// Event is one `conntrack -E` notification: an entry was created (NEW),
// changed state or status (UPDATE), or went away (DESTROY), with Reason
// saying why for DESTROY (expired, killed by an RST or a reopen, evicted
// to make room).
type Event struct {
	Type   EventType
	Reason DestroyReason // DESTROY only
	Time   time.Time     // clock of the operation that caused it
	Entry  Entry         // the entry after the change (before it, for DESTROY)
	// SameState marks an UPDATE that changed only [UNREPLIED] or
	// [ASSURED]: conntrack -E prints it without a state
	// (table.Event.SameState).
	SameState bool
}

// Append appends the event as `conntrack -E` prints it: the type
// right-aligned, the seconds left at the event's time (none for DESTROY).
// The zero Event appends nothing.
func (ev *Event) Append(b []byte) []byte {
	if ev.Type == 0 || ev.Entry.p == nil {
		return b
	}
	r := ev.Entry.render(ev.Time.UnixNano())
	if ev.SameState {
		r.State = ""
	}
	return table.AppendEvent(b, ev.Type, &r)
}

// Subscription delivers a tracker's events. With a bounded buffer, when
// the buffer is full the tracker does not wait: it drops the event and
// counts it (Lost), like a netlink socket overrun. An unbounded one loses
// nothing.
type Subscription struct {
	s    *table.Subscription[fsm.Conn]
	p    *fsm.Profile
	acct bool
}

// Subscribe installs the tracker's event subscriber, with room for n
// pending events (n <= 0: no bound, for a caller that drains after every
// packet, as a replay does), replacing any previous subscriber.
//
// On the zero Tracker it returns a Subscription that never delivers.
func (tr *Tracker) Subscribe(n int) *Subscription {
	if tr.t == nil {
		return &Subscription{}
	}
	return &Subscription{s: tr.t.Subscribe(n), p: tr.p, acct: tr.t.Accounting()}
}

func (s *Subscription) convert(e *table.Event[fsm.Conn]) Event {
	return Event{Type: e.Type, Reason: e.Reason, Time: time.Unix(0, e.Time),
		Entry: Entry{Key: e.Key, Conn: e.V, Ref: e.Ref, Counters: e.Counters, acct: s.acct, p: s.p}, SameState: e.SameState}
}

// Poll returns the next pending event without waiting.
// The zero Subscription has none.
func (s *Subscription) Poll() (Event, bool) {
	if s.s == nil {
		return Event{}, false
	}
	e, ok := s.s.Poll()
	if !ok {
		return Event{}, false
	}
	return s.convert(&e), true
}

// Next waits for the next event or for ctx to end.
// The zero Subscription waits for ctx alone.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	if s.s == nil {
		<-ctx.Done()
		return Event{}, ctx.Err()
	}
	e, err := s.s.Next(ctx)
	if err != nil {
		return Event{}, err
	}
	return s.convert(&e), nil
}

// Lost returns how many events overflowed the buffer.
func (s *Subscription) Lost() uint64 {
	if s.s == nil {
		return 0
	}
	return s.s.Lost()
}

// Close detaches the subscription.
func (s *Subscription) Close() {
	if s.s != nil {
		s.s.Close()
	}
}
