package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/lmittmann/tint"

	"github.com/llmproxy/llmproxy/privacy"
)

// newLogger returns the process logger: tint text (coloured on a terminal)
// or JSON. Every attribute passes through the redactor, so no token or key
// is printed, in debug mode either.
func newLogger(w io.Writer, format string, debug bool, r *privacy.Redactor, terminal bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	if format == "auto" {
		format = "json"
		if terminal {
			format = "text"
		}
	}
	if format == "json" {
		return slog.New(newJSONHandler(w, level, r))
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{
		Level:       level,
		ReplaceAttr: r.ReplaceAttr,
		NoColor:     !terminal,
		TimeFormat:  "2006-01-02 15:04:05.000",
	}))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
