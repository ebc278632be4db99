package admin

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/store"
)

// SecretPrefix starts every client key the panel generates, so that a
// leaked one is easy to recognise (and to search for) as llmproxy's.
const SecretPrefix = "llmp-"

// newSecret returns a client key secret: the prefix and 24 random bytes
// (192 bits), base64url.
func newSecret() string {
	var b [24]byte
	rand.Read(b[:])
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

type clientKeyRow struct {
	ID                    int64
	Name, Origin, Status  string
	Editable              bool
	Models, Presets       []string
	RPM, TPM, MaxParallel int
	Budget                string
	Expires, Created      time.Time
	Revoked               time.Time
	Usage                 usageTotals
	HasUsage              bool
}

type usageTotals struct {
	Requests, Input, Output int64
	Cost                    map[string]int64 // nanos by currency
}

// CostText shows the costs by currency: "1.2000 USD + 3.0000 CNY".
func (u usageTotals) CostText() string {
	if len(u.Cost) == 0 {
		return "–"
	}
	cur := make([]string, 0, len(u.Cost))
	for c := range u.Cost {
		cur = append(cur, c)
	}
	slices.Sort(cur)
	parts := make([]string, len(cur))
	for i, c := range cur {
		parts[i] = formatCost(u.Cost[c], c)
	}
	return strings.Join(parts, " + ")
}

func (u *usageTotals) add(row store.UsageRow) {
	u.Requests += row.Requests
	u.Input += row.Input
	u.Output += row.Output
	if row.Currency != "" {
		if u.Cost == nil {
			u.Cost = map[string]int64{}
		}
		u.Cost[row.Currency] += row.CostNanos
	}
}

type clientKeysData struct {
	Keys      []clientKeyRow
	UsageDays int
}

// keyUsageDays is how far back the keys page sums each key's usage.
const keyUsageDays = 30

func (h *Handler) clientKeys(w http.ResponseWriter, r *http.Request) {
	h.renderClientKeys(w, r, h.view(w, r, "keys", "nav_keys"), http.StatusOK)
}

func (h *Handler) renderClientKeys(w http.ResponseWriter, r *http.Request, v *view, status int) {
	now := h.now()
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	from := utcDay(now).AddDate(0, 0, -(keyUsageDays - 1))
	// A row counts for the key of its id; one written before ids were kept
	// (schema v3), for the active key of its name.
	keys := h.opts.Snapshot().Keys().List()
	activeID := make(map[string]string, len(keys))
	for _, k := range keys {
		activeID[k.Name] = k.ID
	}
	usage := map[string]*usageTotals{}
	rows, err := h.opts.Store.Usage(r.Context(), from, utcDay(now).AddDate(0, 0, 1))
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	for _, u := range rows {
		id := u.ClientID
		if id == "" {
			id = activeID[u.Client]
		}
		t := usage[id]
		if t == nil {
			t = &usageTotals{}
			usage[id] = t
		}
		t.add(u)
	}
	usageOf := func(id string) (usageTotals, bool) {
		if t := usage[id]; t != nil {
			return *t, true
		}
		return usageTotals{}, false
	}
	data := clientKeysData{UsageDays: keyUsageDays}
	for _, k := range keys {
		if k.Origin == "store" {
			continue
		}
		models, presets := k.Scopes()
		row := clientKeyRow{
			Name: k.Name, Origin: k.Origin, Status: "active", Models: models, Presets: presets,
			RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel, Expires: k.Expires,
		}
		if k.Budget != nil {
			row.Budget = fmt.Sprintf("%s %s/%s", strconv.FormatFloat(float64(k.Budget.Nanos)/1e9, 'f', -1, 64), k.Budget.Currency, k.Budget.Period)
		}
		if !k.Expires.IsZero() && now.After(k.Expires) {
			row.Status = "expired"
		}
		row.Usage, row.HasUsage = usageOf(k.ID)
		data.Keys = append(data.Keys, row)
	}
	for _, k := range e.ClientKeys {
		row := clientKeyRow{
			ID: k.ID, Name: k.Name, Origin: "store", Status: "active", Editable: k.RevokedAt.IsZero(),
			Models: k.Models, Presets: k.Presets, RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel,
			Budget: budgetText(k.Budget), Expires: k.Expires, Created: k.CreatedAt, Revoked: k.RevokedAt,
		}
		switch {
		case !k.RevokedAt.IsZero():
			row.Status = "revoked"
		case !k.Expires.IsZero() && now.After(k.Expires):
			row.Status = "expired"
		}
		row.Usage, row.HasUsage = usageOf(access.KeyID(k.Digest))
		data.Keys = append(data.Keys, row)
	}
	v.Data = data
	h.render(w, r, status, "keys", v)
}

func budgetText(b *config.Budget) string {
	if b == nil {
		return ""
	}
	s := strconv.FormatFloat(b.Amount, 'f', -1, 64)
	if b.Currency != "" {
		s += " " + b.Currency
	}
	return s + "/" + cmpOr(b.Period, "month")
}

func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type clientKeyForm struct {
	ID                            int64 // 0: a new key
	Name, Models, Presets         string
	RPM, TPM, MaxParallel, Budget string
	Expires                       string
	Errors                        errs
	FormError                     string
}

func (f *clientKeyForm) New() bool { return f.ID == 0 }

func (h *Handler) clientKeyNew(w http.ResponseWriter, r *http.Request) {
	h.renderClientKeyForm(w, r, h.view(w, r, "keys", "key_new_title"), &clientKeyForm{}, http.StatusOK)
}

func (h *Handler) clientKeyEdit(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "keys", "key_edit_title")
	id, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	k, err := h.storedKey(r, id)
	if err != nil {
		v.Error = v.T("err_not_editable")
		h.renderClientKeys(w, r, v, http.StatusNotFound)
		return
	}
	f := &clientKeyForm{
		ID: k.ID, Name: k.Name, Models: strings.Join(k.Models, ", "), Presets: strings.Join(k.Presets, ", "),
		RPM: itoa(k.RPM), TPM: itoa(k.TPM), MaxParallel: itoa(k.MaxParallel), Budget: budgetText(k.Budget),
	}
	if !k.Expires.IsZero() {
		f.Expires = k.Expires.UTC().Format("2006-01-02T15:04")
	}
	h.renderClientKeyForm(w, r, v, f, http.StatusOK)
}

