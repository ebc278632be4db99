package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/store"
)

// validProviderName is the gateway's own rule for provider names.
var validProviderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validEnvName is a POSIX environment variable name.
var validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// keptValue stands for a sensitive header value the form does not show:
// sent back unchanged, it keeps the saved value.
const keptValue = "[kept]"

type providerRow struct {
	Name, Kind, Origin string
	Editable, Running  bool
	Hosts              []string
	// From the store (Editable only).
	BaseURL, Preset, Transport, Responses, APIVersion string
	Weight                                            int
	Models, HeaderNames                               []string
	Breaker                                           string
	BreakerUntil                                      time.Time
	Keys                                              []keyRow
}

type keyRow struct {
	Index              int
	Name, Masked       string
	Locked             bool // stored, but cannot be decrypted
	State, Reason      string
	Until              time.Time
	Requests, Failures int64
}

type providersData struct {
	Providers []providerRow
}

// OriginLabel says where an entry comes from, in the page's language.
func (v *view) OriginLabel(origin string) string {
	switch origin {
	case "store":
		return v.T("origin_store")
	case "config", "":
		return v.T("origin_config")
	case "preset":
		return v.T("origin_preset")
	}
	return v.T("origin_seed", origin)
}

func (h *Handler) providers(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "providers", "nav_providers")
	h.renderProviders(w, r, v, http.StatusOK)
}

func (h *Handler) renderProviders(w http.ResponseWriter, r *http.Request, v *view, status int) {
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	snap := h.opts.Snapshot()
	var rows []providerRow
	seen := map[string]bool{}
	stored := map[string]store.Provider{}
	for _, p := range e.Providers {
		stored[p.Name] = p
	}
	for _, ph := range snap.HealthReport(h.now()) {
		row := providerRow{Name: ph.Name, Kind: ph.Kind, Origin: ph.Origin, Running: true, Hosts: ph.Hosts, Breaker: ph.Breaker}
		if ph.BreakerUntil != nil {
			row.BreakerUntil = *ph.BreakerUntil
		}
		for i, k := range ph.Keys {
			kr := keyRow{Index: i, Name: k.Name, Masked: k.Masked, State: k.State, Reason: k.Reason, Requests: k.Requests, Failures: k.Failures}
			if k.Until != nil {
				kr.Until = *k.Until
			}
			row.Keys = append(row.Keys, kr)
		}
		if sp, ok := stored[ph.Name]; ok && ph.Origin == "store" {
			fillStored(&row, sp)
			seen[ph.Name] = true
			// Keys that do not decrypt here are not running: the health
			// report cannot list them, the page must.
			for i, k := range sp.Keys {
				if k.Locked != nil {
					row.Keys = append(row.Keys, keyRow{Index: len(ph.Keys) + i, Name: k.Name, Masked: maskedStoreKey(k), Locked: true})
				}
			}
		}
		rows = append(rows, row)
	}
	// Saved but not running: the last Apply failed, or another replica
	// wrote it.
	for _, sp := range e.Providers {
		if seen[sp.Name] {
			continue
		}
		row := providerRow{Name: sp.Name, Kind: sp.Kind, Origin: "store"}
		fillStored(&row, sp)
		for i, k := range sp.Keys {
			row.Keys = append(row.Keys, keyRow{Index: i, Name: k.Name, Masked: maskedStoreKey(k), Locked: k.Locked != nil})
		}
		rows = append(rows, row)
	}
	v.Data = providersData{Providers: rows}
	h.render(w, r, status, "providers", v)
}

func fillStored(row *providerRow, sp store.Provider) {
	row.Editable = true
	row.BaseURL, row.Preset, row.Transport, row.Responses, row.APIVersion = sp.BaseURL, sp.Preset, sp.Transport, sp.Responses, sp.APIVersion
	row.Weight, row.Models = sp.Weight, sp.Models
	if row.Kind == "" {
		row.Kind = sp.Kind
	}
	for name := range sp.Headers {
		row.HeaderNames = append(row.HeaderNames, name)
	}
	sort.Strings(row.HeaderNames)
}

