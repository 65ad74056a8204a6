package main

import (
	"net/netip"

	"github.com/fdac824a/tcpct/table"
)

func netipSrc(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Src(), k.SrcPort()) }
func netipDst(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Dst(), k.DstPort()) }
