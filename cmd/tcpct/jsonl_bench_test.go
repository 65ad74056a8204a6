package main

import (
	"testing"

	"github.com/fdac824a/tcpct"
	"github.com/fdac824a/tcpct/capture"
)

// BenchmarkJSONLAppend times one record of each field set, over the seed
// capture's verdicts (IPv4, every TCP state of a connection's life).
func BenchmarkJSONLAppend(b *testing.B) {
	r, err := capture.Open(seedPcap)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	eng, err := newEngine(&trackerFlags{profile: profileFlag{name: "linux"}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	var infos []pktInfo
	var vs []tcpct.Verdict
	eng.run(r, atSpec{}, func(p *pktInfo, v *tcpct.Verdict) { infos = append(infos, *p); vs = append(vs, *v) })
	for _, c := range []struct {
		name   string
		fields jsonlFields
	}{{"all", fieldsAll}, {"classic", fieldsClassic}} {
		b.Run(c.name, func(b *testing.B) {
			jw := jsonlWriter{fields: c.fields}
			buf := make([]byte, 0, 4096)
			for i := 0; b.Loop(); i++ {
				k := i % len(infos)
				buf = jw.append(buf[:0], &infos[k], &vs[k])
			}
		})
	}
}
