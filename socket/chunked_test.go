package socket

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httputil"
	"slices"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/internal/sockio"
)

// The chunked decoder Relay uses (chunked.go), fed through a reader that
// would block at chosen offsets.

// connBufSize is the size of a connection's bufio.Reader.
const connBufSize = 2 << 10

// cutReader serves data in pieces: at each cut it returns ErrWouldBlock
// once, and no Read returns bytes from both sides of a cut. At the end it
// returns end, or io.EOF if end is nil.
type cutReader struct {
	data   []byte
	cuts   []int // ascending, each not yet served
	pos    int
	end    error
	reads  int // calls to Read
	blocks int // calls that returned ErrWouldBlock
}

// newCutReader returns a cutReader of data; cuts may come in any order,
// repeat, or lie outside data (then they are dropped).
func newCutReader(data []byte, cuts ...int) *cutReader {
	cuts = slices.Clone(cuts)
	cuts = slices.DeleteFunc(cuts, func(c int) bool { return c < 0 || c > len(data) })
	slices.Sort(cuts)
	return &cutReader{data: data, cuts: slices.Compact(cuts)}
}

func (r *cutReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.cuts) > 0 && r.cuts[0] == r.pos {
		r.cuts = r.cuts[1:]
		r.blocks++
		return 0, sockio.ErrWouldBlock
	}
	if r.pos == len(r.data) {
		if r.end != nil {
			return 0, r.end
		}
		return 0, io.EOF
	}
	limit := len(r.data)
	if len(r.cuts) > 0 {
		limit = r.cuts[0]
	}
	n := copy(p, r.data[r.pos:limit])
	r.pos += n
	return n, nil
}

// everyCut returns a cut at every offset of a stream of n bytes.
func everyCut(n int) []int {
	cuts := make([]int, n+1)
	for i := range cuts {
		cuts[i] = i
	}
	return cuts
}

// decoded is what decodeCut read.
type decoded struct {
	data   []byte
	err    error  // what ended the decoding: never ErrWouldBlock
	blocks int    // times the decoder returned ErrWouldBlock
	rest   []byte // left after: the buffered bytes, then those unread below
}

var (
	errStuck  = errors.New("test: the decoder returns nothing, over and over")
	errMadeUp = errors.New("test: the decoder returned ErrWouldBlock the reader did not")
)

// decodeCut decodes what r serves through a bufio.Reader of bufSize bytes
// (a connection's is connBufSize) with reads of readSize bytes, and reads
// again after each ErrWouldBlock, as Relay does.
func decodeCut(r *cutReader, bufSize, readSize int) decoded {
	br := bufio.NewReaderSize(r, bufSize)
	d := &chunked{br: br}
	buf := make([]byte, readSize)
	var out decoded
	for empty := 0; out.err == nil; {
		n, err := d.Read(buf)
		out.data = append(out.data, buf[:n]...)
		switch {
		case err == sockio.ErrWouldBlock:
			out.blocks++
			if out.blocks > r.blocks {
				out.err = errMadeUp // kept, or never read below
			}
		case err != nil:
			out.err = err
		case n > 0:
			empty = 0
		case empty == 100:
			out.err = errStuck
		default:
			empty++
		}
	}
	b, _ := br.Peek(br.Buffered())
	out.rest = append(slices.Clip(b), r.data[r.pos:]...)
	return out
}

// chunkedErrs are the errors the decoder may end with (over a reader that
// fails with nothing but io.EOF).
var chunkedErrs = []error{
	io.EOF, io.ErrUnexpectedEOF,
	errChunkBareLF, errChunkCR, errChunkLineLong, errChunkMalformed, errChunkEmptySize,
	errChunkSizeByte, errChunkSizeLarge, errChunkOverhead, errChunkTrailerLen,
}

// readSizes are the sizes of the reads the decoder is given.
var readSizes = []int{1, 7, 64, 1024, 4 << 10}

