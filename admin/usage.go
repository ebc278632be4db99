package admin

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"

	"github.com/llmproxy/llmproxy/store"
)

// usageDays are the periods the usage page offers, in days.
var usageDays = []int{7, 30, 90}

type usageGroup struct {
	Name string
	usageTotals
}

type usageData struct {
	Days                       int
	DayOptions                 []int
	Totals                     usageTotals
	ByKey, ByModel, ByProvider []usageGroup
	// Chart is the data the script draws the chart from.
	Chart template.JS
}

// chartRow is one usage row for the chart, with short names to keep the
// page small.
type chartRow struct {
	Day      string `json:"d"`
	Client   string `json:"c"`
	Model    string `json:"m"`
	Provider string `json:"p"`
	Requests int64  `json:"r"`
	Tokens   int64  `json:"t"`
	Cost     int64  `json:"n"`
	Currency string `json:"u,omitempty"`
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "usage", "nav_usage")
	days, _ := strconv.Atoi(r.URL.Query().Get("days"))
	if !slices.Contains(usageDays, days) {
		days = 30
	}
	now := h.now()
	to := utcDay(now).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -days)
	rows, err := h.opts.Store.Usage(r.Context(), from, to)
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	d := usageData{Days: days, DayOptions: usageDays}
	byKey, byModel, byProvider := map[string]*usageTotals{}, map[string]*usageTotals{}, map[string]*usageTotals{}
	chart := struct {
		Days []string   `json:"days"`
		Rows []chartRow `json:"rows"`
	}{Rows: []chartRow{}}
	for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
		chart.Days = append(chart.Days, day.Format("2006-01-02"))
	}
	for _, u := range rows {
		d.Totals.add(u)
		for _, g := range []struct {
			m    map[string]*usageTotals
			name string
		}{{byKey, u.Client}, {byModel, u.Model}, {byProvider, u.Provider}} {
			t := g.m[g.name]
			if t == nil {
				t = &usageTotals{}
				g.m[g.name] = t
			}
			t.add(u)
		}
		chart.Rows = append(chart.Rows, chartRow{
			Day: u.Day.UTC().Format("2006-01-02"), Client: u.Client, Model: u.Model, Provider: u.Provider,
			Requests: u.Requests, Tokens: u.Input + u.Output, Cost: u.CostNanos, Currency: u.Currency,
		})
	}
	d.ByKey, d.ByModel, d.ByProvider = groups(byKey), groups(byModel), groups(byProvider)
	b, _ := json.Marshal(chart) // encoding/json escapes <, > and &: safe in a script element
	d.Chart = template.JS(b)
	v.Data = d
	h.render(w, r, http.StatusOK, "usage", v)
}

// groups orders totals by requests, most first.
func groups(m map[string]*usageTotals) []usageGroup {
	out := make([]usageGroup, 0, len(m))
	for name, t := range m {
		out = append(out, usageGroup{Name: name, usageTotals: *t})
	}
	slices.SortFunc(out, func(a, b usageGroup) int {
		if a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

// auditLimit is how many audit entries the page shows, newest first.
const auditLimit = 500

type auditData struct{ Entries []store.AuditEntry }

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "audit", "nav_audit")
	entries, err := h.opts.Store.Audit(r.Context(), auditLimit)
	if err != nil {
		v.Error = v.T("err_store", err.Error())
	}
	v.Data = auditData{Entries: entries}
	h.render(w, r, http.StatusOK, "audit", v)
}
