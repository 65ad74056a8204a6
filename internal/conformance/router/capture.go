package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdac824a/tcpct/capture"
)

// A stamp is one verdict code the router writes into the TTL or hop
// limit. The endpoints send with 64 (Linux's default), so an unstamped
// packet arrives with 63 and cannot be taken for one.
type stamp struct {
	code    uint8
	match   string // the nft match selecting the verdict
	ct, dir string // the verdict, as tcpct spells it
}

// stampOther is written when no rule matched: it must never appear.
const stampOther = 249

var stamps = []stamp{
	{241, "ct state new ct direction original", "NEW", "original"},
	{242, "ct state new ct direction reply", "NEW", "reply"},
	{243, "ct state established ct direction original", "ESTABLISHED", "original"},
	{244, "ct state established ct direction reply", "ESTABLISHED", "reply"},
	{245, "ct state related ct direction original", "RELATED", "original"},
	{246, "ct state related ct direction reply", "RELATED", "reply"},
	{247, "ct state invalid", "INVALID", ""},
	{248, "ct state untracked", "UNTRACKED", ""},
}

// Verdict is the kernel's decision on one packet, read from its stamp.
type Verdict struct {
	CT, Dir string // Dir is empty for INVALID and UNTRACKED
}

func (v Verdict) String() string {
	if v.Dir == "" {
		return v.CT
	}
	return v.CT + " " + v.Dir
}

// decodeStamp reads the verdict from an outgoing packet's TTL or hop limit.
func decodeStamp(ttl uint8) (Verdict, error) {
	for _, s := range stamps {
		if s.code == ttl {
			return Verdict{s.ct, s.dir}, nil
		}
	}
	if ttl == stampOther {
		return Verdict{}, errors.New("no ct state rule matched the packet")
	}
	return Verdict{}, fmt.Errorf("TTL/hop limit %d is no stamp: the packet passed no forward chain", ttl)
}

// Frame is one frame the router's capture socket saw: its network-layer
// bytes, whether it was going out, on which interface, and when.
type Frame struct {
	TS      time.Time
	Out     bool
	Ifindex int
	Data    []byte
}

// Capture reads every frame of the router namespace from one AF_PACKET
// socket (all interfaces, both directions), so frames come in the order
// the router handled them: a forwarded packet's incoming copy, conntrack
// and the stamp, and its outgoing copy run in one softirq, and with every
// packet steered to one CPU (see Lab.Serialized) one packet after the
// other.
type Capture struct {
	fd     int
	mu     sync.Mutex
	frames []Frame
	stop   chan struct{}
	done   chan error
}

// StartCapture opens the capture socket in the router namespace and reads
// until Stop.
func (l *Lab) StartCapture() (*Capture, error) {
	c := &Capture{fd: -1, stop: make(chan struct{}), done: make(chan error, 1)}
	err := l.Do(Router, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(c.fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(c.fd)
		return nil, err
	}
	go func() { c.done <- c.loop() }()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() error {
	buf := make([]byte, 1<<16)
	oob := make([]byte, 128)
	stopping := false
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			if stopping {
				return nil
			}
			select {
			case <-c.stop:
				stopping = true // drain what is queued, then stop
			default:
			}
			continue
		}
		if err != nil {
			return err
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		f := Frame{Out: ll.Pkttype == unix.PACKET_OUTGOING, Ifindex: ll.Ifindex, Data: append([]byte(nil), buf[:n]...)}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(m.Data))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
					f.TS = time.Unix(sec, nsec)
				}
			}
		}
		if f.TS.IsZero() {
			f.TS = time.Now()
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		select {
		case <-c.stop:
			stopping = true
		default:
		}
	}
}

// Stop ends the capture once the socket's queue is drained and returns
// every frame, with the socket's drop count (frames the kernel could not
// queue: they make the run unusable).
func (c *Capture) Stop() (frames []Frame, drops uint32, err error) {
	close(c.stop)
	err = <-c.done
	if st, e := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); e == nil {
		drops = st.Drops
	}
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, drops, err
}

// Pair is one TCP packet as the router received it (the front) with the
// verdict stamped on its forwarded copy (the back).
type Pair struct {
	In      Frame
	Verdict Verdict
	// Forwarded is false when no outgoing copy was seen: the router did
	// not forward the packet, and its verdict is unknown.
	Forwarded bool
	Err       error // a stamp that could not be read
}

// Match pairs every incoming TCP frame with its outgoing copy. Copies
// are found by their bytes with the TTL or hop limit (and the IPv4 header
// checksum) masked; equal packets (duplicates) pair in order. Outgoing
// TCP frames without an incoming original are counted in orphans.
func Match(frames []Frame) (pairs []Pair, orphans int) {
	pending := map[string][]int{}
	for _, f := range frames {
		if !isTCP(f.Data) {
			continue
		}
		k := maskedKey(f.Data)
		if !f.Out {
			pending[k] = append(pending[k], len(pairs))
			pairs = append(pairs, Pair{In: f})
			continue
		}
		q := pending[k]
		if len(q) == 0 {
			orphans++
			continue
		}
		p := &pairs[q[0]]
		pending[k] = q[1:]
		p.Forwarded = true
		p.Verdict, p.Err = decodeStamp(hopField(f.Data))
	}
	return pairs, orphans
}

func isTCP(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		return len(b) >= 20 && b[9] == unix.IPPROTO_TCP
	case 6:
		return len(b) >= 40 && b[6] == unix.IPPROTO_TCP
	}
	return false
}

// hopField is the TTL or hop limit.
func hopField(b []byte) uint8 {
	if b[0]>>4 == 4 {
		return b[8]
	}
	return b[7]
}

func maskedKey(b []byte) string {
	k := []byte(string(b))
	if k[0]>>4 == 4 {
		k[8], k[10], k[11] = 0, 0, 0
	} else {
		k[7] = 0
	}
	return string(k)
}

// WriteFront writes the incoming TCP packets of pairs as a raw-IP pcap,
// with the router's receive timestamps: the capture tcpct replays.
func WriteFront(w io.Writer, pairs []Pair) error {
	pw, err := capture.NewWriter(w, capture.LinkRaw, 65535)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		if err := pw.WritePacket(p.In.TS, p.In.Data); err != nil {
			return err
		}
	}
	return nil
}
