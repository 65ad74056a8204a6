package kernel

// A minimal NETLINK_NETFILTER client: the two things the runner needs
// (a ctnetlink GET of one tuple, and nfnetlink_log messages) with one
// syscall each way and no goroutines. Constants are from the uapi headers
// include/uapi/linux/netlink.h, netfilter/nfnetlink.h,
// netfilter/nfnetlink_conntrack.h and netfilter/nfnetlink_log.h.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

const (
	nlaFNested   = 0x8000
	nlaTypeMask  = 0x3fff
	nfnlSubsysCT = 1
	nfnlSubsysUL = 4

	ipctnlMsgCtNew = 0
	ipctnlMsgCtGet = 1

	ctaTupleOrig = 1
	ctaStatus    = 3
	ctaProtoinfo = 4
	ctaTimeout   = 7
	// ctaCountersOrig and ctaCountersReply nest ctaCountersPackets and
	// ctaCountersBytes (big-endian 64-bit), sent with nf_conntrack_acct=1.
	ctaCountersOrig    = 9
	ctaCountersReply   = 10
	ctaCountersPackets = 1
	ctaCountersBytes   = 2

	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaIPv6Src    = 3
	ctaIPv6Dst    = 4
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3

	ctaProtoinfoTCP           = 1
	ctaProtoinfoTCPState      = 1
	ctaProtoinfoTCPFlagsOrig  = 4
	ctaProtoinfoTCPFlagsReply = 5

	ipsSeenReply = 1 << 1
	ipsAssured   = 1 << 2
)

// nlSock is one NETLINK_NETFILTER socket.
type nlSock struct {
	fd  int
	seq uint32
	buf []byte
	out []byte
}

