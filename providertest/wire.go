package providertest

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
)

// readBody reads the request body; NewServer has already recorded it and
// put it back.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	return io.ReadAll(r.Body)
}

// writeJSON writes v as a whole JSON answer with a Content-Length.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b := mustJSON(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// sse frames one server-sent event with LF line ends, as OpenAI and
// Anthropic send them.
func sse(event string, data []byte) []byte {
	var b []byte
	if event != "" {
		b = append(b, "event: "+event+"\n"...)
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// defaultEmbeddingDims is the length of an embedding when the request does
// not ask for one: short, since tests only compare vectors.
const defaultEmbeddingDims = 8

// embedVector is a deterministic unit vector for text: the same text always
// gets the same vector, different texts almost surely different ones.
func embedVector(text string, dims int) []float32 {
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		h := fnv.New64a()
		io.WriteString(h, text)
		h.Write([]byte{byte(i), byte(i >> 8)})
		x := float64(h.Sum64())/math.MaxUint64*2 - 1
		v[i] = float32(x)
		norm += x * x
	}
	if norm > 0 {
		n := math.Sqrt(norm)
		for i := range v {
			v[i] = float32(float64(v[i]) / n)
		}
	}
	return v
}

// float32Base64 is OpenAI's encoding_format "base64": little-endian
// float32s, base64-encoded.
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
