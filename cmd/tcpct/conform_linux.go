package main

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/fdac824a/tcpct/internal/conformance/compare"
	"github.com/fdac824a/tcpct/internal/conformance/kernel"
	"github.com/fdac824a/tcpct/internal/conformance/tracegen"
)

func init() {
	kernelAvailable = kernel.Available
	askKernel = askLinux
	kernelRelease = linuxRelease
}

// askLinux runs pkts through the running kernel's nf_conntrack in a
// namespace of its own (kernel.Run creates it and deletes it before
// returning, also after an error or a cancelled ctx), paced by the
// capture timestamps, and returns the kernel's verdicts.
func askLinux(ctx context.Context, pkts []tracegen.Packet, sysctls map[string]string) ([]compare.Line, error) {
	in := make([]kernel.Packet, len(pkts))
	for i, p := range pkts {
		in[i] = kernel.Packet{TS: p.TS, Data: p.Data}
	}
	recs, err := kernel.Run(ctx, in, kernel.Options{Sysctls: sysctls})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for i := range recs {
		b.Write(recs[i].AppendJSON(nil))
		b.WriteByte('\n')
	}
	return compare.Read(&b)
}

// linuxRelease is uname -sr.
func linuxRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
}
