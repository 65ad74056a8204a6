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
//   - Zstandard (RFC 8878), detected by its frame magic, through
//     github.com/klauspost/compress/zstd; windows up to 128 MiB, the zstd
//     command's default limit.
//
// A link type Decode does not read is not an error, in pcap as in pcapng:
// its records are returned with Kind NonIP, Reason "unsupported link type"
// and their Link, which [LinkType.Name] names from the tcpdump.org registry.
//
// Link types: Ethernet with any mix of up to 8 802.1Q, 802.1ad and 0x9100
// tags; raw IP (101, 228, 229); Linux cooked v1 (113) and v2 (276), netlink
// captures classified as non-IP; BSD null (0, in either host byte order)
// and OpenBSD loop (108).
//
// # IP
//
// IPv4: options skipped by IHL; the total length is checked against the
// length on the wire (only the snap length may hide the tail, as in the
// kernel's ip_rcv_core) and trailing link padding is cut. IPv6: the
// extension headers ipv6_skip_exthdr walks (hop-by-hop, routing,
// destination options, fragment, AH) are skipped; ESP and "no next
// header" end the walk as non-TCP. A length field of 0 on a packet over
// 64 KiB is a Linux BIG TCP super-packet (or an RFC 2675 jumbogram) and
// takes its length from the wire, like the kernel's iph_totlen.
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
// On Linux, [Open] maps an uncompressed regular file of 4 MiB or more
// read-only and parses it in place, instead of copying it into the buffer
// with read(2); only a window of about 4 MiB around the read position is
// kept resident. The records and errors are the same either way
// (TestMappedFormats, TestErrors). If another program truncates the file
// while it is mapped, the Reader returns a [FormatError] ("the file shrank
// while it was read") instead of dying of SIGBUS (TestMappedFileShrinks).
// Standard input, pipes, gzip and zstd files and [NewReader] are read as streams.
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
