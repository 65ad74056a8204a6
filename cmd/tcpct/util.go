package main

import (
	"flag"
	"net/netip"

	"github.com/fdac824a/tcpct/table"
)

func netipSrc(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Src(), k.SrcPort()) }
func netipDst(k table.Key) netip.AddrPort { return netip.AddrPortFrom(k.Dst(), k.DstPort()) }

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
