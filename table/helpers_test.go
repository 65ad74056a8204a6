package table

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
)

// val is a 72-byte pointer-free value, the size of fsm.Conn, whose last word
// is a checksum of the others: a torn read (half old, half new) breaks it.
type val struct {
	W   [8]uint64
	Sum uint64
}

func mkval(x uint64) val {
	var v val
	for i := range v.W {
		v.W[i] = (x + uint64(i)) * 0x9e3779b97f4a7c15
	}
	v.Sum = v.sum()
	return v
}

func (v *val) sum() uint64 {
	s := uint64(0x51ed27)
	for _, w := range v.W {
		s = (s ^ w) * 0x100000001b3
	}
	return s
}

func (v *val) ok() bool { return v.Sum == v.sum() }

var testStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"}

const (
	stSynSent     = 1
	stSynRecv     = 2
	stEstablished = 3
	stTimeWait    = 7
)

const sec = int64(1e9)

func newTable(t testing.TB, max int) *Table[val] {
	t.Helper()
	tb, err := New[val](Config{Max: max, Seed: 42, StateNames: testStates})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// key4 returns a distinct IPv4 key for every i.
func key4(i uint32) Key {
	var s, d [4]byte
	binary.BigEndian.PutUint32(s[:], 0x0a000000|i>>16)
	binary.BigEndian.PutUint32(d[:], 0xc0a80000|i&0xffff)
	return MakeKey4(s, d, uint16(1024+i%50000), 80)
}

func key6(i uint32) Key {
	return KeyFromAddrPorts(
		netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(1024+i%50000)),
		netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 15: byte(i), 14: byte(i >> 8), 13: byte(i >> 16)}), 443))
}

func long() bool { return os.Getenv("TCPCT_LONG") != "" }

func mustInsert(t testing.TB, tb *Table[val], k Key, v val, m Meta, now int64) Ref {
	t.Helper()
	r, d, st := tb.Insert(k, v, m, now)
	if st != Inserted || d != Original || r.IsZero() {
		t.Fatalf("Insert(%v) = %v, %v, %v; want inserted", k, r, d, st)
	}
	return r
}

// live counts the entries Range shows at now.
func liveKeys(tb *Table[val], now int64) map[Key]int {
	m := map[Key]int{}
	tb.Range(now, func(s *Snapshot[val]) bool { m[s.Key]++; return true })
	return m
}
