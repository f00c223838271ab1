package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
)

// RunTests runs the tests of a suite against c, with what naming the suite
// in messages: when they fail, the tail of every process's log is printed
// and c's directory kept; then c is stopped, and its directory removed when
// they passed. It returns m's exit code.
func (c *Cluster) RunTests(m interface{ Run() int }, what string) int {
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "%s failed; logs and certificates kept in %s\n%s", what, c.cfg.Dir, c.Tails(60))
	}
	c.Stop()
	if code == 0 {
		os.RemoveAll(c.cfg.Dir)
	}
	return code
}

// Metrics returns the webhook's /metrics in the Prometheus text format.
func (c *Cluster) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MetricsURL+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape the webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape the webhook: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape the webhook: %s", resp.Status)
	}
	return string(body), nil
}

// Lookup walks v, decoded YAML or JSON, by map keys (strings) and slice
// indices (ints); nil when there is nothing there.
func Lookup(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k < 0 || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}
