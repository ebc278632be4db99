package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// GeminiAttempt scripts one request to the fake Gemini.
type GeminiAttempt struct {
	Status   int      // answer with this HTTP status and a Google error (e.g. 429)
	Thoughts []string // thought parts sent before the answer text
	Block    string   // promptFeedback.blockReason: the prompt is refused
	// Cut is how many characters of the rest of the answer this attempt
	// sends before breaking off; 0 sends the whole rest, -1 none of it.
	Cut int
	// How it breaks off: "eof" ends the stream cleanly without a
	// finishReason, "reset" drops the TCP connection, "stall" sends nothing
	// more and keeps the connection open until the client goes (for
	// generateContent, which answers whole, nothing at all), anything
	// else is the finishReason sent (OTHER, MALFORMED_FUNCTION_CALL,
	// MAX_TOKENS, STOP).
	How string
	// Repeat re-sends this many characters of what the client already has
	// before continuing, as models do.
	Repeat int
	// FunctionCall sends a functionCall part before the text.
	FunctionCall bool
}

// Gemini is a fake Gemini API that answers with Answer, broken up as the
// attempts say (one script per request, in order; requests beyond the
// script get the rest of the answer in full). It serves
// :streamGenerateContent (SSE with alt=sse, a JSON array without) and
// :generateContent.
type Gemini struct {
	Answer   string
	Attempts []GeminiAttempt
	Chunk    int // characters per chunk; default 7

	mu     sync.Mutex
	bodies []map[string]any
}

// Bodies returns the decoded request bodies received, in order.
func (g *Gemini) Bodies() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.bodies...)
}

func (g *Gemini) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	g.mu.Lock()
	n := len(g.bodies)
	g.bodies = append(g.bodies, body)
	g.mu.Unlock()
	var a GeminiAttempt
	if n < len(g.Attempts) {
		a = g.Attempts[n]
	}
	if a.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.Status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"fake gemini says no","status":"RESOURCE_EXHAUSTED"}}`, a.Status)
		return
	}
	contents, _ := body["contents"].([]any)
	promptTokens := 10 * len(contents)
	have := modelTurnText(contents)
	rest := []rune(strings.TrimPrefix(g.Answer, have))
	if a.Repeat > 0 {
		h := []rune(have)
		rest = append(h[len(h)-min(a.Repeat, len(h)):], rest...)
	}
	send := rest
	switch {
	case a.Cut < 0:
		send = nil
	case a.Cut > 0 && a.Cut < len(rest):
		send = rest[:a.Cut]
	}
	size := g.Chunk
	if size <= 0 {
		size = 7
	}
	var chunks [][]any
	for _, th := range a.Thoughts {
		chunks = append(chunks, []any{map[string]any{"text": th, "thought": true}})
	}
	if a.FunctionCall {
		chunks = append(chunks, []any{map[string]any{"functionCall": map[string]any{"name": "lookup", "args": map[string]any{"q": "x"}}}})
	}
	for i := 0; i < len(send); i += size {
		chunks = append(chunks, []any{map[string]any{"text": string(send[i:min(i+size, len(send))])}})
	}
	finish := "STOP"
	if a.How != "" {
		finish = a.How
	}
	if finish == "eof" || finish == "reset" || finish == "stall" {
		finish = ""
	}
	resp := func(i int, parts []any, fr string, tokens int) map[string]any {
		cand := map[string]any{"index": 0, "content": map[string]any{"role": "model", "parts": parts}}
		if fr != "" {
			cand["finishReason"] = fr
		}
		m := map[string]any{
			"candidates":    []any{cand},
			"usageMetadata": map[string]any{"promptTokenCount": promptTokens, "candidatesTokenCount": tokens, "totalTokenCount": promptTokens + tokens},
			"modelVersion":  "gemini-fake",
			"responseId":    fmt.Sprintf("resp-%d", n),
		}
		if a.Block != "" {
			m = map[string]any{"promptFeedback": map[string]any{"blockReason": a.Block}, "usageMetadata": m["usageMetadata"]}
		}
		return m
	}

	if a.Block != "" {
		chunks = [][]any{nil}
	}
	switch {
	case strings.HasSuffix(r.URL.Path, ":generateContent"):
		var all []any
		for _, c := range chunks {
			all = append(all, c...)
		}
		switch a.How {
		case "reset":
			reset(w)
			return
		case "stall":
			stall(r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp(0, all, finish, len(send)))
	default:
		sse := r.URL.Query().Get("alt") == "sse"
		if sse {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "[")
		}
		tokens := 0
		for i, parts := range chunks {
			for _, p := range parts {
				if t, ok := p.(map[string]any)["text"].(string); ok {
					tokens += len([]rune(t))
				}
			}
			fr := ""
			if i == len(chunks)-1 {
				fr = finish
			}
			data, _ := json.Marshal(resp(i, parts, fr, tokens))
			switch {
			case sse:
				fmt.Fprintf(w, "data: %s\r\n\r\n", data)
			case i == 0:
				fmt.Fprintf(w, "%s", data)
			default:
				fmt.Fprintf(w, ",\r\n%s", data)
			}
			w.(http.Flusher).Flush()
		}
		switch a.How {
		case "reset":
			reset(w)
			return
		case "stall":
			stall(r)
			return
		}
		if !sse && a.How != "eof" {
			io.WriteString(w, "]")
		}
	}
}

// modelTurnText is the text of the model turn a continuation carries.
func modelTurnText(contents []any) string {
	if len(contents) < 2 {
		return ""
	}
	turn, _ := contents[len(contents)-2].(map[string]any)
	if turn["role"] != "model" {
		return ""
	}
	var b strings.Builder
	for _, p := range turn["parts"].([]any) {
		if t, ok := p.(map[string]any)["text"].(string); ok {
			b.WriteString(t)
		}
	}
	return b.String()
}

// stallFor bounds a stall: long past any idle timeout a test sets, short of
// a test's own timeout.
const stallFor = 20 * time.Second

// stall sends nothing more until the client goes; a client that never
// gives up sees the answer end, without a finishReason, after stallFor.
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(stallFor):
	}
}

// reset drops the client's connection without ending the response.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
	}
	conn.Close()
}
