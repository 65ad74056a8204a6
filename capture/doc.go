// Package capture reads packet captures for the connection tracker: pcap
// and pcapng files, gzip or zstd compressed or not, from a file or standard input,
// and decodes every record down to its TCP header.
//
// # Records
//
// [Reader.Next] returns every record in the file, TCP or not, so that
// [Packet.Index] numbers records the way the CLI's output does. Its [Kind]
// says what the tracker can do with it; problems inside a packet (a
// truncated IPv4 header, an unknown EtherType) are a Kind and a Reason,
// never an error, because the kernel would receive and drop such a packet
// too. An error is always a [*FormatError] naming the record number, the
// byte offset in the (decompressed) stream and the numbers that prove the
// fault, for example
//
//	trace.pcap: record 1234 at offset 98765: truncated record: header says 1514 bytes, file ends after 200
//
// and every record before the fault has already been returned.
//
// # Formats
//
//   - pcap: both byte orders, microsecond and nanosecond magic; FCS bits in
//     the link-type field are ignored. Records longer than the header's
//     snap length are accepted, as libpcap accepts them.
//   - pcapng: sections in either byte order (a new section may switch);
//     several interfaces per section with their own link types, if_tsresol
//     (decimal and binary) and if_tsoffset; Enhanced, Simple and the
//     obsolete Packet blocks. Other blocks are skipped without buffering.
//   - gzip, detected from the content (not the name), multi-member too.
//   - Zstandard (RFC 8878), detected by its frame magic, decompressed by
//     the zstd program (Debian's zstd package), which must be on PATH: a
//     Go decoder module would be compiled in every first build of the
//     command (BENCHMARKS.md at the repository root, "First run", has the
//     cost), and os/exec is in that build anyway. Without the program such
//     a file fails at once with a [FormatError] that says what to install.
//     Windows up to 128 MiB (the program's default limit, passed
//     explicitly); concatenated frames are one stream; a cut stream is
//     io.ErrUnexpectedEOF, as a cut gzip member is. The program reads its
//     input 128 KiB at a time, so a live zstd stream on standard input
//     yields its records in batches of that much compressed data.
//
// A link type Decode does not read is not an error, in pcap as in pcapng:
// its records are returned with Kind NonIP, Reason "unsupported link type"
// and their Link, which [LinkType.Name] names from the tcpdump.org registry.
//
// Link types: Ethernet with any mix of up to 8 802.1Q, 802.1ad and 0x9100
// tags; raw IP (101, 228, 229); Linux cooked v1 (113) and v2 (276), netlink
// captures classified as non-IP; BSD null (0, in either host byte order)
// and OpenBSD loop (108); PPP (9, with or without RFC 1662's address and
// control bytes, protocol field compressed or not), PPP in HDLC-like
// framing (50, also Cisco PPP), PPPoE sessions (51), Cisco HDLC (104) and
// the variants with a direction byte (204, 205); IEEE 802.11 data frames
// with an LLC/SNAP header, bare (105) or after a radiotap header (127),
// whose management, control, null-data, A-MSDU and protected (encrypted)
// frames are non-IP; Linux NFLOG (239, what tcpdump -i nflog:N writes:
// the packet of an nftables/iptables log rule); IP over InfiniBand (242,
// 44-byte header). A record of any other link type is non-IP with a
// reason that names the type, "unsupported link type 147 (USER0)"
// ([LinkType.Name]); a pcap file of such a type opens, and each of its
// records carries that reason, so that a caller can count and name them.
//
// # Tunnels
//
// With [Reader.SetDecap] (Packet.Decap) a record carrying a tunnel is
// decoded down to the packet inside, and the IP and TCP fields describe
// that packet, as the firewall of the host the tunnel ends at sees it
// once the tunnel device has removed the encapsulation; Packet.Tunnel
// names the encapsulation. Tunnels: VXLAN (UDP port 4789, and 8472, the
// Linux driver's old default), VXLAN-GPE (4790), Geneve (6081, options
// skipped), MPLS in UDP (6635), GRE (RFC 2784/2890 with checksum, key and
// sequence number; PPTP's enhanced GRE) carrying Ethernet, IPv4, IPv6,
// MPLS, PPP or a WCCP redirect; IPv4 and IPv6 in IPv4 or IPv6
// (protocols 4 and 41); MPLS label stacks (EtherType 0x8847/0x8848, PPP
// protocol 0x0281), whose payload is IPv4, IPv6, or an Ethernet
// pseudowire with a control word; PPPoE sessions (EtherType 0x8864). Tunnels nest up to 8 deep. ERSPAN,
// GRE source routing and other payloads are non-IP. Without Decap such
// records are classified as "tunnelled traffic, not decapsulated". A
// fragmented outer packet stays a fragment: the host the tunnel ends at
// reassembles it before decapsulating.
//
// # IP
//
// One rule decides between a broken IP header and a broken TCP header.
// A packet whose IP header the kernel's receive path rejects (IPv4:
// ip_rcv_core drops an IHL below 5, options beyond the packet, a total
// length below the header length (0 excepted, see below) or beyond the
// packet; IPv6: ip6_rcv_core
// drops a payload length beyond the packet) never reaches a netfilter
// hook, so conntrack neither tracks nor counts it: it is KindMalformed
// and not [Packet.TrackedInvalid]. A packet the receive path accepts does
// reach conntrack, which counts it INVALID when it cannot use it: a TCP
// header of fewer than 20 bytes (after finding the connection's entry
// from the ports, when there are 4 bytes of them), or IPv6 extension
// headers running past the payload: it is TrackedInvalid. The kernel
// was asked, with frames received through a veth pair
// (TestKernelMalformedIP, TestKernelShortTCPHeader in conformance). The
// IPv4 header checksum is not verified (ip_rcv_core drops a bad one).
//
// IPv4: options skipped by IHL; the total length is checked against the
// length on the wire (only the snap length may hide the tail, as in the
// kernel's ip_rcv_core) and trailing link padding is cut. IPv6: the
// extension headers ipv6_skip_exthdr walks (hop-by-hop, routing,
// destination options, fragment, AH) are skipped; ESP and "no next
// header" end the walk as non-TCP. A length field of 0 on a packet over
// 64 KiB is a Linux BIG TCP super-packet (or an RFC 2675 jumbogram) and
// takes its length from the wire, like the kernel's iph_totlen; so does
// an IPv4 total length of 0 under 64 KiB, a TSO send captured on the
// sending host before the NIC wrote the length (as tcpdump presumes).
//
// Fragments are not reassembled. Conntrack runs after nf_defrag, so it
// never sees a fragment, only the reassembled datagram; a reassembler here
// would need per-flow state and memory bounded against hostile input for
// traffic that TCP avoids (it sets DF and uses path MTU discovery). So
// every real fragment, first (MF set) or later (non-zero offset), is
// reported as [KindFragment] with Proto, addresses and IPPayloadLen set,
// and the caller counts it and keeps it from the tracker. An IPv6 atomic
// fragment (offset 0, M clear; RFC 6946) is a whole packet and is decoded.
//
// # Cost
//
// A Reader holds one buffer that starts at 64 KiB and grows, only as a
// record needs it, to at most 1 MiB; a record is at most [MaxRecord]
// bytes, a section at most 65536 interfaces; no length read from the file
// sizes an allocation beyond those caps. In steady state [Reader.Next]
// does not allocate: the [Packet] and its slices are reused and alias the
// buffer.
//
// [Open] reads a file with read(2) into that buffer, as it reads a
// stream. Mapping the file and parsing the page cache's pages in place
// was tried and dropped: on one core it cost more than the copy it saved
// (tcpct replay's CPU time fell to 0.82x and 0.84x on 2M-packet captures,
// 0.76x on a 10M-packet one, when the mapping went). read(2) leaves the
// records in cache for decoding and the checksum, where the first touch of
// each mapped line was a cold miss; the window had to be mapped ahead and
// released behind with two madvise calls per 2 MiB; and every record was
// decoded under debug.SetPanicOnFault, so that a file shrinking under the
// mapping did not kill the process with SIGBUS.
//
// A zstd stream runs through the zstd program, which [Reader.Close] stops,
// so a Reader of one must be closed.
//
// The file formats and the link, IP and TCP decoding are written by hand
// rather than with gopacket, for speed and for the kernel's rules: reading
// a record allocates nothing, and gopacket knows neither pcapng
// multi-interface link types through one reader nor the tracker's view of
// lengths, fragments and extension headers, which would have to be written
// here anyway. The benchmark module bench/pcapgo measures Reader
// against gopacket's pcapgo; BENCHMARKS.md at the repository root has the
// numbers.
package capture
