package router

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Impairment is what the endpoints' output does to TCP packets: each rate
// is a probability per packet (at most one impairment per packet, tried in
// the order drop, duplicate, corrupt, delay).
type Impairment struct {
	Drop      float64
	Duplicate float64 // the packet and an exact copy
	Corrupt   float64 // one bit flipped in the TCP header or payload
	Delay     float64 // held back up to MaxDelay: later packets overtake it
	MaxDelay  time.Duration
	Seed      uint64 // 0: from the clock
}

func (im Impairment) active() bool {
	return im.Drop > 0 || im.Duplicate > 0 || im.Corrupt > 0 || im.Delay > 0
}

// ImpairStats counts what the impairment programs did.
type ImpairStats struct {
	Seen, Dropped, Duplicated, Corrupted, Delayed uint64
}

func (s *ImpairStats) add(o ImpairStats) {
	s.Seen += o.Seen
	s.Dropped += o.Dropped
	s.Duplicated += o.Duplicated
	s.Corrupted += o.Corrupted
	s.Delayed += o.Delayed
}

func (s ImpairStats) String() string {
	return fmt.Sprintf("%d packets queued: %d dropped, %d duplicated, %d corrupted, %d delayed",
		s.Seen, s.Dropped, s.Duplicated, s.Corrupted, s.Delayed)
}

// Constants of include/uapi/linux/netfilter/nfnetlink_queue.h and
// nfnetlink.h.
const (
	nfnlSubsysQueue = 3

	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaPayload    = 10

	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3
	nfqaCfgMask        = 4
	nfqaCfgFlags       = 5

	nfqnlCfgCmdBind   = 1
	nfqnlCopyPacket   = 2
	nfqaCfgFFailOpen  = 1
	nfDrop, nfAccept  = 0, 1
	queueNum          = 0
	dupMark           = 0x7c7c // SO_MARK of the copies: the queue rule skips them
	impairQueueMaxlen = 8192
)

// impairer is one endpoint's NFQUEUE program.
type impairer struct {
	fd         int // NETLINK_NETFILTER, in the endpoint's namespace
	raw4, raw6 int // sends the duplicates, marked
	cfg        Impairment
	rng        *rand.Rand // used by the read loop only

	mu   sync.Mutex // serializes netlink writes and guards st
	st   ImpairStats
	seq  uint32
	stop chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // delayed verdicts in flight
}

