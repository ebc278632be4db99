package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

// The fake provider every target talks to, run as its own process
// (`bench upstream`). It speaks TLS with HTTP/2 and HTTP/1.1, like the
// providers do, and offers:
//
//	POST /v1/chat/completions   a short JSON answer (the small-request test); with
//	                            "stream":true, bench_events chat chunks bench_gap
//	                            apart, stamped like /sse's, then the usage chunk
//	                            when stream_options.include_usage asks for it
//	                            (the gateway's SSE test)
//	GET  /sse?n=N&gap=D         N events D apart, each stamped with its send time
//	GET  /slow                  one event now, then one a minute: an idle stream
//	GET  /_conns                how many TCP+TLS connections it accepted so far

const chatAnswer = `{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"bench-1",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}`

func runUpstream(addr, certFile, keyFile string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		log.Fatal(err)
	}
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			chatStream(w, body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(chatAnswer)))
		io.WriteString(w, chatAnswer)
	})
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		gap, _ := time.ParseDuration(r.URL.Query().Get("gap"))
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := range n {
			if i > 0 && gap > 0 {
				time.Sleep(gap)
			}
			fmt.Fprintf(w, "data: {\"i\":%d,\"t\":%d,\"choices\":[{\"delta\":{\"content\":\"token\"}}]}\n\n", i, time.Now().UnixNano())
			f.Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			io.WriteString(w, "data: {\"alive\":true}\n\n")
			f.Flush()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("GET /_conns", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, conns.Load())
	})
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"h2", "http/1.1"},
		},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.ServeTLS(ln, "", ""))
}

// writeCertificate writes the test authority's server certificate and key
// as PEM files for the upstream process, and returns their paths and the
// CA file the proxies trust.
func writeCertificate(dir string) (certFile, keyFile, caFile string) {
	ca := providertest.CA(fatalTB{})
	certFile, keyFile = filepath.Join(dir, "upstream.pem"), filepath.Join(dir, "upstream-key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Certificate[0]})
	der, err := x509.MarshalPKCS8PrivateKey(ca.Cert.PrivateKey)
	if err != nil {
		log.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		log.Fatal(err)
	}
	return certFile, keyFile, ca.CAFile
}

// fatalTB lets the harness use providertest's CA outside a test.
type fatalTB struct{}

func (fatalTB) Helper()                   {}
func (fatalTB) Fatalf(f string, a ...any) { log.Fatalf(f, a...) }

// chatStream answers a streaming chat request as OpenAI does: chunks with
// "usage": null when usage was asked for, a last chunk with the
// finish_reason, the usage-only chunk, [DONE].
func chatStream(w http.ResponseWriter, body []byte) {
	var req struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Events int    `json:"bench_events"`
		Gap    string `json:"bench_gap"`
	}
	json.Unmarshal(body, &req)
	gap, _ := time.ParseDuration(req.Gap)
	usage := ""
	if req.StreamOptions.IncludeUsage {
		usage = `,"usage":null`
	}
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	for i := range req.Events {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		fmt.Fprintf(w, "data: {\"i\":%d,\"t\":%d,\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token\"},\"finish_reason\":null}]%s}\n\n",
			i, time.Now().UnixNano(), usage)
		f.Flush()
	}
	fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]%s}\n\n", usage)
	if req.StreamOptions.IncludeUsage {
		fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", req.Events, req.Events+9)
	}
	io.WriteString(w, "data: [DONE]\n\n")
}
