package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/store"
)

type modelRow struct {
	Name, Origin, Strategy string
	Editable, Running      bool
	Pattern                bool
	Targets                []gateway.TargetInfo
	DisplayName            string
	Pricing                *config.Pricing
	ContextWindow          int
	Flags                  []string
	Metadata               string
}

type modelsData struct{ Models []modelRow }

func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	h.renderModels(w, r, h.view(w, r, "models", "nav_models"), http.StatusOK)
}

func (h *Handler) renderModels(w http.ResponseWriter, r *http.Request, v *view, status int) {
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	seen := map[string]bool{}
	var rows []modelRow
	for _, rt := range h.opts.Snapshot().Routes() {
		row := modelRow{
			Name: rt.Name, Origin: rt.Origin, Strategy: string(rt.Strategy), Running: true,
			Editable: rt.Origin == "store", Pattern: strings.Contains(rt.Name, "*"),
			DisplayName: rt.Info.DisplayName, Pricing: rt.Info.Pricing, ContextWindow: rt.Info.ContextWindow,
			Flags: rt.Info.Flags, Metadata: metadataText(rt.Info.Metadata),
		}
		// A preset with several base URLs is one target per URL: show it once.
		for _, t := range rt.Targets() {
			if n := len(row.Targets); n == 0 || row.Targets[n-1] != t {
				row.Targets = append(row.Targets, t)
			}
		}
		if row.Editable {
			seen[rt.Name] = true
		}
		rows = append(rows, row)
	}
	for _, m := range e.Models {
		if seen[m.Name] {
			continue
		}
		row := modelRow{
			Name: m.Name, Origin: "store", Strategy: m.Strategy, Editable: true, Pattern: strings.Contains(m.Name, "*"),
			DisplayName: m.DisplayName, Pricing: m.Pricing, ContextWindow: m.ContextWindow, Flags: m.Flags,
			Metadata: metadataText(m.Metadata),
		}
		for _, t := range m.Targets {
			row.Targets = append(row.Targets, gateway.TargetInfo{Provider: t.Provider, Model: t.Model, Weight: t.Weight})
		}
		rows = append(rows, row)
	}
	v.Data = modelsData{Models: rows}
	h.render(w, r, status, "models", v)
}

func metadataText(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m)
	return string(b)
}

type modelForm struct {
	New                                            bool
	Name, Strategy, DisplayName, Description       string
	ContextWindow, MaxInputTokens, MaxOutputTokens string
	Currency, InputPer1M, CachedPer1M, OutputPer1M string
	Flags, Metadata                                string
	Targets                                        []targetRow
	Providers                                      []string // for the target selects
	Strategies                                     []string
	Errors                                         errs
	FormError                                      string
}

type targetRow struct{ Provider, Model, Weight string }

func (h *Handler) modelNew(w http.ResponseWriter, r *http.Request) {
	f := &modelForm{New: true, Targets: []targetRow{{}}}
	h.renderModelForm(w, r, h.view(w, r, "models", "model_new_title"), f, http.StatusOK)
}

func (h *Handler) modelEdit(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "models", "model_edit_title")
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		v.Error = v.T("err_store", err.Error())
		h.renderModels(w, r, v, http.StatusInternalServerError)
		return
	}
	name := r.URL.Query().Get("name")
	i := slices.IndexFunc(e.Models, func(m store.Model) bool { return m.Name == name })
	if i < 0 {
		v.Error = v.T("err_not_editable")
		h.renderModels(w, r, v, http.StatusNotFound)
		return
	}
	m := e.Models[i]
	f := &modelForm{
		Name: m.Name, Strategy: m.Strategy, DisplayName: m.DisplayName, Description: m.Description,
		ContextWindow: itoa(m.ContextWindow), MaxInputTokens: itoa(m.MaxInputTokens), MaxOutputTokens: itoa(m.MaxOutputTokens),
		Flags: strings.Join(m.Flags, ", "), Metadata: metadataText(m.Metadata),
	}
	if m.Pricing != nil {
		f.Currency, f.InputPer1M, f.OutputPer1M = m.Pricing.Currency, ftoa(m.Pricing.InputPer1M), ftoa(m.Pricing.OutputPer1M)
		if m.Pricing.CachedPer1M != nil {
			f.CachedPer1M = ftoa(*m.Pricing.CachedPer1M)
		}
	}
	for _, t := range m.Targets {
		f.Targets = append(f.Targets, targetRow{Provider: t.Provider, Model: t.Model, Weight: itoa(t.Weight)})
	}
	f.Targets = append(f.Targets, targetRow{})
	h.renderModelForm(w, r, v, f, http.StatusOK)
}

