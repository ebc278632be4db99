package meter

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// Streams of 1,000 small events, as each provider sends them, with usage
// where each puts it. Each benchmark reads the stream the way the proxy
// does (one event per upstream Read, as they come off the network, or
// 32 KiB at a time) and reports ns/event; "copy" is a plain io.Copy of the
// same bytes for comparison.

const benchEvents = 1000

func openAIBenchStream() []string {
	var ev []string
	for i := range benchEvents - 2 {
		ev = append(ev, fmt.Sprintf(`data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n", i))
	}
	ev = append(ev, `data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":998,"total_tokens":1017,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n",
		"data: [DONE]\n\n")
	return ev
}

func anthropicBenchStream() []string {
	ev := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	}
	for i := range benchEvents - 5 {
		ev = append(ev, fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word%d\"}}\n\n", i))
	}
	return append(ev,
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":995}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
}

// Gemini repeats usageMetadata (cumulative) in every chunk.
func geminiBenchStream() []string {
	var ev []string
	for i := range benchEvents {
		ev = append(ev, fmt.Sprintf("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" word%d\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": %d,\"totalTokenCount\": %d,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 9}]},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"BgFXaPH7HNHbz7IPs8Kx2Qg\"}\r\n\r\n", i, i+1, i+10))
	}
	return ev
}

// eventReader hands out one event per Read, like a stream arriving event by
// event; with bulk it fills p instead. It hides WriterTo so that io.Copy
// reads through a buffer, as the proxy does.
type eventReader struct {
	events []string
	i, off int
	bulk   bool
}

func (r *eventReader) Read(p []byte) (int, error) {
	n := 0
	for r.i < len(r.events) && n < len(p) {
		c := copy(p[n:], r.events[r.i][r.off:])
		n += c
		r.off += c
		if r.off == len(r.events[r.i]) {
			r.i, r.off = r.i+1, 0
			if !r.bulk {
				break
			}
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *eventReader) Close() error { return nil }

// writerOnly hides io.Discard's ReaderFrom.
type writerOnly struct{ io.Writer }

func benchStream(b *testing.B, events []string, opts Options) {
	size := 0
	for _, e := range events {
		size += len(e)
	}
	for _, mode := range []struct {
		name string
		bulk bool
	}{{"event-reads", false}, {"32KiB-reads", true}} {
		for _, meter := range []bool{false, true} {
			name := mode.name + "/copy"
			if meter {
				name = mode.name + "/meter"
			}
			b.Run(name, func(b *testing.B) {
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var want Usage
				var got Usage
				o := opts
				o.Done = func(u Usage, _ bool) { got = u }
				for b.Loop() {
					var r io.Reader = &eventReader{events: events, bulk: mode.bulk}
					if meter {
						r = Wrap(r.(io.ReadCloser), o)
					}
					if _, err := io.CopyBuffer(writerOnly{io.Discard}, r, buf); err != nil {
						b.Fatal(err)
					}
					if meter {
						if got.IsZero() || (want != Usage{} && got != want) {
							b.Fatalf("usage %+v", got)
						}
						want = got
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
			})
		}
	}
}

// The streams are metered as the gateway meters them: with RequireEnd.
func BenchmarkOpenAI(b *testing.B) {
	benchStream(b, openAIBenchStream(), Options{Format: OpenAI, Stream: true, RequireEnd: true})
}

func BenchmarkOpenAIStrip(b *testing.B) {
	benchStream(b, openAIBenchStream(), Options{Format: OpenAI, Stream: true, StripUsageChunk: true, RequireEnd: true})
}

func BenchmarkAnthropic(b *testing.B) {
	benchStream(b, anthropicBenchStream(), Options{Format: Anthropic, Stream: true, RequireEnd: true})
}

func BenchmarkGemini(b *testing.B) {
	benchStream(b, geminiBenchStream(), Options{Format: Gemini, Stream: true, RequireEnd: true})
}

// BenchmarkGeminiArray: streamGenerateContent without alt=sse.
func BenchmarkGeminiArray(b *testing.B) {
	ev := geminiBenchStream()
	for i := range ev {
		ev[i] = strings.TrimSuffix(strings.TrimPrefix(ev[i], "data: "), "\r\n\r\n") + "\r\n,"
	}
	ev[0] = "[" + ev[0]
	ev[len(ev)-1] = strings.TrimSuffix(ev[len(ev)-1], "\r\n,") + "]"
	benchStream(b, ev, Options{Format: Gemini})
}

// Non-streaming answers: one JSON body, usage at the end after a long
// completion, read 32 KiB at a time.
func benchBody(b *testing.B, body string, f Format) {
	events := []string{body}
	b.Run("meter", func(b *testing.B) {
		buf := make([]byte, 32<<10)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var got Usage
		for b.Loop() {
			got = Usage{}
			r := Wrap(&eventReader{events: events, bulk: true}, Options{Format: f, Done: func(u Usage, _ bool) { got = u }})
			if _, err := io.CopyBuffer(writerOnly{io.Discard}, r, buf); err != nil {
				b.Fatal(err)
			}
			r.Close()
			if got.IsZero() {
				b.Fatal("no usage")
			}
		}
	})
}

func longText() string {
	return strings.Repeat(`Lorem ipsum dolor sit amet, \"consectetur\" adipiscing elit.\n`, 100)
}

func BenchmarkOpenAIBody(b *testing.B) {
	benchBody(b, `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"`+longText()+`","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":998,"total_tokens":1017,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_44709d6fcb"}`, OpenAI)
}

func BenchmarkAnthropicBody(b *testing.B) {
	benchBody(b, `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"`+longText()+`"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":995}}`, Anthropic)
}

func BenchmarkResponsesBody(b *testing.B) {
	benchBody(b, `{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"`+longText()+`","annotations":[]}]}],"parallel_tool_calls":true,"store":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}}`, OpenAIResponses)
}
