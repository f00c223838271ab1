package install_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// The release the chart is rendered as: its objects are then named as the
// kustomize base's.
const (
	releaseName = "jwe-webhook"
	namespace   = "jwe-webhook"
)

// object is one rendered Kubernetes object.
type object = map[string]any

// objects are the documents of one rendering.
type objects []object

// find returns the object of kind and name, or nil.
func (objs objects) find(kind, name string) object {
	for _, o := range objs {
		if o["kind"] == kind && lookup(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// get returns the object of kind and name, failing the test without one.
func (objs objects) get(t *testing.T, kind, name string) object {
	t.Helper()
	o := objs.find(kind, name)
	if o == nil {
		t.Fatalf("no %s %s in the rendering", kind, name)
	}
	return o
}

// lookup is harness.Lookup.
var lookup = harness.Lookup

// kubeVersion is the version of the control plane the tests run
// (test/tools/go.mod), which the chart is rendered and linted for.
func kubeVersion(t *testing.T) *chartutil.KubeVersion {
	t.Helper()
	mod, err := os.ReadFile("../tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`k8s\.io/kubernetes v(\d+)\.(\d+)\.(\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("test/tools/go.mod names no k8s.io/kubernetes version")
	}
	return &chartutil.KubeVersion{Version: "v" + string(m[1]) + "." + string(m[2]) + "." + string(m[3]), Major: string(m[1]), Minor: string(m[2])}
}

// ciValues lists the values files under charts/jwe-webhook/ci.
func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	return files
}

// chartValues merges values files and --set style assignments as helm does.
func chartValues(t *testing.T, files []string, set ...string) map[string]any {
	t.Helper()
	opts := values.Options{ValueFiles: files, Values: set}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("values %v %v: %v", files, set, err)
	}
	return vals
}

// renderChart renders the chart as `helm template` does, with the values
// files and assignments given; it returns the objects and the NOTES.
func renderChart(t *testing.T, files []string, set ...string) (objects, string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion = kubeVersion(t)
	rel, err := install.Run(chrt, chartValues(t, files, set...))
	if err != nil {
		return nil, "", err
	}
	return parseObjects(t, rel.Manifest), rel.Info.Notes, nil
}

// mustRenderChart is renderChart failing the test on an error.
func mustRenderChart(t *testing.T, files []string, set ...string) (objects, string) {
	t.Helper()
	objs, notes, err := renderChart(t, files, set...)
	if err != nil {
		t.Fatalf("render the chart with %v %v: %v", files, set, err)
	}
	return objs, notes
}

// renderKustomize builds a kustomization directory as kubectl kustomize does.
func renderKustomize(t *testing.T, dir string) objects {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return parseObjects(t, string(out))
}

// parseObjects splits multi-document YAML into objects, dropping empty ones.
func parseObjects(t *testing.T, manifest string) objects {
	t.Helper()
	r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objs objects
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split the rendering: %v", err)
		}
		var obj object
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("parse a rendered document: %v\n%s", err, doc)
		}
		if len(obj) > 0 {
			objs = append(objs, obj)
		}
	}
}

// writeObjects writes objs as one multi-document YAML file in a temporary
// directory and returns its path.
func writeObjects(t *testing.T, objs objects) string {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		out, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	path := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kinds lists the kinds of objs, sorted, for messages.
func (objs objects) kinds() []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o["kind"].(string)+"/"+lookup(o, "metadata", "name").(string))
	}
	slices.Sort(ks)
	return ks
}
