// A separate module so that comparing with gopacket/pcapgo does not make
// tcpct depend on gopacket. Run: cd bench/pcapgo && go test -bench .
module github.com/fdac824a/tcpct/bench/pcapgo

go 1.26.8

replace github.com/fdac824a/tcpct => ../..

require (
	github.com/fdac824a/tcpct v0.0.0-00010101000000-000000000000
	github.com/gopacket/gopacket v1.7.7
)

require (
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
