package compare

import "github.com/fdac824a/tcpct"

// VerdictLine is a tcpct.Verdict on packet i in the form the kernel runner
// records: the fields Compare reads (Raw is left empty). dir is empty for
// an INVALID packet, as the kernel runner leaves it; state, timeout,
// assured and seen_reply are set only when the packet has an entry.
func VerdictLine(i int, v *tcpct.Verdict) Line {
	l := Line{I: i, CT: v.CT.String(), Reason: v.ReasonText()}
	if v.CT != tcpct.CTInvalid {
		l.Dir = v.Dir.String()
	}
	if v.Entry {
		s := v.SecondsLeft()
		l.State, l.Timeout, l.Assured, l.SeenReply = v.StateName(), &s, v.Assured, v.SeenReply
	}
	return l
}
