// Package replay buffers a request body once so that the request can be sent
// again: to the next provider or key on failover, over fetch after the socket
// transport failed (aggressive fallback), and as the base of a Gemini
// continuation. Every part that needs a second send asks this package, so a
// body is read from the client exactly once whatever needs it.
package replay

import (
	"bytes"
	"io"
	"net/http"
)

// body is a buffered request body. Its Close does nothing: the bytes stay
// for the next send.
type body struct {
	bytes.Reader
	data []byte
}

func (*body) Close() error { return nil }

func newBody(data []byte) *body {
	b := &body{data: data}
	b.Reset(data)
	return b
}

// Buffer reads req's body into memory and makes req replayable: req.Body
// reads the buffer, req.GetBody returns a fresh reader of it, and
// req.ContentLength is its length. It reads at most limit bytes: a longer
// body is left streaming (req.Body reads what was read, then the rest) and
// Buffer returns false, so the request can be sent once only. A request
// buffered already, or without a body, is left as it is (true). An error
// reading the body (the client's, e.g. *http.MaxBytesError) is returned as
// it is, and the body is closed.
func Buffer(req *http.Request, limit int64) (bool, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return true, nil
	}
	if _, ok := req.Body.(*body); ok {
		return true, nil
	}
	size := 512
	if req.ContentLength > 0 && req.ContentLength <= limit {
		size = int(req.ContentLength) + 1 // +1: the read that sees EOF
	}
	data, err := readAll(&io.LimitedReader{R: req.Body, N: limit + 1}, size)
	if err != nil {
		req.Body.Close()
		return false, err
	}
	if int64(len(data)) > limit {
		req.Body = readCloser{io.MultiReader(bytes.NewReader(data), req.Body), req.Body}
		return false, nil
	}
	req.Body.Close()
	Set(req, data)
	return true, nil
}

// readAll is io.ReadAll starting with size bytes of room, which it grows
// only when they are full: a body of the declared length is read into the
// one allocation, with the byte to spare for the read that sees EOF
// (bytes.Buffer.ReadFrom would grow it first, to have 512 bytes free).
func readAll(r *io.LimitedReader, size int) ([]byte, error) {
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Set makes data req's replayable body.
func Set(req *http.Request, data []byte) {
	b := newBody(data)
	req.Body = b
	req.ContentLength = int64(len(data))
	req.GetBody = func() (io.ReadCloser, error) { return newBody(data), nil }
	if len(data) == 0 {
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
}

// Bytes returns the buffered body of a request made replayable by Buffer or
// Set (the bytes must not be modified), and whether it has one.
func Bytes(req *http.Request) ([]byte, bool) {
	if b, ok := req.Body.(*body); ok {
		return b.data, true
	}
	if req.Body == http.NoBody && req.GetBody != nil {
		return nil, true
	}
	return nil, false
}

// With returns a shallow copy of req whose replayable body is data. The
// original request is not changed.
func With(req *http.Request, data []byte) *http.Request {
	r := *req
	Set(&r, data)
	return &r
}

// Rewind returns req ready to be sent again: with a fresh reader of its
// body, or req itself when it has none. It reports false when the body
// cannot be read again.
func Rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r := *req
	r.Body = rc
	return &r, true
}

type readCloser struct {
	io.Reader
	io.Closer
}