// chunkedCases are streams with what the decoder makes of them.
var chunkedCases = []struct {
	name string
	in   string
	data string
	err  error
	rest string // left after io.EOF
}{
	{name: "chunks", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", data: "hello world", err: io.EOF},
	{name: "trailer", in: "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-A: b\r\nX-B: c\r\n\r\n", data: "hello world", err: io.EOF},
	{name: "next response stays", in: "5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", data: "hello", err: io.EOF, rest: "HTTP/1.1 200 OK\r\n\r\n"},
	{name: "next response stays after trailer", in: "5\r\nhello\r\n0\r\nX-A: b\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", data: "hello", err: io.EOF, rest: "HTTP/1.1 204 No Content\r\n\r\n"},
	{name: "body only", in: "0\r\n\r\n", err: io.EOF},
	{name: "extensions, case, whitespace", in: "A;a=1;b=\"x\"\r\n0123456789\r\nb \t\r\nhello world\r\n0;end \r\n\r\n", data: "0123456789hello world", err: io.EOF},
	{name: "16 hex digits", in: "000000000000000a\r\n0123456789\r\n0000000000000000\r\n\r\n", data: "0123456789", err: io.EOF},
	{name: "line that fills the buffer", in: "5;" + strings.Repeat("e", connBufSize-4) + "\r\nhello\r\n0\r\n\r\n", data: "hello", err: io.EOF},
	{name: "short extensions", in: strings.Repeat("1;e=1\r\nx\r\n", 20) + "0\r\n\r\n", data: strings.Repeat("x", 20), err: io.EOF},
	{name: "long extensions paid for by data", in: strings.Repeat("3e8;"+strings.Repeat("e", 1000)+"\r\n"+strings.Repeat("x", 1000)+"\r\n", 20) + "0\r\n\r\n", data: strings.Repeat("x", 20000), err: io.EOF},

	{name: "long trailer that fits", in: "5\r\nhello\r\n0\r\nX-A: " + strings.Repeat("b", connBufSize-9) + "\r\n\r\nnext", data: "hello", err: io.EOF, rest: "next"},

	{name: "too much overhead", in: strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", data: strings.Repeat("x", 16), err: errChunkOverhead},
	{name: "overhead not paid for in advance", in: "2000\r\n" + strings.Repeat("d", 0x2000) + "\r\n" + strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", data: strings.Repeat("d", 0x2000) + strings.Repeat("x", 16), err: errChunkOverhead},
	{name: "overhead in the last chunk", in: strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 16) + "0;" + strings.Repeat("e", 1000) + "\r\n\r\n", data: strings.Repeat("x", 16), err: errChunkOverhead},
	{name: "line longer than the buffer", in: "5;" + strings.Repeat("e", connBufSize-3) + "\r\nhello\r\n0\r\n\r\n", err: errChunkLineLong},
	{name: "trailer longer than the buffer", in: "5\r\nhello\r\n0\r\nX-A: " + strings.Repeat("b", connBufSize-8) + "\r\n\r\n", data: "hello", err: errChunkTrailerLen},
	{name: "trailer line with bare LF", in: "5\r\nhello\r\n0\r\nX-A: b\nX-B: c\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "trailer end with bare LF", in: "5\r\nhello\r\n0\r\nX-A: b\r\n\n\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "size line with bare LF", in: "5\r\nhello\r\n5\nworld\r\n0\r\n\r\n", data: "hello", err: errChunkBareLF},
	{name: "CR in size line", in: "5\r\nhello\r\n5\r;\r\nworld\r\n0\r\n\r\n", data: "hello", err: errChunkCR},
	{name: "no CRLF after data", in: "5\r\nhelloworld\r\n0\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "LF after data", in: "5\r\nhelloX\n0\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "CR after data", in: "5\r\nhello\rX0\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "bare LF after data", in: "5\r\nhello\n0\r\n\r\n", data: "hello", err: errChunkMalformed},
	{name: "17 hex digits", in: "00000000000000005\r\nhello\r\n0\r\n\r\n", err: errChunkSizeLarge},
	{name: "empty size", in: ";x\r\nhello\r\n0\r\n\r\n", err: errChunkEmptySize},
	{name: "non-hex size", in: "5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n", data: "hello", err: errChunkSizeByte},
	{name: "space before size", in: " 5\r\nhello\r\n0\r\n\r\n", err: errChunkSizeByte},
	{name: "ends in size line", in: "5\r\nhello\r\n5", data: "hello", err: io.ErrUnexpectedEOF},
	{name: "ends in data", in: "5\r\nhel", data: "hel", err: io.ErrUnexpectedEOF},
	{name: "ends after data", in: "5\r\nhello\r", data: "hello", err: io.ErrUnexpectedEOF},
	{name: "ends after last chunk", in: "5\r\nhello\r\n0\r\n", data: "hello", err: io.ErrUnexpectedEOF},
	{name: "ends in trailer", in: "5\r\nhello\r\n0\r\nX-A: b\r\n", data: "hello", err: io.ErrUnexpectedEOF},
	{name: "empty", in: "", err: io.ErrUnexpectedEOF},
}

// TestChunkedDecodes: each stream decodes to the same data and ends with
// the same error whatever the size of the reads and wherever the reader
// below would block; at the end the trailer is read and dropped, and what
// follows the body (the next response) is left unread.
func TestChunkedDecodes(t *testing.T) {
	for _, tc := range chunkedCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			cutSets := map[string][]int{
				"whole":       nil,
				"every byte":  everyCut(len(in)),
				"every third": slices.DeleteFunc(everyCut(len(in)), func(c int) bool { return c%3 != 1 }),
			}
			for cutName, cuts := range cutSets {
				for _, size := range readSizes {
					r := newCutReader(in, cuts...)
					got := decodeCut(r, connBufSize, size)
					where := fmt.Sprintf("cuts %s, reads of %d", cutName, size)
					if string(got.data) != tc.data {
						t.Errorf("%s: data %q, want %q", where, abbrev(got.data), abbrev([]byte(tc.data)))
					}
					if got.err != tc.err {
						t.Errorf("%s: error %v, want %v", where, got.err, tc.err)
					}
					if got.blocks != r.blocks {
						t.Errorf("%s: the decoder returned ErrWouldBlock %d times, the reader %d", where, got.blocks, r.blocks)
					}
					if tc.err == io.EOF && string(got.rest) != tc.rest {
						t.Errorf("%s: left %q after the body, want %q", where, got.rest, tc.rest)
					}
				}
			}
		})
	}
}

