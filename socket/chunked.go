package socket

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/llmproxy/llmproxy/internal/sockio"
)

// chunked decodes a chunked response body (RFC 9112 §7.1) from the
// connection's buffer, as net/http's decoder does, with one difference:
// a read that would block (sockio.ErrWouldBlock, within a ReadLoop) is
// returned and not kept, and the next read goes on where it stopped —
// in a size line, in the CRLF after a chunk's data, in the trailer.
// net/http's decoder keeps every error, so a body relayed with ReadLoop
// (body.Relay) is decoded here; Read still uses net/http's.
//
// What it accepts is net/http's: a size line of at most 16 hex digits,
// with any extension after ';' and spaces or tabs before its CRLF, a line
// end that is CRLF and no other CR; CRLF after each chunk's data; no more
// than 16 KiB of overhead beyond 16 bytes per chunk and twice its data.
// Lines must fit the connection's buffer, as net/http's must. The trailer
// is read to its end and dropped: only a handed-off stream, which
// declares none, is relayed.
type chunked struct {
	br      *bufio.Reader
	state   chunkState
	left    uint64 // data bytes left in the chunk
	scanned int    // bytes of the line under way known to hold no LF
	excess  int64  // overhead beyond what the data allows (net/http's)
	empty   int    // reads in a row that returned nothing
	err     error  // the end (io.EOF) or a failure: kept
}

type chunkState uint8

const (
	chunkSizeLine chunkState = iota // the next chunk's size line
	chunkData                       // left bytes of data
	chunkDataEnd                    // the CRLF after a chunk's data
	chunkTrailer                    // after the last chunk: the trailer, to its empty line
)

var (
	errChunkBareLF     = errors.New("chunked line ends with bare LF")
	errChunkCR         = errors.New("invalid CR in chunked line")
	errChunkLineLong   = errors.New("chunked line too long")
	errChunkMalformed  = errors.New("malformed chunked encoding")
	errChunkEmptySize  = errors.New("empty hex number for chunk length")
	errChunkSizeByte   = errors.New("invalid byte in chunk length")
	errChunkSizeLarge  = errors.New("http chunk length too large")
	errChunkOverhead   = errors.New("chunked encoding contains too much non-data")
	errChunkTrailerLen = errors.New("suspiciously long trailer after chunked body")
)

// Read decodes into p. Like net/http's decoder it returns as soon as it
// has data and the next step would read from the connection.
func (d *chunked) Read(p []byte) (n int, err error) {
	for d.err == nil {
		switch d.state {
		case chunkSizeLine:
			line, err := d.line(n == 0)
			if err != nil {
				return n, d.fail(err)
			}
			if line == nil {
				return n, nil
			}
			d.beginChunk(line)
		case chunkData:
			if len(p) == 0 || n > 0 && d.br.Buffered() == 0 {
				return n, nil
			}
			m, err := d.br.Read(p[:min(uint64(len(p)), d.left)])
			n += m
			p = p[m:]
			d.left -= uint64(m)
			if d.left == 0 {
				d.state = chunkDataEnd
			}
			if err != nil {
				return n, d.fail(err)
			}
			if m == 0 {
				// A reader below that returns nothing and no error: as
				// bufio, give up rather than spin.
				if d.empty++; d.empty == 100 {
					d.err = io.ErrNoProgress
				}
				continue
			}
			d.empty = 0
		case chunkDataEnd:
			if n > 0 && d.br.Buffered() < 2 {
				return n, nil
			}
			b, err := d.br.Peek(2)
			if len(b) < 2 {
				return n, d.fail(err)
			}
			if b[0] != '\r' || b[1] != '\n' {
				d.err = errChunkMalformed
				break
			}
			d.br.Discard(2)
			d.state = chunkSizeLine
		case chunkTrailer:
			done, err := d.trailer(n == 0)
			if err != nil {
				return n, d.fail(err)
			}
			if !done {
				return n, nil
			}
			d.err = io.EOF
		}
	}
	return n, d.err
}