// startImpairer installs the queue rules in an endpoint's namespace (its
// OUTPUT hook, both families, TCP without the duplicate mark) and starts
// the program that answers the queue.
func (l *Lab) startImpairer(e Endpoint, cfg Impairment, salt uint64) (*impairer, error) {
	for _, c := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("impairments need %s (apt-get install iptables): the kernel has the xtables NFQUEUE target but no nft queue expression", c)
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	im := &impairer{fd: -1, raw4: -1, raw6: -1, cfg: cfg, rng: rand.New(rand.NewPCG(seed, salt)),
		stop: make(chan struct{}), done: make(chan struct{})}
	err := l.Do(e, func() error {
		var err error
		if im.fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER); err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if im.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return err
		}
		if im.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		im.closeFDs()
		return nil, err
	}
	for _, fd := range []int{im.raw4, im.raw6} {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, dupMark)
	}
	if err := unix.Bind(im.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		im.closeFDs()
		return nil, err
	}
	_ = unix.SetsockoptInt(im.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	_ = unix.SetsockoptTimeval(im.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := im.configure(); err != nil {
		im.closeFDs()
		return nil, fmt.Errorf("nfqueue on %s: %w", e, err)
	}
	for _, c := range []string{"iptables", "ip6tables"} {
		if _, err := l.Exec(e, "", c, "-w", "-A", "OUTPUT", "-p", "tcp", "-m", "mark", "!", "--mark", fmt.Sprint(dupMark),
			"-j", "NFQUEUE", "--queue-num", fmt.Sprint(queueNum), "--queue-bypass"); err != nil {
			im.closeFDs()
			return nil, err
		}
	}
	go im.loop()
	return im, nil
}

func (im *impairer) closeFDs() {
	for _, fd := range []int{im.fd, im.raw4, im.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// msg builds one nfnetlink message to the queue subsystem.
func (im *impairer) msg(typ uint16, flags uint16, attrs ...[]byte) []byte {
	im.seq++
	b := binary.NativeEndian.AppendUint32(nil, 0)
	b = binary.NativeEndian.AppendUint16(b, nfnlSubsysQueue<<8|typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, im.seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, unix.AF_UNSPEC, 0)
	b = binary.BigEndian.AppendUint16(b, queueNum)
	for _, a := range attrs {
		b = append(b, a...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func attr(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	return append(b, data...)
}

// configure binds queue 0 and asks for whole packets, failing open (a
// full queue accepts instead of dropping: only chosen drops are drops).
func (im *impairer) configure() error {
	msgs := [][]byte{
		im.msg(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attr(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, 0})),
		im.msg(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK,
			attr(nfqaCfgParams, []byte{0, 0, 0xff, 0xff, nfqnlCopyPacket}),
			attr(nfqaCfgQueueMaxlen, binary.BigEndian.AppendUint32(nil, impairQueueMaxlen)),
			attr(nfqaCfgMask, binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)),
			attr(nfqaCfgFlags, binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen))),
	}
	buf := make([]byte, 8192)
	for _, m := range msgs {
		if err := unix.Sendto(im.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		n, _, err := unix.Recvfrom(im.fd, buf, 0)
		if err != nil {
			return err
		}
		if n >= 20 && binary.NativeEndian.Uint16(buf[4:]) == unix.NLMSG_ERROR {
			if e := int32(binary.NativeEndian.Uint32(buf[16:])); e != 0 {
				return unix.Errno(-e)
			}
		}
	}
	return nil
}

func (im *impairer) loop() {
	defer close(im.done)
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-im.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(im.fd, buf, 0)
		if err == unix.EINTR || err == unix.EAGAIN || err == unix.EWOULDBLOCK || err == unix.ENOBUFS {
			continue
		}
		if err != nil {
			return
		}
		b := buf[:n]
		for len(b) >= 16 {
			l := int(binary.NativeEndian.Uint32(b))
			if l < 16 || l > len(b) {
				break
			}
			if binary.NativeEndian.Uint16(b[4:]) == nfnlSubsysQueue<<8|nfqnlMsgPacket && l >= 20 {
				im.packet(b[20:l])
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// packet decides one queued packet's fate.
func (im *impairer) packet(attrs []byte) {
	var id uint32
	var payload []byte
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		if l < 4 || l > len(attrs) {
			break
		}
		switch binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff {
		case nfqaPacketHdr:
			if l >= 8 {
				id = binary.BigEndian.Uint32(attrs[4:])
			}
		case nfqaPayload:
			payload = append([]byte(nil), attrs[4:l]...)
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	r, c := im.rng.Float64(), im.cfg
	im.mu.Lock()
	im.st.Seen++
	im.mu.Unlock()
	switch {
	case simultaneousSYN(payload):
		// Held so that the other side's SYN has left before this one
		// arrives: the SYNs cross in the router.
		im.wg.Add(1)
		time.AfterFunc(simultaneousHold, func() {
			defer im.wg.Done()
			im.verdict(id, nfAccept, nil)
		})
	case r < c.Drop:
		im.count(func(s *ImpairStats) { s.Dropped++ })
		im.verdict(id, nfDrop, nil)
	case r < c.Drop+c.Duplicate:
		im.count(func(s *ImpairStats) { s.Duplicated++ })
		im.verdict(id, nfAccept, nil)
		im.sendCopy(payload)
	case r < c.Drop+c.Duplicate+c.Corrupt && len(payload) > 0:
		im.count(func(s *ImpairStats) { s.Corrupted++ })
		im.verdict(id, nfAccept, corrupt(payload, im.rng))
	case r < c.Drop+c.Duplicate+c.Corrupt+c.Delay && c.MaxDelay > 0:
		im.count(func(s *ImpairStats) { s.Delayed++ })
		d := time.Duration(im.rng.Int64N(int64(c.MaxDelay))) + 1
		im.wg.Add(1)
		time.AfterFunc(d, func() {
			defer im.wg.Done()
			im.verdict(id, nfAccept, nil)
		})
	default:
		im.verdict(id, nfAccept, nil)
	}
}

func (im *impairer) count(f func(*ImpairStats)) {
	im.mu.Lock()
	f(&im.st)
	im.mu.Unlock()
}

// verdict answers one packet; a changed payload replaces the packet.
// The kernel fills in a pending checksum before it copies a packet to the
// queue and sends a replaced one as it is, so a flipped bit reaches the
// router with a bad TCP checksum (measured: 39 of the 40 corrupted packets
// of a CI-size run).
func (im *impairer) verdict(id uint32, v uint32, payload []byte) {
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	im.mu.Lock()
	defer im.mu.Unlock()
	attrs := [][]byte{attr(nfqaVerdictHdr, hdr)}
	if payload != nil {
		attrs = append(attrs, attr(nfqaPayload, payload))
	}
	_ = unix.Sendto(im.fd, im.msg(nfqnlMsgVerdict, unix.NLM_F_REQUEST, attrs...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// Ports of simultaneous opens: the client's are in
// [simultaneousPorts, +1000), the server's in [+1000, +2000).
const (
	simultaneousPorts = 61000
	simultaneousHold  = 20 * time.Millisecond
)

// simultaneousSYN says whether p is a SYN without ACK from a port of a
// simultaneous open.
func simultaneousSYN(p []byte) bool {
	off := 0
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		off = int(p[0]&15) * 4
	case len(p) >= 40 && p[0]>>4 == 6:
		off = 40
	default:
		return false
	}
	if len(p) < off+14 {
		return false
	}
	sport := int(binary.BigEndian.Uint16(p[off:]))
	return p[off+13]&0x12 == 0x02 && sport >= simultaneousPorts && sport < simultaneousPorts+2000
}

// corrupt flips one bit of the TCP header or payload (never the IP
// header: the packet must still be routed to the same place).
func corrupt(p []byte, rng *rand.Rand) []byte {
	q := append([]byte(nil), p...)
	off := 0
	switch q[0] >> 4 {
	case 4:
		off = int(q[0]&15) * 4
	case 6:
		off = 40
	}
	if off >= len(q) {
		return q
	}
	i := off + rng.IntN(len(q)-off)
	q[i] ^= 1 << rng.IntN(8)
	return q
}

// sendCopy sends an exact copy of a packet through a raw socket, marked so
// that the queue rule lets it pass.
func (im *impairer) sendCopy(p []byte) {
	if len(p) < 40 {
		return
	}
	switch p[0] >> 4 {
	case 4:
		var a [4]byte
		copy(a[:], p[16:20])
		_ = unix.Sendto(im.raw4, p, 0, &unix.SockaddrInet4{Addr: a})
	case 6:
		var a [16]byte
		copy(a[:], p[24:40])
		_ = unix.Sendto(im.raw6, p, 0, &unix.SockaddrInet6{Addr: a})
	}
}

func (im *impairer) stats() ImpairStats {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.st
}

// close stops the program; delayed packets still get their verdicts
// first.
func (im *impairer) close() {
	close(im.stop)
	<-im.done
	im.wg.Wait()
	im.closeFDs()
}