// storedKey returns an active key of the store by id.
func (h *Handler) storedKey(r *http.Request, id int64) (store.ClientKey, error) {
	e, err := h.opts.Store.Entries(r.Context())
	if err != nil {
		return store.ClientKey{}, err
	}
	i := slices.IndexFunc(e.ClientKeys, func(k store.ClientKey) bool { return k.ID == id && k.RevokedAt.IsZero() })
	if i < 0 {
		return store.ClientKey{}, errors.New("no such key")
	}
	return e.ClientKeys[i], nil
}

func (h *Handler) renderClientKeyForm(w http.ResponseWriter, r *http.Request, v *view, f *clientKeyForm, status int) {
	if f.Errors == nil {
		f.Errors = errs{}
	}
	v.Data = f
	h.render(w, r, status, "key_form", v)
}

// parseExpiry reads the expiry field: a date, or a date and time, in UTC.
func parseExpiry(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if layout == "2006-01-02" {
				t = t.Add(24*time.Hour - time.Second) // through the end of that day
			}
			return t, true
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

func (h *Handler) clientKeySave(w http.ResponseWriter, r *http.Request) {
	pf := r.PostForm
	get := func(k string) string { return strings.TrimSpace(pf.Get(k)) }
	f := &clientKeyForm{
		Name: get("name"), Models: get("models"), Presets: get("presets"), RPM: get("rpm"), TPM: get("tpm"),
		MaxParallel: get("max_parallel"), Budget: get("budget"), Expires: get("expires"), Errors: errs{},
	}
	if id := get("id"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "bad key id", http.StatusBadRequest)
			return
		}
		f.ID = n
	}
	v := h.view(w, r, "keys", "key_new_title")
	if !f.New() {
		v.Title = v.T("key_edit_title")
	}
	k := store.ClientKey{ID: f.ID, Name: f.Name, Models: splitList(f.Models), Presets: splitList(f.Presets)}
	switch {
	case f.Name == "":
		f.Errors.add("name", v.T("err_required"))
	case len(f.Name) > 64 || strings.ContainsFunc(f.Name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		f.Errors.add("name", v.T("err_key_name"))
	}
	for _, c := range h.opts.Snapshot().Keys().List() {
		if c.Name == f.Name && c.Origin != "store" {
			f.Errors.add("name", v.T("err_name_elsewhere", v.OriginLabel(c.Origin)))
		}
	}
	if _, err := access.CompilePatterns(k.Models); err != nil {
		f.Errors.add("models", err.Error())
	}
	if _, err := access.CompilePatterns(k.Presets); err != nil {
		f.Errors.add("presets", err.Error())
	}
	var ok bool
	if k.RPM, ok = formInt(f.RPM); !ok {
		f.Errors.add("rpm", v.T("err_whole_number"))
	}
	if k.TPM, ok = formInt(f.TPM); !ok {
		f.Errors.add("tpm", v.T("err_whole_number"))
	}
	if k.MaxParallel, ok = formInt(f.MaxParallel); !ok {
		f.Errors.add("max_parallel", v.T("err_whole_number"))
	}
	if f.Budget != "" {
		b, err := config.ParseBudget(f.Budget)
		switch {
		case err != nil:
			f.Errors.add("budget", v.T("err_budget"))
		case b.Amount <= 0:
			f.Errors.add("budget", v.T("err_budget"))
		case b.Period != "" && b.Period != "day" && b.Period != "month":
			f.Errors.add("budget", v.T("err_budget"))
		case b.Currency != "" && !validCurrency(b.Currency):
			f.Errors.add("budget", v.T("err_currency"))
		default:
			k.Budget = &b
		}
	}
	if k.Expires, ok = parseExpiry(f.Expires); !ok {
		f.Errors.add("expires", v.T("err_expires"))
	} else if !k.Expires.IsZero() && !k.Expires.After(h.now()) {
		f.Errors.add("expires", v.T("err_expires_past"))
	}

	var secret string
	if len(f.Errors) == 0 {
		err := h.change(r, func(tx *store.Tx) error {
			e, err := tx.Entries()
			if err != nil {
				return err
			}
			for _, o := range e.ClientKeys {
				if o.Name == k.Name && o.RevokedAt.IsZero() && o.ID != k.ID {
					return &fieldError{"name", v.T("err_name_taken")}
				}
			}
			if f.New() {
				secret = newSecret()
				k.Digest = access.Digest(secret)
				if _, err := tx.CreateClientKey(k); err != nil {
					return err
				}
				return tx.Audit("client_key.create", k.Name, clientKeyDetail(k))
			}
			if !slices.ContainsFunc(e.ClientKeys, func(o store.ClientKey) bool { return o.ID == k.ID && o.RevokedAt.IsZero() }) {
				return errors.New(v.T("err_not_editable"))
			}
			if err := tx.UpdateClientKey(k); err != nil {
				return err
			}
			return tx.Audit("client_key.update", k.Name, clientKeyDetail(k))
		})
		if err == nil {
			if !f.New() {
				h.redirect(w, r, "/admin/keys", v.T("flash_key_saved", k.Name))
				return
			}
			h.mu.Lock()
			sessionOf(r).secret = &createdSecret{Name: k.Name, Secret: secret}
			h.mu.Unlock()
			http.Redirect(w, r, "/admin/keys/created", http.StatusSeeOther)
			return
		}
		var ae *applyError
		if errors.As(err, &ae) && f.New() {
			// Saved, though not yet in use: the secret must still be
			// shown, or the key is lost.
			h.mu.Lock()
			sessionOf(r).secret = &createdSecret{Name: k.Name, Secret: secret}
			h.mu.Unlock()
			h.setFlash(r, v.T("err_not_applied", ae.Error()))
			http.Redirect(w, r, "/admin/keys/created", http.StatusSeeOther)
			return
		}
		if field, msg := refusal(v, err, "client key", k.Name); field == "" {
			f.FormError = msg
		} else {
			f.Errors.add(field, msg)
		}
	}
	h.renderClientKeyForm(w, r, v, f, http.StatusUnprocessableEntity)
}