func (h *Handler) renderModelForm(w http.ResponseWriter, r *http.Request, v *view, f *modelForm, status int) {
	f.Providers = nil
	for _, p := range h.opts.Snapshot().Providers() {
		f.Providers = append(f.Providers, p.Name)
	}
	// A provider saved but not running yet is still a valid target.
	if e, err := h.opts.Store.Entries(r.Context()); err == nil {
		for _, p := range e.Providers {
			if !slices.Contains(f.Providers, p.Name) {
				f.Providers = append(f.Providers, p.Name)
			}
		}
	}
	f.Strategies = nil
	for _, s := range gateway.Strategies {
		f.Strategies = append(f.Strategies, string(s))
	}
	if f.Errors == nil {
		f.Errors = errs{}
	}
	v.Data = f
	h.render(w, r, status, "model_form", v)
}

func (h *Handler) modelSave(w http.ResponseWriter, r *http.Request) {
	original := r.PostFormValue("original")
	v := h.view(w, r, "models", "model_new_title")
	if original != "" {
		v.Title = v.T("model_edit_title")
	}
	pf := r.PostForm
	get := func(k string) string { return strings.TrimSpace(pf.Get(k)) }
	f := &modelForm{
		New: original == "", Name: get("name"), Strategy: get("strategy"), DisplayName: get("display_name"),
		Description: get("description"), ContextWindow: get("context_window"), MaxInputTokens: get("max_input_tokens"),
		MaxOutputTokens: get("max_output_tokens"), Currency: strings.ToLower(get("currency")), InputPer1M: get("input_per_1m"),
		CachedPer1M: get("cached_per_1m"), OutputPer1M: get("output_per_1m"), Flags: get("flags"), Metadata: get("metadata"),
		Errors: errs{},
	}
	if !f.New {
		f.Name = original
	}
	m := store.Model{Name: f.Name, Strategy: f.Strategy, DisplayName: f.DisplayName, Description: f.Description, Flags: splitList(f.Flags)}

	if f.Name == "" {
		f.Errors.add("name", v.T("err_required"))
	} else if _, err := access.CompilePattern(f.Name); err != nil {
		f.Errors.add("name", err.Error())
	}
	if f.New {
		for _, rt := range h.opts.Snapshot().Routes() {
			if rt.Name == f.Name && rt.Origin != "store" {
				f.Errors.add("name", v.T("err_name_elsewhere", v.OriginLabel(rt.Origin)))
			}
		}
	}
	if f.Strategy != "" && !slices.Contains(gateway.Strategies, gateway.Strategy(f.Strategy)) {
		f.Errors.add("strategy", v.T("err_choice"))
	}
	providers, models, weights := pf["target_provider"], pf["target_model"], pf["target_weight"]
	for i := range providers {
		t := targetRow{Provider: strings.TrimSpace(providers[i])}
		if i < len(models) {
			t.Model = strings.TrimSpace(models[i])
		}
		if i < len(weights) {
			t.Weight = strings.TrimSpace(weights[i])
		}
		if t == (targetRow{}) {
			continue
		}
		f.Targets = append(f.Targets, t)
		weight, ok := formInt(t.Weight)
		switch {
		case t.Provider == "":
			f.Errors.add("targets", v.T("err_target_provider"))
		case !ok:
			f.Errors.add("targets", v.T("err_whole_number"))
		}
		m.Targets = append(m.Targets, config.Target{Provider: t.Provider, Model: t.Model, Weight: weight})
	}
	if len(m.Targets) == 0 {
		f.Errors.add("targets", v.T("err_targets"))
	}
	for _, c := range []struct {
		field, value string
		into         *int
	}{
		{"context_window", f.ContextWindow, &m.ContextWindow},
		{"max_input_tokens", f.MaxInputTokens, &m.MaxInputTokens},
		{"max_output_tokens", f.MaxOutputTokens, &m.MaxOutputTokens},
	} {
		n, ok := formInt(c.value)
		if !ok {
			f.Errors.add(c.field, v.T("err_whole_number"))
		}
		*c.into = n
	}
	if f.InputPer1M != "" || f.OutputPer1M != "" || f.CachedPer1M != "" || f.Currency != "" {
		p := &config.Pricing{Currency: f.Currency}
		var ok bool
		if p.InputPer1M, ok = formFloat(cmpOr(f.InputPer1M, "0")); !ok {
			f.Errors.add("pricing", v.T("err_price"))
		}
		if p.OutputPer1M, ok = formFloat(cmpOr(f.OutputPer1M, "0")); !ok {
			f.Errors.add("pricing", v.T("err_price"))
		}
		if f.CachedPer1M != "" {
			c, ok := formFloat(f.CachedPer1M)
			if !ok {
				f.Errors.add("pricing", v.T("err_price"))
			}
			p.CachedPer1M = &c
		}
		if f.Currency != "" && !validCurrency(f.Currency) {
			f.Errors.add("pricing", v.T("err_currency"))
		}
		m.Pricing = p
	}
	if f.Metadata != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(f.Metadata)))
		if err := dec.Decode(&m.Metadata); err != nil || dec.More() || m.Metadata == nil {
			f.Errors.add("metadata", v.T("err_metadata"))
		}
	}

	if len(f.Errors) == 0 {
		err := h.change(r, func(tx *store.Tx) error {
			e, err := tx.Entries()
			if err != nil {
				return err
			}
			exists := slices.ContainsFunc(e.Models, func(o store.Model) bool { return o.Name == f.Name })
			switch {
			case f.New && exists:
				return &fieldError{"name", v.T("err_name_taken")}
			case !f.New && !exists:
				return errors.New(v.T("err_not_editable"))
			}
			if err := tx.PutModel(m); err != nil {
				return err
			}
			action := "model.update"
			if f.New {
				action = "model.create"
			}
			return tx.Audit(action, m.Name, modelDetail(m))
		})
		if err == nil {
			h.redirect(w, r, "/admin/models", v.T("flash_model_saved", f.Name))
			return
		}
		field, msg := refusal(v, err, "model", f.Name)
		if field == "" {
			f.FormError = msg
		} else {
			f.Errors.add(field, msg)
		}
	}
	f.Targets = append(f.Targets, targetRow{})
	h.renderModelForm(w, r, v, f, http.StatusUnprocessableEntity)
}

// validCurrency is a lower-case code such as usd or cny.
func validCurrency(c string) bool {
	if len(c) < 2 || len(c) > 8 {
		return false
	}
	for _, r := range c {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

func modelDetail(m store.Model) string {
	var targets []string
	for _, t := range m.Targets {
		s := t.Provider
		if t.Model != "" {
			s += "→" + t.Model
		}
		targets = append(targets, s)
	}
	d := "targets: " + strings.Join(targets, ", ")
	if m.Strategy != "" {
		d += "; strategy=" + m.Strategy
	}
	if m.Pricing != nil {
		d += "; priced"
	}
	return d
}

func (h *Handler) modelDelete(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "models", "nav_models")
	name := r.PostFormValue("name")
	err := h.change(r, func(tx *store.Tx) error {
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(e.Models, func(m store.Model) bool { return m.Name == name }) {
			return errors.New(v.T("err_not_editable"))
		}
		if err := tx.DeleteModel(name); err != nil {
			return err
		}
		return tx.Audit("model.delete", name, "")
	})
	if err != nil {
		_, msg := refusal(v, err, "", name)
		v.Error = msg
		h.renderModels(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	h.redirect(w, r, "/admin/models", v.T("flash_model_deleted", name))
}