// openNL opens a NETLINK_NETFILTER socket in the calling thread's network
// namespace with a receive timeout, so a missing answer is an error and
// not a hang.
func openNL(rcvbuf int) (*nlSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if rcvbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf)
	}
	// Extended ACKs would only make error answers longer.
	return &nlSock{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (s *nlSock) close() {
	if s != nil && s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// begin starts a request: nlmsghdr + nfgenmsg.
func (s *nlSock) begin(typ uint16, flags uint16, family uint8, resID uint16) {
	s.seq++
	b := s.out[:0]
	b = binary.NativeEndian.AppendUint32(b, 0) // length, patched in send
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, s.seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, family, 0)
	b = binary.BigEndian.AppendUint16(b, resID)
	s.out = b
}

// attr appends one attribute; nested attributes are built with
// nest/endNest.
func (s *nlSock) attr(typ uint16, data []byte) {
	b := binary.NativeEndian.AppendUint16(s.out, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	s.out = b
}

func (s *nlSock) nest(typ uint16) int {
	at := len(s.out)
	s.out = binary.NativeEndian.AppendUint16(s.out, 0)
	s.out = binary.NativeEndian.AppendUint16(s.out, typ|nlaFNested)
	return at
}

func (s *nlSock) endNest(at int) {
	binary.NativeEndian.PutUint16(s.out[at:], uint16(len(s.out)-at))
}

func (s *nlSock) send() error {
	binary.NativeEndian.PutUint32(s.out, uint32(len(s.out)))
	return unix.Sendto(s.fd, s.out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// nlMsg is one parsed netlink message.
type nlMsg struct {
	typ   uint16
	seq   uint32
	resID uint16 // nfgenmsg res_id
	attrs []byte // after nfgenmsg; for NLMSG_ERROR the whole payload
}

// recv reads one datagram and splits it into messages.
func (s *nlSock) recv(msgs []nlMsg) ([]nlMsg, error) {
	for {
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return msgs, errors.New("no answer from the kernel within 2s")
		}
		if err != nil {
			return msgs, err
		}
		b := s.buf[:n]
		for len(b) >= 16 {
			l := int(binary.NativeEndian.Uint32(b))
			if l < 16 || l > len(b) {
				return msgs, fmt.Errorf("netlink: bad message length %d", l)
			}
			m := nlMsg{typ: binary.NativeEndian.Uint16(b[4:]), seq: binary.NativeEndian.Uint32(b[8:])}
			// Copied: the next recv reuses the buffer.
			p := append([]byte(nil), b[16:l]...)
			if m.typ == unix.NLMSG_ERROR || m.typ == unix.NLMSG_DONE {
				m.attrs = p
			} else if len(p) >= 4 {
				m.resID = binary.BigEndian.Uint16(p[2:])
				m.attrs = p[4:]
			}
			msgs = append(msgs, m)
			b = b[(l+3)&^3:]
		}
		return msgs, nil
	}
}

// eachAttr calls f for every attribute in b.
func eachAttr(b []byte, f func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[4:l])
		b = b[min((l+3)&^3, len(b)):]
	}
}

// errno returns the error carried by an NLMSG_ERROR message (nil for an
// ACK).
func (m *nlMsg) errno() error {
	if len(m.attrs) < 4 {
		return errors.New("netlink: short error message")
	}
	if e := int32(binary.NativeEndian.Uint32(m.attrs)); e != 0 {
		return unix.Errno(-e)
	}
	return nil
}

// request sends the built message and collects the answers up to and
// including the ACK or error with its sequence number.
func (s *nlSock) request(msgs []nlMsg) ([]nlMsg, error) {
	if err := s.send(); err != nil {
		return msgs, err
	}
	for {
		start := len(msgs)
		var err error
		msgs, err = s.recv(msgs)
		if err != nil {
			return msgs, err
		}
		for _, m := range msgs[start:] {
			if m.seq == s.seq && m.typ == unix.NLMSG_ERROR {
				return msgs, m.errno()
			}
		}
	}
}

// ctEntry is what one ctnetlink GET tells about an entry.
type ctEntry struct {
	state   uint8
	timeout uint32
	status  uint32
	// packets and bytes per direction (original, reply), with acct on.
	packets, bytes [2]uint64
}

// ctGet looks up the entry holding the tuple src→dst (either direction).
// found is false when there is none (ENOENT).
func (s *nlSock) ctGet(src, dst netip.AddrPort, scratch []nlMsg) (e ctEntry, found bool, err error) {
	s.begin(nfnlSubsysCT<<8|ipctnlMsgCtGet, unix.NLM_F_REQUEST|unix.NLM_F_ACK, family(src), 0)
	s.tuple(src, dst)
	msgs, err := s.request(scratch[:0])
	if errors.Is(err, unix.ENOENT) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	for _, m := range msgs {
		if m.seq != s.seq || m.typ != nfnlSubsysCT<<8|ipctnlMsgCtNew {
			continue
		}
		found = true
		eachAttr(m.attrs, func(typ uint16, d []byte) {
			switch typ {
			case ctaStatus:
				if len(d) >= 4 {
					e.status = binary.BigEndian.Uint32(d)
				}
			case ctaTimeout:
				if len(d) >= 4 {
					e.timeout = binary.BigEndian.Uint32(d)
				}
			case ctaCountersOrig, ctaCountersReply:
				dir := typ - ctaCountersOrig
				eachAttr(d, func(typ uint16, d []byte) {
					if len(d) < 8 {
						return
					}
					switch typ {
					case ctaCountersPackets:
						e.packets[dir] = binary.BigEndian.Uint64(d)
					case ctaCountersBytes:
						e.bytes[dir] = binary.BigEndian.Uint64(d)
					}
				})
			case ctaProtoinfo:
				eachAttr(d, func(typ uint16, d []byte) {
					if typ != ctaProtoinfoTCP {
						return
					}
					eachAttr(d, func(typ uint16, d []byte) {
						if typ == ctaProtoinfoTCPState && len(d) >= 1 {
							e.state = d[0]
						}
					})
				})
			}
		})
	}
	if !found {
		return e, false, errors.New("ctnetlink: ACK without the entry")
	}
	return e, true, nil
}

// family is the nfgenmsg family of the tuple src→dst.
func family(src netip.AddrPort) uint8 {
	if src.Addr().Is6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// tuple appends CTA_TUPLE_ORIG for the TCP tuple src→dst (ctnetlink finds
// the entry from either of its tuples).
func (s *nlSock) tuple(src, dst netip.AddrPort) {
	t := s.nest(ctaTupleOrig)
	ip := s.nest(ctaTupleIP)
	if src.Addr().Is4() {
		a, b := src.Addr().As4(), dst.Addr().As4()
		s.attr(ctaIPv4Src, a[:])
		s.attr(ctaIPv4Dst, b[:])
	} else {
		a, b := src.Addr().As16(), dst.Addr().As16()
		s.attr(ctaIPv6Src, a[:])
		s.attr(ctaIPv6Dst, b[:])
	}
	s.endNest(ip)
	pr := s.nest(ctaTupleProto)
	s.attr(ctaProtoNum, []byte{unix.IPPROTO_TCP})
	s.attr(ctaProtoSrc, binary.BigEndian.AppendUint16(nil, src.Port()))
	s.attr(ctaProtoDst, binary.BigEndian.AppendUint16(nil, dst.Port()))
	s.endNest(pr)
	s.endNest(t)
}

// ctSetTCPFlags rewrites, in the entry holding the tuple src→dst, the
// bits of mask in the TCP flags (ip_ct_tcp_state.flags) of the original
// or the reply direction to those of flags: an update of an existing
// entry (IPCTNL_MSG_CT_NEW without NLM_F_CREATE) whose
// CTA_PROTOINFO_TCP_FLAGS_* attribute nlattr_to_tcp applies
// (net/netfilter/nf_conntrack_proto_tcp.c), as conntrackd's updates do.
func (s *nlSock) ctSetTCPFlags(src, dst netip.AddrPort, reply bool, mask, flags uint8, scratch []nlMsg) error {
	s.begin(nfnlSubsysCT<<8|ipctnlMsgCtNew, unix.NLM_F_REQUEST|unix.NLM_F_ACK, family(src), 0)
	s.tuple(src, dst)
	p := s.nest(ctaProtoinfo)
	tcp := s.nest(ctaProtoinfoTCP)
	typ := uint16(ctaProtoinfoTCPFlagsOrig)
	if reply {
		typ = ctaProtoinfoTCPFlagsReply
	}
	s.attr(typ, []byte{flags & mask, mask}) // struct nf_ct_tcp_flags
	s.endNest(tcp)
	s.endNest(p)
	_, err := s.request(scratch[:0])
	return err
}
