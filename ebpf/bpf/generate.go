package bpf

// The loader (tcpct_bpfel.go) and the compiled object (tcpct_bpfel.o) are
// generated from tcpct.bpf.c by cilium/ebpf's bpf2go with clang, and
// committed so that users need neither; TestObjectIsCurrent rebuilds them
// where clang is installed and fails when they differ.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I../c -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu" -target bpfel -type tcpct_bpf_verdict -type tcpct_bpf_key -type tcpct_bpf_entry -type tcpct_bpf_knobs -type tcpct_bpf_clock tcpct tcpct.bpf.c