// abbrev shortens b for a message.
func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// TestChunkedLeavesNothingBuffered: a body that ends with the input,
// trailer and all, leaves the connection's buffer empty.
func TestChunkedLeavesNothingBuffered(t *testing.T) {
	for _, in := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-A: b\r\nX-B: c\r\n\r\n",
	} {
		br := bufio.NewReaderSize(newCutReader([]byte(in)), connBufSize)
		d := &chunked{br: br}
		data, err := io.ReadAll(d)
		if err != nil || string(data) != "hello" {
			t.Errorf("%q: got %q, %v; want \"hello\", nil", in, data, err)
		}
		if br.Buffered() != 0 {
			t.Errorf("%q: %d bytes left buffered after the body", in, br.Buffered())
		}
		if n, err := d.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("%q: Read after the end = %d, %v; want 0, io.EOF", in, n, err)
		}
	}
}

// TestChunkedKeepsErrors: an error from below other than ErrWouldBlock is
// returned and kept: the reads that follow return it without reading
// below again.
func TestChunkedKeepsErrors(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	for _, in := range []string{"", "5\r\nhel", "5\r\nhello", "5\r\nhello\r\n0\r\nX-A"} {
		r := newCutReader([]byte(in))
		r.end = errReset
		d := &chunked{br: bufio.NewReaderSize(r, connBufSize)}
		buf := make([]byte, 64)
		var err error
		for range 10 {
			if _, err = d.Read(buf); err != nil {
				break
			}
		}
		if err != errReset {
			t.Fatalf("%q: error %v, want %v", in, err, errReset)
		}
		reads := r.reads
		for range 3 {
			if n, err := d.Read(buf); n != 0 || err != errReset {
				t.Errorf("%q: Read after the failure = %d, %v; want 0, %v", in, n, err, errReset)
			}
		}
		if r.reads != reads {
			t.Errorf("%q: %d reads below after the failure, want none", in, r.reads-reads)
		}
	}
}

