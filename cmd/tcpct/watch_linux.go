package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdac824a/tcpct/capture"
)

func init() { openFrameSource = openPacketSocket }

// packetSocket is an AF_PACKET/SOCK_RAW socket bound to one interface:
// every frame the interface receives and every frame the host sends on
// it, link-layer header included, read with recvfrom (no ring buffer).
type packetSocket struct {
	fd       int
	ifindex  int
	name     string
	loopback bool
	pfd      []unix.PollFd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacketSocket(iface string) (frameSource, error) {
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("opening a packet socket: %v (needs root or CAP_NET_RAW)", err)
		}
		return nil, fmt.Errorf("opening a packet socket: %v", err)
	}
	index, flags, err := interfaceOf(fd, iface)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("interface %s: %v", iface, err)
	}
	s := &packetSocket{fd: fd, ifindex: index, name: iface, loopback: flags&unix.IFF_LOOPBACK != 0}
	s.pfd = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	// A larger receive buffer absorbs bursts; as root, beyond rmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding the packet socket to %s: %v", iface, err)
	}
	// Reset the drop counter (reading it clears it).
	_, _ = unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	return s, nil
}

// interfaceOf asks the kernel for an interface's index and flags
// (SIOCGIFINDEX, SIOCGIFFLAGS; netdevice(7)) on socket fd. Package net's
// InterfaceByName would do, but net brings cgo and the resolver into
// every build of the command, a large part of a first build.
func interfaceOf(fd int, name string) (index int, flags uint16, err error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return 0, 0, errors.New("no such network interface")
		}
		return 0, 0, err
	}
	index = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, 0, err
	}
	return index, ifr.Uint16(), nil
}

func (s *packetSocket) describe() string {
	return fmt.Sprintf("%s (index %d)", s.name, s.ifindex)
}

func (s *packetSocket) read(buf []byte, timeout time.Duration) (int, int, capture.LinkType, bool, error) {
	for {
		n, from, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch {
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
			if timeout <= 0 {
				return 0, 0, 0, false, nil
			}
			ms := int((timeout + time.Millisecond - 1) / time.Millisecond)
			timeout = 0
			if _, err := unix.Poll(s.pfd, ms); err != nil && err != unix.EINTR {
				return 0, 0, 0, false, fmt.Errorf("poll on %s: %v", s.name, err)
			}
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, 0, 0, false, fmt.Errorf("reading from %s: %v", s.name, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Ifindex != s.ifindex {
			continue // queued before bind, from another interface
		}
		if s.loopback && ll.Pkttype == unix.PACKET_OUTGOING {
			// lo shows each packet twice: sent (outgoing) and received.
			continue
		}
		var link capture.LinkType
		switch ll.Hatype {
		case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
			link = capture.LinkEthernet
		case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP, unix.ARPHRD_PPP, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6:
			link = capture.LinkRaw
		default:
			// Counted and skipped as a frame that is not IP.
			link = capture.LinkType(0xffff)
		}
		wire := n
		if n > len(buf) {
			n = len(buf)
		}
		return n, wire, link, true, nil
	}
}

func (s *packetSocket) dropped() (uint64, bool) {
	st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, false
	}
	return uint64(st.Drops), true
}

func (s *packetSocket) close() error { return unix.Close(s.fd) }