// maskedStoreKey shows a stored key without its secret.
func maskedStoreKey(k store.ProviderKey) string {
	if k.Env != "" {
		return "env:" + k.Env
	}
	if k.Last4 != "" {
		return "…" + k.Last4
	}
	return "…"
}

// healthJSON is the providers page's live data: the health report, which
// holds key names and masked keys only.
func (h *Handler) healthJSON(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	body, err := json.Marshal(struct {
		Now       time.Time                `json:"now"`
		Providers []gateway.ProviderHealth `json:"providers"`
	}{now, h.opts.Snapshot().HealthReport(now)})
	if err != nil {
		http.Error(w, "health report failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// enableKey puts a disabled (or cooling) key back into use.
func (h *Handler) enableKey(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "providers", "nav_providers")
	name, keyName := r.PostFormValue("provider"), r.PostFormValue("key")
	index, err := strconv.Atoi(r.PostFormValue("index"))
	snap := h.opts.Snapshot()
	var prov *gateway.Provider
	for _, p := range append(snap.Providers(), snap.Presets()...) {
		if p.Name == name {
			prov = p
			break
		}
	}
	if prov == nil || err != nil || index < 0 || index >= len(prov.Keys()) || prov.Keys()[index].Name != keyName {
		v.Error = v.T("err_key_gone")
		h.renderProviders(w, r, v, http.StatusNotFound)
		return
	}
	prov.Keys()[index].Health().Enable()
	h.audit(r, "provider.key.enable", name+"/"+keyName, "")
	h.redirect(w, r, "/admin/providers", v.T("flash_key_enabled", keyName, name))
}

// ---- the form ----

type providerForm struct {
	New                                                  bool
	Name, Kind, BaseURL, Preset, Weight, Models, Headers string
	Transport, Responses, APIVersion                     string
	Keys                                                 []existingKey
	NewKeys                                              []newKey
	Presets                                              []string
	SecretKeySet                                         bool
	Errors                                               errs
	FormError                                            string
}

type existingKey struct {
	ID           int64
	Name, Source string
	Remove       bool
	Locked       bool // stored, but cannot be decrypted: remove it or enter it again
}

type newKey struct{ Name, Value string }

func (h *Handler) providerNew(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "providers", "provider_new_title")
	f := &providerForm{New: true, NewKeys: []newKey{{}}}
	h.renderProviderForm(w, r, v, f, http.StatusOK)
}

func (h *Handler) providerEdit(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "providers", "provider_edit_title")
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		v.Error = v.T("err_store", err.Error())
		h.renderProviders(w, r, v, http.StatusInternalServerError)
		return
	}
	name := r.URL.Query().Get("name")
	i := slices.IndexFunc(e.Providers, func(p store.Provider) bool { return p.Name == name })
	if i < 0 {
		v.Error = v.T("err_not_editable")
		h.renderProviders(w, r, v, http.StatusNotFound)
		return
	}
	p := e.Providers[i]
	f := &providerForm{
		Name: p.Name, Kind: p.Kind, BaseURL: p.BaseURL, Preset: p.Preset, Weight: itoa(p.Weight),
		Models: strings.Join(p.Models, ", "), Headers: formatHeaders(p.Headers),
		Transport: p.Transport, Responses: p.Responses, APIVersion: p.APIVersion, NewKeys: []newKey{{}},
	}
	for _, k := range p.Keys {
		f.Keys = append(f.Keys, existingKey{ID: k.ID, Name: k.Name, Source: maskedStoreKey(k), Locked: k.Locked != nil})
	}
	h.renderProviderForm(w, r, v, f, http.StatusOK)
}