// TestChunkedWouldBlockNotKept: ErrWouldBlock from below is returned and
// not kept: the next Read reads below again and goes on.
func TestChunkedWouldBlockNotKept(t *testing.T) {
	in := "5\r\nhello\r\n0\r\n\r\n"
	r := newCutReader([]byte(in), 6)
	d := &chunked{br: bufio.NewReaderSize(r, connBufSize)}
	buf := make([]byte, 64)
	if n, err := d.Read(buf); string(buf[:n]) != "hel" || err != nil {
		t.Fatalf("first Read = %q, %v; want \"hel\", nil", buf[:n], err)
	}
	if n, err := d.Read(buf); n != 0 || err != sockio.ErrWouldBlock {
		t.Fatalf("second Read = %q, %v; want \"\", ErrWouldBlock", buf[:n], err)
	}
	reads := r.reads
	n, err := d.Read(buf)
	if r.reads == reads {
		t.Error("the Read after ErrWouldBlock did not read below")
	}
	if string(buf[:n]) != "lo" || err != nil && err != io.EOF {
		t.Fatalf("Read after ErrWouldBlock = %q, %v; want \"lo\"", buf[:n], err)
	}
	if err == nil {
		if n, err = d.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("last Read = %q, %v; want \"\", io.EOF", buf[:n], err)
		}
	}
}

// TestChunkedReturnsEarly: a Read that has data returns it, rather than
// read below for what comes next (the next size line, the rest of a
// chunk, its CRLF, the trailer); the next Read reads it.
func TestChunkedReturnsEarly(t *testing.T) {
	for _, tc := range []struct {
		before, after string // the stream, cut between the two
		want          string // what it holds
	}{
		{"5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n", "helloworld"},
		{"5\r\nhello\r\n5", "\r\nworld\r\n0\r\n\r\n", "helloworld"},
		{"5\r\nhello\r\n5\r", "\nworld\r\n0\r\n\r\n", "helloworld"},
		{"a\r\nhello", "world\r\n0\r\n\r\n", "helloworld"},
		{"5\r\nhello", "\r\n5\r\nworld\r\n0\r\n\r\n", "helloworld"},
		{"5\r\nhello\r", "\n5\r\nworld\r\n0\r\n\r\n", "helloworld"},
		{"5\r\nhello\r\n0\r\n", "\r\n", "hello"},
		{"5\r\nhello\r\n0\r\n\r", "\n", "hello"},
	} {
		r := newCutReader([]byte(tc.before+tc.after), len(tc.before))
		d := &chunked{br: bufio.NewReaderSize(r, connBufSize)}
		buf := make([]byte, 4<<10)
		n, err := d.Read(buf)
		if string(buf[:n]) != "hello" || err != nil {
			t.Errorf("%q|%q: first Read = %q, %v; want \"hello\", nil", tc.before, tc.after, buf[:n], err)
		}
		if r.blocks != 0 {
			t.Errorf("%q|%q: the first Read read below past the cut", tc.before, tc.after)
		}
		got := string(buf[:n])
		for i := 0; i < 10 && (err == nil || err == sockio.ErrWouldBlock); i++ {
			n, err = d.Read(buf)
			got += string(buf[:n])
		}
		if got != tc.want || err != io.EOF {
			t.Errorf("%q|%q: decoded %q, %v; want %q, io.EOF", tc.before, tc.after, got, err, tc.want)
		}
	}
}

// chunkedStream frames parts as chunks, then the last chunk and trailer.
func chunkedStream(trailer string, parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	return b.String() + "0\r\n" + trailer + "\r\n"
}

