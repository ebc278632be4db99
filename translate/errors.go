package translate

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Error codes of the answers Transport writes itself, in OpenAI's error
// format so that the SDKs raise them as API errors with a param.
const (
	codeUnsupported = "unsupported_parameter"
	codeInvalidType = "invalid_type"
	codeMissing     = "missing_required_parameter"
	codeInvalidJSON = "invalid_json"
	codeNotFound    = "previous_response_not_found"
	codeTooLarge    = "request_too_large"
	codeUpstream    = "upstream_error"
)

// apiError is an answer that Transport synthesizes instead of asking the
// provider: a request it cannot express, or a provider answer it cannot
// read. Messages never hold a header value, key or URL.
type apiError struct {
	status  int
	typ     string // "invalid_request_error" unless set
	code    string
	param   string // the offending field, e.g. "tools[0].type"; "" for none
	message string
}

func (e *apiError) Error() string { return e.message }

// refuse is a 400 for a field that cannot be expressed in Chat Completions.
func refuse(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeUnsupported, param: param,
		message: param + ": " + fmt.Sprintf(format, args...)}
}

// invalid is a 400 for a field of the wrong JSON type.
func invalid(param, want string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeInvalidType, param: param,
		message: param + ": must be " + want}
}

func missing(param string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeMissing, param: param,
		message: param + ": missing required parameter"}
}

// body is the error as OpenAI writes it:
// {"error":{"message","type","param","code"}} (param null when none).
func (e *apiError) body() []byte {
	typ := e.typ
	if typ == "" {
		typ = "invalid_request_error"
	}
	b := append([]byte(nil), `{"error":{"message":`...)
	b = appendString(b, e.message)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"param":`...)
	if e.param == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, e.param)
	}
	b = append(b, `,"code":`...)
	b = appendString(b, e.code)
	return append(b, "}}\n"...)
}

// response is the synthesized answer, marked X-Proxy-Error: true so that a
// client (and the attempt loop) can tell it from the provider's.
func (e *apiError) response(req *http.Request) *http.Response {
	body := e.body()
	h := make(http.Header, 4)
	h.Set("Content-Type", "application/json")
	h.Set("X-Proxy-Error", "true")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status:        strconv.Itoa(e.status) + " " + http.StatusText(e.status),
		StatusCode:    e.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
