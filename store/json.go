package store

import "github.com/llmproxy/llmproxy/config"

// The JSON columns have a format of their own, not config's Go field
// names: renaming a config field must not change what a stored row means.

type jsonTarget struct {
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	Weight   int    `json:"weight,omitempty"`
}

type jsonPricing struct {
	Currency    string   `json:"currency,omitempty"`
	InputPer1M  float64  `json:"input_per_1m"`
	CachedPer1M *float64 `json:"cached_input_per_1m,omitempty"`
	OutputPer1M float64  `json:"output_per_1m"`
}

type jsonBudget struct {
	Amount   float64 `json:"amount"`
	Period   string  `json:"period,omitempty"`
	Currency string  `json:"currency,omitempty"`
}

func toJSONTargets(ts []config.Target) []jsonTarget {
	if ts == nil {
		return nil
	}
	out := make([]jsonTarget, len(ts))
	for i, t := range ts {
		out[i] = jsonTarget(t)
	}
	return out
}

func fromJSONTargets(ts []jsonTarget) []config.Target {
	if ts == nil {
		return nil
	}
	out := make([]config.Target, len(ts))
	for i, t := range ts {
		out[i] = config.Target(t)
	}
	return out
}

func toJSONPricing(p *config.Pricing) *jsonPricing {
	if p == nil {
		return nil
	}
	j := jsonPricing(*clonePricing(p))
	return &j
}

func fromJSONPricing(p *jsonPricing) *config.Pricing {
	if p == nil {
		return nil
	}
	c := config.Pricing(*p)
	return &c
}

func toJSONBudget(b *config.Budget) *jsonBudget {
	if b == nil {
		return nil
	}
	j := jsonBudget(*b)
	return &j
}

func fromJSONBudget(b *jsonBudget) *config.Budget {
	if b == nil {
		return nil
	}
	c := config.Budget(*b)
	return &c
}
