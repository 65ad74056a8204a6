module github.com/fdac824a/tcpct/ebpf

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	github.com/fdac824a/tcpct v0.0.0
	golang.org/x/sys v0.50.0
)

replace github.com/fdac824a/tcpct => ../

tool github.com/cilium/ebpf/cmd/bpf2go
