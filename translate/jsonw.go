package translate

import (
	"strconv"

	"github.com/llmproxy/llmproxy/jsonscan"
)

// The events of a translated stream are written by hand: one delta event is
// a few appends instead of a reflection walk (see BenchmarkStream).

// appendString appends s as a JSON string, escaped as encoding/json does
// without HTML escaping (OpenAI does not escape <, > and & either).
func appendString(dst []byte, s string) []byte { return jsonscan.AppendString(dst, s) }

// appendRaw appends a compact JSON value, or def when there is none.
func appendRaw(dst, raw []byte, def string) []byte {
	if len(raw) == 0 {
		return append(dst, def...)
	}
	return append(dst, raw...)
}

func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }
