package install_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// drift pairs a kustomize install with the chart values that must render
// the same objects. The kustomization is a directory under manifests/, or
// resources and components written into a temporary one.
type drift struct {
	values     string
	resources  []string
	components []string
}

// drifts are the pairs: every overlay with ci/<overlay>-values.yaml (the
// test fails for an overlay without one), and the components.
func drifts(t *testing.T) []drift {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(manifestsDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []drift
	for _, e := range entries {
		values := e.Name() + "-values.yaml"
		if _, err := os.Stat(filepath.Join(chartDir, "ci", values)); err != nil {
			t.Errorf("manifests/overlays/%s has no charts/jwe-webhook/ci/%s: add the chart values that install the same", e.Name(), values)
			continue
		}
		ds = append(ds, drift{values: values, resources: []string{"overlays/" + e.Name()}})
	}
	return append(ds, drift{values: "monitoring-values.yaml", resources: []string{"overlays/local-key"}, components: []string{"components/monitoring"}})
}

// chartOnlyLabels are what the chart adds to every object and selector and
// kustomize does not: the release's labels and the key configuration's
// checksum, which stands for kustomize's hashed ConfigMap name.
var chartOnlyLabels = []string{
	"app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
	"helm.sh/chart", "checksum/key-config",
}

// TestChartMatchesKustomize renders each overlay with kustomize and the chart
// with the matching values file, and compares every object, field by field,
// but for the chart's own labels: the two install paths cannot drift. The
// namespace, which the chart leaves to the installer by default, is
// rendered (namespace.create=true) to be compared too. A kustomize
// rendering with components is also applied to the apiserver (dry run), as
// the e2e suite does with the overlays.
func TestChartMatchesKustomize(t *testing.T) {
	for _, d := range drifts(t) {
		name := strings.Join(append(d.resources, d.components...), "+")
		t.Run(name, func(t *testing.T) {
			chart, _ := mustRenderChart(t, []string{filepath.Join(chartDir, "ci", d.values)}, "namespace.create=true")
			kust := renderKustomize(t, kustomization(t, d.resources, d.components))
			if cluster != nil && len(d.components) > 0 {
				installStandInCRDs(t)
				applyDryRun(t, writeObjects(t, kust))
			}
			want, got := normalize(t, kust, true), normalize(t, chart, false)
			for key, k := range want {
				c, ok := got[key]
				if !ok {
					t.Errorf("%s: kustomize renders it, the chart does not", key)
					continue
				}
				if diff := cmp.Diff(k, c); diff != "" {
					t.Errorf("%s differs (-kustomize +chart):\n%s", key, diff)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("%s: the chart renders it, kustomize does not", key)
				}
			}
		})
	}
}

// kustomization returns manifests/<resources[0]> when that is all, else a
// temporary kustomization of the resources and components under manifests/.
func kustomization(t *testing.T, resources, components []string) string {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join(manifestsDir, p))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if len(resources) == 1 && len(components) == 0 {
		return abs(resources[0])
	}
	dir := t.TempDir()
	rel := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			r, err := filepath.Rel(dir, abs(p))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	k, err := yaml.Marshal(map[string]any{"resources": rel(resources), "components": rel(components)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// generatedName is a ConfigMap name with the hash kustomize appends.
var generatedName = regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)

// normalize returns objs by kind/namespace/name, made comparable: the
// chart's own labels dropped, hashed ConfigMap names (kustomize) cut back to
// the name, YAML files in ConfigMaps parsed (comments and layout aside), and
// lists of named items turned into maps by name, as the apiserver merges
// them.
func normalize(t *testing.T, objs objects, fromKustomize bool) map[string]any {
	t.Helper()
	renames := map[string]string{}
	if fromKustomize {
		for _, o := range objs {
			if o["kind"] != "ConfigMap" {
				continue
			}
			n := lookup(o, "metadata", "name").(string)
			if m := generatedName.FindStringSubmatch(n); m != nil {
				renames[n] = m[1]
			}
		}
	}
	out := map[string]any{}
	for _, o := range objs {
		if o["kind"] == "ConfigMap" {
			for k, v := range lookup(o, "data").(map[string]any) {
				if strings.HasSuffix(k, ".yaml") {
					var parsed any
					if err := yaml.Unmarshal([]byte(v.(string)), &parsed); err != nil {
						t.Fatalf("ConfigMap %v: %s: %v", lookup(o, "metadata", "name"), k, err)
					}
					o["data"].(map[string]any)[k] = parsed
				}
			}
		}
		n := clean(o, renames).(map[string]any)
		key := fmt.Sprintf("%s %v/%v", n["kind"], lookup(n, "metadata", "namespace"), lookup(n, "metadata", "name"))
		out[key] = n
	}
	return out
}

// clean returns a copy of v as normalize describes.
func clean(v any, renames map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			if isChartOnly(k) {
				continue
			}
			e = clean(e, renames)
			if em, ok := e.(map[string]any); ok && len(em) == 0 {
				continue
			}
			m[k] = e
		}
		return m
	case []any:
		named := map[string]any{}
		for _, e := range x {
			n, ok := lookup(e, "name").(string)
			if !ok {
				named = nil
				break
			}
			named[n] = clean(e, renames)
		}
		if named != nil && len(named) == len(x) {
			return named
		}
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = clean(e, renames)
		}
		return l
	case string:
		if r, ok := renames[x]; ok {
			return r
		}
	}
	return v
}

func isChartOnly(key string) bool {
	for _, l := range chartOnlyLabels {
		if key == l {
			return true
		}
	}
	return false
}
