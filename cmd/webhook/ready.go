package main

import (
	"fmt"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/keyconfig"
	"github.com/jwe-webhook/jwe-webhook/internal/metrics"
	"github.com/jwe-webhook/jwe-webhook/internal/server"
)

// reportKeys reports, by metrics and /readyz lines, what works only in part
// in keys: a key configuration file (at path) that no longer builds, and key
// services not reached yet. Neither makes the webhook unready: the last good
// keys, and every key whose service answers, stay in use.
func reportKeys(cfg *server.Config, m *metrics.Metrics, keys keySource, path string) {
	if src, ok := keys.(*keyconfig.Source); ok {
		// A broken file does not make the webhook unready: the last good
		// keyring stays in use, and the file is reported.
		m.KeyConfig(func() (bool, time.Time) {
			st := src.Status()
			return st.Err == nil, st.Loaded
		})
	}
	if ks, ok := keys.(interface{ KeyStates() []keyconfig.KeyState }); ok {
		m.KeyServices(func() []metrics.KeyServiceState { return keyServiceStates(ks.KeyStates()) })
		cfg.ReadyDetails = func() []string {
			var lines []string
			if src, ok := keys.(*keyconfig.Source); ok {
				lines = keyConfigDetails(path, src.Status())
			}
			return append(lines, keyStateDetails(ks.KeyStates())...)
		}
	}
}

// keyConfigDetails are the /readyz lines about the key configuration file.
func keyConfigDetails(path string, st keyconfig.Status) []string {
	if st.Err == nil {
		return nil
	}
	return []string{fmt.Sprintf("key configuration %s does not build (the log says why); the keys loaded at %s stay in use",
		path, st.Loaded.UTC().Format(time.RFC3339))}
}

// keyStateDetails are the /readyz lines about key services not reached yet.
func keyStateDetails(states []keyconfig.KeyState) []string {
	var lines []string
	for _, st := range states {
		if st.Err != nil {
			lines = append(lines, fmt.Sprintf("key %s (%s): key service not reached yet, its values are refused (503); retrying: %v", st.KeyID, st.Provider, st.Err))
		}
	}
	return lines
}

// keyServiceStates turns key states into what the metrics report.
func keyServiceStates(states []keyconfig.KeyState) []metrics.KeyServiceState {
	out := make([]metrics.KeyServiceState, len(states))
	for i, st := range states {
		out[i] = metrics.KeyServiceState{KeyID: st.KeyID, Provider: st.Provider, Reached: st.Err == nil}
	}
	return out
}