func (h *Handler) renderProviderForm(w http.ResponseWriter, r *http.Request, v *view, f *providerForm, status int) {
	f.SecretKeySet = h.opts.SecretKeySet
	for _, p := range h.opts.Snapshot().Presets() {
		// Telegram and Discord are presets, not LLM APIs.
		if pr := p.Preset(); pr != nil && pr.Key != preset.KeyPath && pr.Key != preset.KeyBot {
			f.Presets = append(f.Presets, p.Name)
		}
	}
	if f.Errors == nil {
		f.Errors = errs{}
	}
	v.Data = f
	h.render(w, r, status, "provider_form", v)
}

// credentialFormats finds values in the known credential formats (sk-…,
// AIza…, bearer tokens) whatever the header's name.
var credentialFormats = privacy.NewRedactor()

// sensitiveHeader reports whether a header's name says its value may be a
// credential: the form shows it as keptValue, never its value.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "token", "secret", "auth", "pass", "cookie", "signature", "credential", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func formatHeaders(hs map[string]string) string {
	names := make([]string, 0, len(hs))
	for n := range hs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		value := hs[n]
		if sensitiveHeader(n) || credentialFormats.String(value) != value {
			value = keptValue
		}
		fmt.Fprintf(&b, "%s: %s\n", n, value)
	}
	return b.String()
}

// parseHeaders reads "Name: value" lines; old supplies the values kept
// behind keptValue. Names are case-insensitive (RFC 9110 §5.1): a later
// line replaces an earlier one of the same name.
func parseHeaders(s string, old map[string]string) (map[string]string, error) {
	var out map[string]string
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d", n+1)
		}
		if value == keptValue {
			v, found := old[name]
			for on, ov := range old {
				if !found && strings.EqualFold(on, name) {
					v, found = ov, true
				}
			}
			if !found {
				return nil, fmt.Errorf("line %d", n+1)
			}
			value = v
		}
		if out == nil {
			out = map[string]string{}
		}
		for k := range out {
			if strings.EqualFold(k, name) {
				delete(out, k)
			}
		}
		out[name] = value
	}
	return out, nil
}