func clientKeyDetail(k store.ClientKey) string {
	var parts []string
	if k.Models != nil {
		parts = append(parts, "models="+strings.Join(k.Models, ","))
	}
	if k.Presets != nil {
		parts = append(parts, "presets="+strings.Join(k.Presets, ","))
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"rpm", k.RPM}, {"tpm", k.TPM}, {"max_parallel", k.MaxParallel}} {
		if l.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", l.name, l.n))
		}
	}
	if k.Budget != nil {
		parts = append(parts, "budget="+budgetText(k.Budget))
	}
	if !k.Expires.IsZero() {
		parts = append(parts, "expires="+k.Expires.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, "; ")
}

// clientKeyCreated shows a new key's secret, once: the session forgets it
// as the page is rendered.
func (h *Handler) clientKeyCreated(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "keys", "key_created_title")
	h.mu.Lock()
	s := sessionOf(r)
	created := s.secret
	s.secret = nil
	h.mu.Unlock()
	if created == nil {
		v.Error = v.T("key_secret_gone")
		h.renderClientKeys(w, r, v, http.StatusGone)
		return
	}
	v.Data = created
	h.render(w, r, http.StatusOK, "key_created", v)
}

func (h *Handler) clientKeyRevoke(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "keys", "nav_keys")
	id, _ := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	var name string
	err := h.commit(r, func(tx *store.Tx) error {
		e, err := tx.Entries()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(e.ClientKeys, func(k store.ClientKey) bool { return k.ID == id && k.RevokedAt.IsZero() })
		if i < 0 {
			return errors.New(v.T("err_not_editable"))
		}
		name = e.ClientKeys[i].Name
		if err := tx.RevokeClientKey(id); err != nil {
			return err
		}
		return tx.Audit("client_key.revoke", name, "")
	}, false)
	var ae *applyError
	if errors.As(err, &ae) && ae.revoked {
		h.redirect(w, r, "/admin/keys", v.T("flash_key_revoked_not_applied", name, ae.Error()))
		return
	}
	if err != nil {
		_, msg := refusal(v, err, "", "")
		v.Error = msg
		h.renderClientKeys(w, r, v, http.StatusUnprocessableEntity)
		return
	}
	h.redirect(w, r, "/admin/keys", v.T("flash_key_revoked", name))
}