// FuzzChunked checks the decoder against net/http's, over a buffer of the
// same size (a connection's or smaller, so that lines fit both or
// neither): the same data, the same failure, and the end (io.EOF) only
// where net/http's ends too. net/http's stops at the last chunk's size
// line, so the decoder may fail where it ends, but only after the same
// data (in the trailer, or on overhead the last chunk brought). And
// against itself: the reader below blocking anywhere changes nothing, and
// the body it reads to io.EOF ends exactly there.
func FuzzChunked(f *testing.F) {
	valid := []string{
		chunkedStream("", "hello", " ", "world"),
		chunkedStream("X-A: b\r\nX-B: c\r\n", "hello"),
		chunkedStream("", strings.Repeat("x", 300), "y"),
		"5;ext=1\r\nhello\r\n6;a=b;c=\"d\"\r\n world\r\n0;end\r\n\r\n",
		"A\r\n0123456789\r\nFf\r\n" + strings.Repeat("z", 255) + "\r\n0\r\n\r\n",
		"5 \r\nhello\r\n3\t \r\nabc\r\n0 \r\n\r\n",
		"0000000000000005\r\nhello\r\n0\r\n\r\n",
		"0\r\nX-A: b\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"0\r\n\r\n",
		"1;" + strings.Repeat("e", 26) + "\r\nx\r\n0\r\n\r\n", // a line that fills a 32-byte buffer
		"5\r\nhello\r\n0\r\nX-A: " + strings.Repeat("b", 100) + "\r\n\r\n",
	}
	for i := range 3 {
		var events []string
		for j := range 5 {
			events = append(events, fmt.Sprintf("data: {\"i\":%d}\n\n", i*5+j))
		}
		valid = append(valid, chunkedStream("", events...))
	}
	invalid := []string{
		"5\nhello\r\n0\r\n\r\n",
		"5\r\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-A: b\nX-B: c\r\n\r\n",
		"5\r\nhello\r\n0\r\n\n",
		"5\r\nhelloXX0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"10000000000000000\r\nx\r\n0\r\n\r\n",
		"ffffffffffffffff\r\nx\r\n",
		"\r\nhello\r\n0\r\n\r\n",
		";ext\r\nhello\r\n0\r\n\r\n",
		"5g\r\nhello\r\n0\r\n\r\n",
		"-5\r\nhello\r\n0\r\n\r\n",
		" 5\r\nhello\r\n0\r\n\r\n",
		"5 ;a\r\nhello\r\n0\r\n\r\n",
		"1;" + strings.Repeat("e", 200) + "\r\nx\r\n0\r\n\r\n",
		"0\r\nX-A: " + strings.Repeat("b", 200) + "\r\n\r\n",
	}
	seed := uint64(0)
	add := func(s string) {
		seed++
		f.Add([]byte(s), seed)
	}
	for _, s := range valid {
		add(s)
	}
	for _, s := range invalid {
		add(s)
	}
	// Truncated at every stage.
	s := "5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nX-A: b\r\n\r\n"
	for i := range len(s) {
		add(s[:i])
	}

	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		cuts, bufSize, readSize := fuzzCuts(seed, len(in))
		ref, refErr := io.ReadAll(httputil.NewChunkedReader(bufio.NewReaderSize(bytes.NewReader(in), bufSize)))
		whole := decodeCut(newCutReader(in), bufSize, 4<<10)
		r := newCutReader(in, cuts...)
		cut := decodeCut(r, bufSize, readSize)

		if !slices.Contains(chunkedErrs, whole.err) {
			t.Fatalf("the decoder ended with %v", whole.err)
		}
		// Resumable: blocking changes nothing, and is never made up.
		if !bytes.Equal(cut.data, whole.data) || cut.err != whole.err {
			t.Fatalf("with cuts %v and reads of %d: %q, %v; without: %q, %v", cuts, readSize, cut.data, cut.err, whole.data, whole.err)
		}
		if cut.blocks != r.blocks {
			t.Fatalf("the decoder returned ErrWouldBlock %d times, the reader %d", cut.blocks, r.blocks)
		}
		// As net/http's.
		if !bytes.Equal(whole.data, ref) {
			t.Fatalf("decoded %q (%v), net/http %q (%v)", whole.data, whole.err, ref, refErr)
		}
		switch {
		case whole.err == io.EOF && refErr != nil:
			t.Fatalf("the decoder ended, net/http failed: %v", refErr)
		case whole.err != io.EOF && refErr == nil:
			// Only past the last chunk.
			switch whole.err {
			case io.ErrUnexpectedEOF, errChunkMalformed, errChunkTrailerLen, errChunkOverhead:
			default:
				t.Fatalf("the decoder failed with %v, net/http ended", whole.err)
			}
		case refErr != nil:
			want := refErr.Error()
			if want == "header line too long" { // net/http's ErrLineTooLong
				want = errChunkLineLong.Error()
			}
			if whole.err.Error() != want {
				t.Fatalf("the decoder failed with %v, net/http with %v", whole.err, refErr)
			}
		}
		if whole.err != io.EOF {
			return
		}
		// The body is what the decoder read: where it ended does not
		// depend on cuts, it ends there alone, and not a byte sooner.
		if len(cut.rest) != len(whole.rest) {
			t.Fatalf("with cuts %v the decoder left %d bytes, without %d", cuts, len(cut.rest), len(whole.rest))
		}
		body := in[:len(in)-len(whole.rest)]
		alone := decodeCut(newCutReader(body), bufSize, 64)
		if alone.err != io.EOF || !bytes.Equal(alone.data, whole.data) || len(alone.rest) != 0 {
			t.Fatalf("the body %q alone: %q, %v, %q left", body, alone.data, alone.err, alone.rest)
		}
		short := decodeCut(newCutReader(body[:len(body)-1]), bufSize, 64)
		if short.err != io.ErrUnexpectedEOF {
			t.Fatalf("the body %q less its last byte: %v", body, short.err)
		}
	})
}

