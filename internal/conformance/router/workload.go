package router

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Workload is the traffic a run sends through the router: Workers
// goroutines each open connections one after the other, a scenario drawn
// at random for each, until Duration has passed; then every connection is
// left to finish.
type Workload struct {
	Duration time.Duration
	Workers  int
	Seed     uint64 // 0: from the clock
	// Idle is how long an idle connection pauses between its two
	// exchanges: longer than the router's established timeout, so the
	// second exchange is picked up mid-stream.
	Idle time.Duration
	// FeaturePeriod is how often the endpoints' window scaling,
	// timestamps and SACK are switched on or off at random (0: never,
	// all on).
	FeaturePeriod time.Duration
	// Hold connections are opened when the workers are done and stay
	// open, established or half closed by the server, until AtEnd
	// returns: they keep entries in the router's table for a dump.
	Hold int
	// AtEnd, if set, runs when every worker is done and the held
	// connections are open, once the endpoints are quiet; quiet is
	// Quiesce's error (nil: no socket will send on its own).
	AtEnd func(quiet error)
}

// Scenarios of the workload, each a kind of connection.
var scenarios = []struct {
	name   string
	weight int
}{
	{"request-response", 30}, // small request, small response, client closes first
	{"server-closes", 10},    // the server closes first (its FIN first)
	{"upload", 4},            // bulk client → server
	{"download", 4},          // bulk server → client
	{"half-close", 8},        // client shuts down its sending side, then reads the answer
	{"client-abort", 6},      // SO_LINGER 0 by the client in the middle of the answer
	{"server-abort", 6},      // SO_LINGER 0 by the server after the request
	{"refused", 8},           // SYN to a closed port, RST back
	{"small-mss", 6},         // TCP_MAXSEG 88..536 on the client, a few kB each way
	{"port-reuse", 6},        // the same client port again, after the server closed first
	{"idle", 2},              // pause past the established timeout, then more data
	{"simultaneous-open", 3}, // both sides connect to each other
}

// WorkloadStats counts connections per scenario, and endpoint errors
// (timeouts, resets) per scenario and message: with impairments some are
// expected, and none of them spoils the comparison.
type WorkloadStats struct {
	Conns  map[string]int
	Errors map[string]int
}

func (s WorkloadStats) String() string {
	var b strings.Builder
	for _, k := range sortedKeysInt(s.Conns) {
		fmt.Fprintf(&b, " %s=%d", k, s.Conns[k])
	}
	n := 0
	for _, v := range s.Errors {
		n += v
	}
	fmt.Fprintf(&b, "; %d endpoint errors", n)
	return strings.TrimSpace(b.String())
}

