package capture_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/fdac824a/tcpct/capture"
)

// A capture is read record by record: every record comes back, TCP or not,
// so Index counts them all; a damaged file ends in a *FormatError after
// everything before the damage.
func ExampleOpen() {
	// Make a small capture to read (any pcap, pcapng or .gz works).
	path := filepath.Join(os.TempDir(), "capture-example.pcap")
	if err := writeExample(path); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(path)

	r, err := capture.Open(path) // "-" reads standard input
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		var fe *capture.FormatError
		if errors.As(err, &fe) {
			fmt.Println("damaged capture:", err) // records before it were processed
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if p.Kind != capture.KindTCP {
			fmt.Printf("%d: skipped (%v: %s)\n", p.Index, p.Kind, p.Reason)
			continue
		}
		fmt.Printf("%d: %s %v:%d -> %v:%d, %d bytes of TCP\n", p.Index,
			p.Timestamp().Format(time.TimeOnly), p.Src, p.SrcPort, p.Dst, p.DstPort, len(p.TCP))
	}
	// Output:
	// 0: 10:30:00 192.0.2.1:40000 -> 198.51.100.7:80, 20 bytes of TCP
	// 1: skipped (NonTCP: not TCP)
}

func writeExample(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := capture.NewWriter(f, capture.LinkRaw, 0)
	if err != nil {
		return err
	}
	ts := time.Date(2024, 5, 17, 10, 30, 0, 0, time.UTC)
	syn := []byte{
		0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, // IPv4, DF
		0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // TCP SYN
	}
	udp := []byte{
		0x45, 0, 0, 28, 0, 2, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
		0, 53, 0, 53, 0, 8, 0, 0,
	}
	if err := w.WritePacket(ts, syn); err != nil {
		return err
	}
	return w.WritePacket(ts.Add(time.Millisecond), udp)
}
