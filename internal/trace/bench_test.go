package trace

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkReaders is each reader's throughput (MB/s of the trace as written) on the
// same 200,000 generated requests: the combined log itself, and the trace Writer's
// CSV and JSON lines of its requests.
func BenchmarkReaders(b *testing.B) {
	var log bytes.Buffer
	if err := Generate(&log, GenConfig{Seed: 1, Lines: 200_000, Clients: 2000}); err != nil {
		b.Fatal(err)
	}
	inputs := map[string][]byte{FormatCombined: log.Bytes()}
	for _, format := range []string{FormatCSV, FormatJSON} {
		var out bytes.Buffer
		w, err := NewWriter(&out, format)
		if err != nil {
			b.Fatal(err)
		}
		r, _ := NewReader(bytes.NewReader(log.Bytes()), Options{})
		for {
			req, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Write(req); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		inputs[format] = out.Bytes()
	}
	for _, format := range Formats() {
		in := inputs[format]
		b.Run(format, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for range b.N {
				r, err := NewReader(bytes.NewReader(in), Options{Format: format})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n < 190_000 {
					b.Fatalf("%d requests", n)
				}
			}
		})
	}
}