func sortedKeysInt(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The server's protocol: a 9-byte header (op flags, request length,
// response length), the request, the response; then the next header, or
// what the flags say. reqUntilEOF: the request runs to the client's FIN.
const (
	flagServerClose = 1 << iota
	flagServerAbort
	flagReqUntilEOF
)

const (
	servicePort = 7000
	closedPort  = 7001
)

// Run sends the workload through the lab and returns what the endpoints
// saw. The server listens on both families; half of the connections use
// IPv6.
func (l *Lab) Run(ctx context.Context, w Workload) (WorkloadStats, error) {
	st := WorkloadStats{Conns: map[string]int{}, Errors: map[string]int{}}
	var mu sync.Mutex
	note := func(scn string, err error) {
		mu.Lock()
		defer mu.Unlock()
		st.Conns[scn]++
		if err != nil {
			msg := err.Error()
			for _, s := range []string{"i/o timeout", "connection reset by peer", "connection refused", "broken pipe", "EOF", "address already in use", "no route", "connection timed out"} {
				if strings.Contains(msg, s) {
					msg = s
				}
			}
			st.Errors[scn+": "+msg]++
		}
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var serving sync.WaitGroup
	for _, a := range []netip.Addr{ServerV4, ServerV6} {
		var ln net.Listener
		err := l.Do(Server, func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(a, servicePort).String())
			return err
		})
		if err != nil {
			return st, err
		}
		lns = append(lns, ln)
		serving.Add(1)
		go func() {
			defer serving.Done()
			var conns sync.WaitGroup
			for {
				c, err := ln.Accept()
				if err != nil {
					break
				}
				conns.Add(1)
				go func() {
					defer conns.Done()
					serve(c.(*net.TCPConn))
				}()
			}
			conns.Wait()
		}()
	}

	seed := w.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	deadline := time.Now().Add(w.Duration)
	var workers sync.WaitGroup
	stopFeatures := make(chan struct{})
	if w.FeaturePeriod > 0 {
		rng := rand.New(rand.NewPCG(seed, 99))
		go func() {
			t := time.NewTicker(w.FeaturePeriod)
			defer t.Stop()
			for {
				select {
				case <-stopFeatures:
					return
				case <-t.C:
				}
				for _, e := range []Endpoint{Client, Server} {
					kv := map[string]string{}
					for _, k := range []string{"tcp_window_scaling", "tcp_timestamps", "tcp_sack"} {
						kv[k] = fmt.Sprint(rng.IntN(2))
					}
					_ = l.SetTCP(e, kv)
				}
			}
		}()
	}
	total := 0
	for _, s := range scenarios {
		total += s.weight
	}
	for i := range w.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				n := rng.IntN(total)
				scn := scenarios[0].name
				for _, s := range scenarios {
					if n < s.weight {
						scn = s.name
						break
					}
					n -= s.weight
				}
				v6 := rng.IntN(2) == 1
				note(scn, l.scenario(scn, v6, rng, w))
			}
		}()
	}
	workers.Wait()
	close(stopFeatures)
	var held []*net.TCPConn
	for i := range w.Hold {
		server := ServerV4
		if i%2 == 1 {
			server = ServerV6
		}
		c, err := l.dial(Client, netip.AddrPort{}, netip.AddrPortFrom(server, servicePort), 0)
		if err != nil {
			note("hold", err)
			continue
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		flags := byte(0)
		if i%3 == 2 {
			flags = flagServerClose // the client stays in CLOSE_WAIT
		}
		note("hold", exchange(c, flags, 100, 100))
	}
	if w.AtEnd != nil {
		quiet := l.Quiesce(30 * time.Second)
		// A delayed ACK (TCP_DELACK_MAX, 200 ms) shows in no socket
		// state: let it go out while the capture still runs.
		time.Sleep(400 * time.Millisecond)
		w.AtEnd(quiet)
	}
	for _, c := range held {
		c.Close()
	}
	for _, ln := range lns {
		ln.Close()
	}
	serving.Wait()
	return st, ctx.Err()
}

// serve answers one connection by the protocol above.
func serve(c *net.TCPConn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		var h [9]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		flags, req, resp := h[0], binary.BigEndian.Uint32(h[1:]), binary.BigEndian.Uint32(h[5:])
		var err error
		if flags&flagReqUntilEOF != 0 {
			_, err = io.Copy(io.Discard, c)
		} else {
			_, err = io.CopyN(io.Discard, c, int64(req))
		}
		if err != nil {
			return
		}
		if flags&flagServerAbort != 0 {
			c.SetLinger(0)
			return
		}
		if _, err := c.Write(make([]byte, resp)); err != nil {
			return
		}
		if flags&(flagServerClose|flagReqUntilEOF) != 0 {
			return
		}
	}
}