func (h *Handler) providerSave(w http.ResponseWriter, r *http.Request) {
	original := r.PostFormValue("original")
	v := h.view(w, r, "providers", "provider_new_title")
	if original != "" {
		v.Title = v.T("provider_edit_title")
	}
	pf := r.PostForm
	f := &providerForm{
		New: original == "", Name: strings.TrimSpace(pf.Get("name")), Kind: pf.Get("kind"),
		BaseURL: strings.TrimSpace(pf.Get("base_url")), Preset: strings.TrimSpace(pf.Get("preset")),
		Weight: strings.TrimSpace(pf.Get("weight")), Models: pf.Get("models"), Headers: pf.Get("headers"),
		Transport: pf.Get("transport"), Responses: pf.Get("responses"), APIVersion: strings.TrimSpace(pf.Get("api_version")),
		Errors: errs{},
	}
	if !f.New {
		f.Name = original // a provider is renamed by adding it anew: routes name it
	}
	remove := map[int64]bool{}
	for _, id := range pf["removekey"] {
		n, _ := strconv.ParseInt(id, 10, 64)
		remove[n] = true
	}
	names, values := pf["newkey_name"], pf["newkey_value"]
	for i, value := range values {
		k := newKey{Value: strings.TrimSpace(value)}
		if i < len(names) {
			k.Name = strings.TrimSpace(names[i])
		}
		if k.Value == "" && k.Name == "" {
			continue
		}
		f.NewKeys = append(f.NewKeys, k)
	}

	// Checks the panel can make itself, each on its field.
	switch {
	case f.Name == "":
		f.Errors.add("name", v.T("err_required"))
	case !validProviderName.MatchString(f.Name):
		f.Errors.add("name", v.T("err_provider_name"))
	}
	snap := h.opts.Snapshot()
	if f.New {
		for _, p := range snap.Providers() {
			if p.Name == f.Name && p.Origin != "store" {
				f.Errors.add("name", v.T("err_name_elsewhere", v.OriginLabel(p.Origin)))
			}
		}
	}
	switch f.Kind {
	case "", "openai", "anthropic", "gemini", "azure":
	default:
		f.Errors.add("kind", v.T("err_choice"))
	}
	if f.BaseURL != "" && f.Preset != "" {
		f.Errors.add("base_url", v.T("err_url_or_preset"))
	}
	if f.BaseURL == "" && f.Preset == "" {
		f.Errors.add("base_url", v.T("err_url_or_preset"))
	}
	weight, ok := formInt(f.Weight)
	if !ok {
		f.Errors.add("weight", v.T("err_whole_number"))
	}
	switch f.Transport {
	case "", "auto", "socket", "fetch":
	default:
		f.Errors.add("transport", v.T("err_choice"))
	}
	switch f.Responses {
	case "", "native", "translate":
	default:
		f.Errors.add("responses", v.T("err_choice"))
	}
	var added []store.ProviderKey
	for _, k := range f.NewKeys {
		switch env, isEnv := strings.CutPrefix(k.Value, "env:"); {
		case k.Value == "":
			f.Errors.add("newkey", v.T("err_key_value"))
		case isEnv && !validEnvName.MatchString(env):
			f.Errors.add("newkey", v.T("err_env_name"))
		case isEnv:
			added = append(added, store.ProviderKey{Name: k.Name, Env: env})
		case !h.opts.SecretKeySet:
			f.Errors.add("newkey", v.T("err_literal_needs_secret_key"))
		case strings.ContainsAny(k.Value, " \t\r\n"):
			f.Errors.add("newkey", v.T("err_key_whitespace"))
		default:
			added = append(added, store.ProviderKey{Name: k.Name, Secret: k.Value})
		}
	}
	keyNames := map[int64]string{}
	for name, vals := range pf {
		if idStr, ok := strings.CutPrefix(name, "keyname_"); ok {
			id, err := strconv.ParseInt(idStr, 10, 64)
			if err == nil && len(vals) > 0 {
				keyNames[id] = strings.TrimSpace(vals[0])
			}
		}
	}
	if len(f.Errors) == 0 {
		err := h.change(r, func(tx *store.Tx) error {
			e, err := tx.Entries()
			if err != nil {
				return err
			}
			var old *store.Provider
			if i := slices.IndexFunc(e.Providers, func(p store.Provider) bool { return p.Name == f.Name }); i >= 0 {
				old = &e.Providers[i]
			}
			switch {
			case f.New && old != nil:
				return &fieldError{"name", v.T("err_name_taken")}
			case !f.New && old == nil:
				return errors.New(v.T("err_not_editable"))
			}
			p := store.Provider{
				Name: f.Name, Kind: f.Kind, BaseURL: f.BaseURL, Preset: f.Preset, Weight: weight,
				Models: splitList(f.Models), Transport: f.Transport, Responses: f.Responses, APIVersion: f.APIVersion,
			}
			var oldHeaders map[string]string
			var dropped []string
			if old != nil {
				oldHeaders = old.Headers
				for _, k := range old.Keys {
					if remove[k.ID] {
						dropped = append(dropped, k.Name)
						continue
					}
					nk := store.ProviderKey{ID: k.ID, Name: k.Name, Env: k.Env}
					if n := keyNames[k.ID]; n != "" {
						nk.Name = n
					}
					p.Keys = append(p.Keys, nk)
				}
			}
			if p.Headers, err = parseHeaders(f.Headers, oldHeaders); err != nil {
				return &fieldError{"headers", v.T("err_headers", err.Error())}
			}
			p.Keys = append(p.Keys, added...)
			if err := tx.PutProvider(p); err != nil {
				return err
			}
			action := "provider.update"
			if f.New {
				action = "provider.create"
			}
			return tx.Audit(action, p.Name, providerDetail(old, p, dropped))
		})
		if err == nil {
			msg := v.T("flash_provider_saved", f.Name)
			h.redirect(w, r, "/admin/providers", msg)
			return
		}
		field, msg := refusal(v, err, "provider", f.Name)
		if field == "" {
			f.FormError = msg
		} else {
			f.Errors.add(field, msg)
		}
	}
	// Shown again as typed, except literal secrets: no page holds one.
	for i, k := range f.NewKeys {
		if !strings.HasPrefix(k.Value, "env:") && k.Value != "" {
			f.NewKeys[i].Value = ""
			f.Errors.add("newkey", v.T("err_reenter_secret"))
		}
	}
	if len(f.NewKeys) == 0 {
		f.NewKeys = []newKey{{}}
	}
	if !f.New {
		if e, err := h.opts.Store.Entries(r.Context()); err == nil {
			if i := slices.IndexFunc(e.Providers, func(p store.Provider) bool { return p.Name == f.Name }); i >= 0 {
				for _, k := range e.Providers[i].Keys {
					name := k.Name
					if n := keyNames[k.ID]; n != "" {
						name = n
					}
					f.Keys = append(f.Keys, existingKey{ID: k.ID, Name: name, Source: maskedStoreKey(k), Remove: remove[k.ID], Locked: k.Locked != nil})
				}
			}
		}
	}
	h.renderProviderForm(w, r, v, f, http.StatusUnprocessableEntity)
}