// ready reports whether Read would return data from the buffer alone,
// without reading the connection: what is left of a chunk's data, or a
// whole size line of a chunk that is not the last and some of its data.
func (d *chunked) ready() bool {
	if d.err != nil {
		return false
	}
	switch d.state {
	case chunkData:
		return d.br.Buffered() > 0
	case chunkSizeLine:
		b, _ := d.br.Peek(d.br.Buffered())
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		size, err := chunkSize(b[:i+1])
		return err == nil && size > 0 && len(b) > i+1
	}
	return false
}

// fail returns err, kept unless the read would only have blocked; the
// connection ending mid-body is io.ErrUnexpectedEOF.
func (d *chunked) fail(err error) error {
	switch err {
	case sockio.ErrWouldBlock:
		return err
	case io.EOF, nil:
		err = io.ErrUnexpectedEOF
	}
	d.err = err
	return err
}

// line returns the line under way, with its LF, once it is buffered; it
// stays in the buffer until beginChunk discards it. fill false: only if
// it is buffered whole (nil otherwise).
func (d *chunked) line(fill bool) ([]byte, error) {
	for {
		b, _ := d.br.Peek(d.br.Buffered())
		if i := bytes.IndexByte(b[d.scanned:], '\n'); i >= 0 {
			end := d.scanned + i + 1
			d.scanned = 0
			return b[:end], nil
		}
		d.scanned = len(b)
		if len(b) == d.br.Size() {
			return nil, errChunkLineLong
		}
		if !fill {
			return nil, nil
		}
		if _, err := d.br.Peek(len(b) + 1); err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}

// beginChunk reads a size line (with its LF) and discards it.
func (d *chunked) beginChunk(line []byte) {
	size, err := chunkSize(line)
	d.br.Discard(len(line))
	if err != nil {
		d.err = err
		return
	}
	d.excess += int64(len(line)) - 16 - 2*int64(size) // the line, and the CRLF after the data, less what the data allows
	d.excess = max(d.excess, 0)
	if d.excess > 16<<10 {
		d.err = errChunkOverhead
		return
	}
	if size == 0 {
		d.state = chunkTrailer
		return
	}
	d.left, d.state = size, chunkData
}

// chunkSize parses a size line, LF included, as net/http does.
func chunkSize(line []byte) (uint64, error) {
	cr := bytes.IndexByte(line, '\r')
	switch {
	case cr < 0:
		return 0, errChunkBareLF
	case cr != len(line)-2:
		return 0, errChunkCR
	case len(line)-2 >= 4096:
		return 0, errChunkLineLong
	}
	v := line[:cr]
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	v, _, _ = bytes.Cut(v, []byte(";"))
	if len(v) == 0 {
		return 0, errChunkEmptySize
	}
	var n uint64
	for i, b := range v {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b -= 'a' - 10
		case 'A' <= b && b <= 'F':
			b -= 'A' - 10
		default:
			return 0, errChunkSizeByte
		}
		if i == 16 {
			return 0, errChunkSizeLarge
		}
		n = n<<4 | uint64(b)
	}
	return n, nil
}

// trailer reads the trailer section through its empty line; fill false:
// only if it is buffered whole (done false otherwise). As net/http's, it
// must fit the buffer.
func (d *chunked) trailer(fill bool) (done bool, err error) {
	for {
		b, _ := d.br.Peek(d.br.Buffered())
		if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
			d.br.Discard(2)
			return true, nil
		}
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			// Every line ends in CRLF (net/http's reader would stop at
			// a bare LF's empty line and leave the rest unread).
			for j, c := range b[:i+4] {
				if c == '\n' && (j == 0 || b[j-1] != '\r') {
					return false, errChunkMalformed
				}
			}
			d.br.Discard(i + 4)
			return true, nil
		}
		if len(b) == d.br.Size() {
			return false, errChunkTrailerLen
		}
		if !fill {
			return false, nil
		}
		if _, err := d.br.Peek(len(b) + 1); err != nil && err != bufio.ErrBufferFull {
			return false, err
		}
	}
}