// dial connects from the client namespace; local may be the zero value,
// mss 0 leaves the MSS alone.
func (l *Lab) dial(from Endpoint, local, remote netip.AddrPort, mss int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 8 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(local)
	}
	if mss > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss) })
			return errors.Join(err, serr)
		}
	}
	var c net.Conn
	err := l.Do(from, func() error {
		var err error
		c, err = d.Dial("tcp", remote.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// exchange sends one request and reads its response.
func exchange(c *net.TCPConn, flags byte, req, resp int) error {
	var h [9]byte
	h[0] = flags
	binary.BigEndian.PutUint32(h[1:], uint32(req))
	binary.BigEndian.PutUint32(h[5:], uint32(resp))
	if _, err := c.Write(append(h[:], make([]byte, req)...)); err != nil {
		return err
	}
	if flags&flagReqUntilEOF != 0 {
		if err := c.CloseWrite(); err != nil {
			return err
		}
	}
	if flags&flagServerAbort != 0 {
		_, err := io.Copy(io.Discard, c)
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(resp))
	return err
}

func (l *Lab) scenario(name string, v6 bool, rng *rand.Rand, w Workload) error {
	client, server := ClientV4, ServerV4
	if v6 {
		client, server = ClientV6, ServerV6
	}
	svc := netip.AddrPortFrom(server, servicePort)
	small := func() int { return 1 + rng.IntN(2000) }
	conn := func(mss int) (*net.TCPConn, error) {
		c, err := l.dial(Client, netip.AddrPort{}, svc, mss)
		if err == nil {
			c.SetDeadline(time.Now().Add(12*time.Second + w.Idle))
		}
		return c, err
	}
	switch name {
	case "request-response", "server-closes", "upload", "download", "half-close", "client-abort", "server-abort", "small-mss":
		mss := 0
		if name == "small-mss" {
			mss = 88 + rng.IntN(449)
		}
		c, err := conn(mss)
		if err != nil {
			return err
		}
		defer c.Close()
		switch name {
		case "request-response":
			for range 1 + rng.IntN(3) {
				if err := exchange(c, 0, small(), small()); err != nil {
					return err
				}
			}
			return c.Close()
		case "server-closes":
			if err := exchange(c, flagServerClose, small(), small()); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, c) // the server's FIN
			return err
		case "upload":
			return exchange(c, flagServerClose, 100_000+rng.IntN(900_000), 10)
		case "download":
			return exchange(c, flagServerClose, 10, 100_000+rng.IntN(900_000))
		case "half-close":
			return exchange(c, flagReqUntilEOF, small(), small())
		case "client-abort":
			var h [9]byte
			binary.BigEndian.PutUint32(h[5:], 200_000)
			if _, err := c.Write(h[:]); err != nil {
				return err
			}
			if _, err := io.CopyN(io.Discard, c, int64(rng.IntN(50_000))); err != nil {
				return err
			}
			c.SetLinger(0)
			return c.Close()
		case "server-abort":
			if err := exchange(c, flagServerAbort, small(), 0); !errors.Is(err, syscall.ECONNRESET) {
				return err
			}
			return nil
		case "small-mss":
			return exchange(c, flagServerClose, 1000+rng.IntN(8000), 1000+rng.IntN(8000))
		}
	case "refused":
		c, err := l.dial(Client, netip.AddrPort{}, netip.AddrPortFrom(server, closedPort), 0)
		if err == nil {
			c.Close()
			return errors.New("a closed port accepted")
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		return err
	case "port-reuse":
		port := uint16(20000 + rng.IntN(20000))
		for i := range 2 + rng.IntN(2) {
			if i > 0 {
				// Sometimes within the router's TIME_WAIT timeout
				// (the SYN reopens the entry), sometimes after it.
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
			}
			c, err := l.dial(Client, netip.AddrPortFrom(client, port), svc, 0)
			if err != nil {
				return err
			}
			c.SetDeadline(time.Now().Add(12 * time.Second))
			err = exchange(c, flagServerClose, small(), small())
			if err == nil {
				_, err = io.Copy(io.Discard, c)
			}
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	case "idle":
		c, err := conn(0)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := exchange(c, 0, small(), small()); err != nil {
			return err
		}
		time.Sleep(w.Idle)
		if err := exchange(c, 0, small(), small()); err != nil {
			return err
		}
		return c.Close()
	case "simultaneous-open":
		return l.simultaneousOpen(client, server, rng)
	}
	return fmt.Errorf("unknown scenario %q", name)
}

// simultaneousOpen has both endpoints connect to each other's port at the
// same moment (the impairment program, if any, holds their SYNs for a
// moment so that they cross in the router): when the SYNs cross, each side answers the other's SYN
// with a SYN-ACK (RFC 9293 §3.5, figure 8). When one SYN arrives before
// the other side's connect, that side refuses it with an RST.
func (l *Lab) simultaneousOpen(client, server netip.Addr, rng *rand.Rand) error {
	cp := uint16(simultaneousPorts + rng.IntN(1000))
	sp := cp + 1000
	ca, sa := netip.AddrPortFrom(client, cp), netip.AddrPortFrom(server, sp)
	var wg sync.WaitGroup
	var conns [2]*net.TCPConn
	var errs [2]error
	start := make(chan struct{})
	for i, p := range [2]struct {
		e             Endpoint
		local, remote netip.AddrPort
	}{{Client, ca, sa}, {Server, sa, ca}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			conns[i], errs[i] = l.dial(p.e, p.local, p.remote, 0)
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range conns {
		if c == nil {
			continue
		}
		c.SetDeadline(time.Now().Add(8 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil && errs[i] == nil {
			errs[i] = err
		}
	}
	for i, c := range conns {
		if c == nil {
			continue
		}
		if _, err := io.ReadFull(c, make([]byte, 5)); err != nil && errs[i] == nil {
			errs[i] = err
		}
		c.Close()
	}
	if errs[0] == nil && errs[1] == nil {
		return nil
	}
	return fmt.Errorf("simultaneous open: %w", errors.Join(errs[:]...))
}
