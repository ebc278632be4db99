package config

import "testing"

// FuzzParse: any file content is either refused with a SettingError naming
// "config" or loads into a configuration that Validate judges without
// panicking; a file that loads loads the same way twice.
func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: :8080\ntimeouts:\n  upstream_idle: 5m\n"))
	f.Add([]byte("providers:\n  a:\n    base_url: https://x/v1\n    keys: [env:K]\nmodels:\n  m:\n    targets: [{provider: a}]\n"))
	f.Add([]byte("client_keys:\n  - name: a\n    key: sha256:00\n    budget: 5/day\n"))
	f.Add([]byte("debug: yes\ngemini:\n  resume: off\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var se *SettingError
			if !asSettingError(err, &se) || se.Setting != "config" {
				t.Fatalf("error %T %v is not a config SettingError", err, err)
			}
			return
		}
		_ = cfg.Validate()
		again, err := Parse(data)
		if err != nil || len(again.ProviderList()) != len(cfg.ProviderList()) || again.Listen != cfg.Listen {
			t.Fatalf("a second load differs: %v", err)
		}
	})
}

func asSettingError(err error, se **SettingError) bool {
	s, ok := err.(*SettingError)
	*se = s
	return ok
}