// providerDetail says what a change did, for the audit log: settings
// by name, keys by name — never a key, and no header value (it may be
// one).
func providerDetail(old *store.Provider, p store.Provider, dropped []string) string {
	var parts []string
	if p.Preset != "" {
		parts = append(parts, "preset="+p.Preset)
	}
	if p.Kind != "" {
		parts = append(parts, "kind="+p.Kind)
	}
	var added []string
	for _, k := range p.Keys {
		if k.ID == 0 {
			added = append(added, keyLabel(k))
		}
	}
	if len(added) > 0 {
		parts = append(parts, "keys added: "+strings.Join(added, ", "))
	}
	if len(dropped) > 0 {
		parts = append(parts, "keys removed: "+strings.Join(dropped, ", "))
	}
	if old != nil {
		var changed []string
		for _, c := range []struct {
			name string
			diff bool
		}{
			{"base_url", old.BaseURL != p.BaseURL}, {"preset", old.Preset != p.Preset}, {"kind", old.Kind != p.Kind},
			{"weight", old.Weight != p.Weight}, {"models", !slices.Equal(old.Models, p.Models)},
			{"headers", !sameHeaders(old.Headers, p.Headers)}, {"transport", old.Transport != p.Transport},
			{"responses", old.Responses != p.Responses}, {"api_version", old.APIVersion != p.APIVersion},
		} {
			if c.diff {
				changed = append(changed, c.name)
			}
		}
		if len(changed) > 0 {
			parts = append(parts, "changed: "+strings.Join(changed, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

func keyLabel(k store.ProviderKey) string {
	if k.Env != "" {
		return cmpOr(k.Name, k.Env) + " (env:" + k.Env + ")"
	}
	return cmpOr(k.Name, "unnamed") + " (stored)"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (h *Handler) providerDelete(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "providers", "nav_providers")
	name := r.PostFormValue("name")
	err := h.change(r, func(tx *store.Tx) error {
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(e.Providers, func(p store.Provider) bool { return p.Name == name }) {
			return errors.New(v.T("err_not_editable"))
		}
		if err := tx.DeleteProvider(name); err != nil {
			return err
		}
		return tx.Audit("provider.delete", name, "")
	})
	if err != nil {
		_, msg := refusal(v, err, "", name)
		v.Error = msg
		h.renderProviders(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	h.redirect(w, r, "/admin/providers", v.T("flash_provider_deleted", name))
}
