package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/store"
)

// fieldError is a value the panel refuses itself, on a field of the form.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

// applyError is a change that was saved but could not be applied to
// running traffic. revoked: a revocation took effect all the same.
type applyError struct {
	err     error
	revoked bool
}

func (e *applyError) Error() string { return e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }

// change runs edit in one store transaction, checks the entries it leaves
// with Options.Check before anything is committed, and applies the result
// to running traffic. Everything or nothing is saved: edit's error, a
// store error or a refused check rolls the transaction back.
func (h *Handler) change(r *http.Request, edit func(tx *store.Tx) error) error {
	return h.commit(r, edit, true)
}

// commit is change, with the check optional: revoking a key only takes a
// credential away, and must never be held up by the rest of the
// configuration (an unset variable, say). Unchecked, a change that cannot
// be applied still has the keys the store revoked taken out of running
// traffic.
func (h *Handler) commit(r *http.Request, edit func(tx *store.Tx) error, check bool) error {
	// A change the store has begun is finished even if the browser leaves.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	err := h.opts.Store.Change(ctx, actor(r), func(tx *store.Tx) error {
		if err := edit(tx); err != nil {
			return err
		}
		if !check {
			return nil
		}
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		return h.opts.Check(e)
	})
	if err != nil {
		h.log.Info("admin change refused", "client", clientAddr(r), "path", r.URL.Path, "err", err)
		return err
	}
	if err := h.opts.Apply(ctx); err != nil {
		if !check {
			if derr := h.opts.DropRevoked(ctx); derr != nil {
				h.log.Error("admin change saved but not applied; revoked keys not taken out", "err", err, "drop_err", derr)
				return &applyError{err: err}
			}
			h.log.Error("admin change saved; revoked keys taken out of running traffic, the rest not applied", "err", err)
			return &applyError{err: err, revoked: true}
		}
		h.log.Error("admin change saved but not applied", "err", err)
		return &applyError{err: err}
	}
	return nil
}

// audit records an action that changes running traffic without changing
// the store's entries (re-enabling a key).
func (h *Handler) audit(r *http.Request, action, target, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	err := h.opts.Store.Change(ctx, actor(r), func(tx *store.Tx) error { return tx.Audit(action, target, detail) })
	if err != nil {
		h.log.Error("admin audit failed", "action", action, "err", err)
	}
}

// refusal places err on a field of a form, or on the form as a whole.
// kind and name say which entry the form edits: an error naming another
// entry (a model that still uses a deleted provider) is the form's.
func refusal(v *view, err error, kind, name string) (field, msg string) {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.Field, fe.Msg
	}
	var ae *applyError
	if errors.As(err, &ae) {
		return "", v.T("err_not_applied", ae.Error())
	}
	if errors.Is(err, store.ErrNoSecretKey) {
		return "newkey", v.T("err_literal_needs_secret_key")
	}
	var ie *store.InvalidError
	if errors.As(err, &ie) {
		if f := storeField(kind, ie.Field); f != "" {
			return f, ie.Err.Error()
		}
		return "", v.T("err_refused", ie.Error())
	}
	var se *config.SettingError
	if !errors.As(err, &se) {
		return "", v.T("err_refused", err.Error())
	}
	switch kind {
	case "provider":
		for _, prefix := range []string{"providers." + name, "store: provider " + name} {
			if rest, ok := strings.CutPrefix(se.Setting, prefix); ok && (rest == "" || rest[0] == '.') {
				f := strings.TrimPrefix(rest, ".")
				switch f {
				case "":
					return "name", se.Msg
				case "keys":
					return "newkey", se.Msg
				case "base_url", "preset", "kind", "weight", "models", "headers", "transport", "responses", "api_version":
					return f, se.Msg
				}
			}
		}
	case "model":
		for _, prefix := range []string{"models." + name, "store: model " + name} {
			if rest, ok := strings.CutPrefix(se.Setting, prefix); ok && (rest == "" || rest[0] == '.') {
				f := strings.TrimPrefix(rest, ".")
				switch {
				case f == "":
					return "name", se.Msg
				case strings.HasPrefix(f, "targets"):
					return "targets", strings.TrimPrefix(strings.TrimPrefix(f, "targets"), ".") + " " + se.Msg
				case f == "strategy", f == "pricing":
					return f, se.Msg
				}
			}
		}
	case "client key":
		// access.Compile names a store key's setting by its origin only;
		// the message names the key and the part at fault.
		prefix := fmt.Sprintf("client key %q", name)
		if se.Setting == "store" && strings.Contains(se.Msg, prefix) {
			rest := strings.TrimPrefix(se.Msg[strings.Index(se.Msg, prefix)+len(prefix):], ":")
			rest = strings.TrimSpace(rest)
			switch {
			case strings.HasPrefix(rest, "models:"):
				return "models", strings.TrimSpace(strings.TrimPrefix(rest, "models:"))
			case strings.HasPrefix(rest, "presets:"):
				return "presets", strings.TrimSpace(strings.TrimPrefix(rest, "presets:"))
			case strings.HasPrefix(rest, "budget:"):
				return "budget", strings.TrimSpace(strings.TrimPrefix(rest, "budget:"))
			case strings.HasPrefix(rest, "rpm"):
				return "rpm", rest
			}
			return "name", se.Msg
		}
		if se.Setting == "store" && strings.Contains(se.Msg, fmt.Sprintf("name %q", name)) {
			return "name", se.Msg
		}
	}
	return "", v.T("err_refused", se.Error())
}

// storeField is the form field of a field the store names: keys[1].env
// is the keys part of the provider form.
func storeField(kind, field string) string {
	switch {
	case kind == "provider" && strings.HasPrefix(field, "keys"):
		return "newkey"
	case kind == "provider" && (field == "name" || field == "models" || field == "headers"):
		return field
	case kind == "model" && (field == "name" || field == "targets" || field == "pricing" || field == "metadata"):
		return field
	case kind == "model" && field == "flags":
		return ""
	case kind == "client key" && (field == "name" || field == "models" || field == "presets" || field == "budget"):
		return field
	}
	return ""
}

// splitList reads a list typed as words separated by commas, spaces or
// lines; nil when there are none.
func splitList(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) }) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// formInt reads a whole number ≥ 0 ("" is 0).
func formInt(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= 1<<31-1
}

// formFloat reads a number ≥ 0; ok is false for anything else.
func formFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && f >= 0 && f < 1e12
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// errs collects a form's messages by field.
type errs map[string]string

func (e errs) add(field, msg string) {
	if _, ok := e[field]; !ok {
		e[field] = msg
	}
}