// fuzzCuts derives from seed where a stream of n bytes is cut, the size
// of the buffer (small ones reach its limits with small inputs, which the
// fuzzer minimizes fast), and the size of the reads.
func fuzzCuts(seed uint64, n int) (cuts []int, bufSize, readSize int) {
	rnd := rand.New(rand.NewPCG(seed, seed>>32|seed<<32))
	bufSize = []int{32, 128, connBufSize, connBufSize}[rnd.IntN(4)]
	readSize = readSizes[rnd.IntN(len(readSizes))]
	switch rnd.IntN(3) {
	case 0:
		cuts = everyCut(n)
	case 1:
		for i := range n + 1 {
			if rnd.IntN(8) == 0 {
				cuts = append(cuts, i)
			}
		}
	default:
		for range rnd.IntN(5) {
			cuts = append(cuts, rnd.IntN(n+1))
		}
	}
	return cuts, bufSize, readSize
}

// BenchmarkChunkedEvents decodes a stream of 1000 chunks, each an event
// of a chat completion's stream (about 110 bytes), with the decoder and
// with net/http's.
func BenchmarkChunkedEvents(b *testing.B) {
	var events []string
	for i := range 1000 {
		events = append(events, fmt.Sprintf("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"i\":%d,\"choices\":[{\"delta\":{\"content\":\"token\"}}]}\n\n", i))
	}
	stream := []byte(chunkedStream("", events...))
	run := func(b *testing.B, decoder func(*bufio.Reader) io.Reader) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		in := bytes.NewReader(stream)
		br := bufio.NewReaderSize(in, connBufSize)
		buf := make([]byte, 4<<10)
		for b.Loop() {
			in.Reset(stream)
			br.Reset(in)
			d := decoder(br)
			for {
				_, err := d.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("socket", func(b *testing.B) {
		run(b, func(br *bufio.Reader) io.Reader { return &chunked{br: br} })
	})
	b.Run("net/http", func(b *testing.B) {
		run(b, func(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) })
	})
}
