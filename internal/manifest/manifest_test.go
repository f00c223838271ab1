package manifest_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the out.* files of testdata/edit from what the edits give")

// TestEdit runs the cases of testdata/edit: each holds a file (in.yaml or
// in.json), the edits to make (one a line: "SECRET set KEY = VALUE" or
// "SECRET namespace NS", SECRET being the index in File.Secrets) and the file
// expected (out.yaml or out.json).
func TestEdit(t *testing.T) {
	paths, err := filepath.Glob("testdata/edit/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]*txtar.File{}
			for i := range ar.Files {
				files[strings.TrimSuffix(ar.Files[i].Name, filepath.Ext(ar.Files[i].Name))] = &ar.Files[i]
			}
			in, ops, out := files["in"], files["ops"], files["out"]
			if in == nil || ops == nil || out == nil {
				t.Fatal("need in, ops and out")
			}
			f, err := manifest.Parse(in.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(ops.Data)), "\n") {
				if err := apply(f, line); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
			}
			got, err := f.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				out.Data = got
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, out.Data) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, out.Data)
			}
			// What was written reads back, and writing it again changes nothing.
			again, err := manifest.Parse(got)
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if b, err := again.Bytes(); err != nil || !bytes.Equal(b, got) || again.Edited() {
				t.Fatalf("output does not round-trip: %v", err)
			}
		})
	}
}

// apply makes one edit of a case's ops.
func apply(f *manifest.File, line string) error {
	var i int
	var verb string
	if _, err := fmt.Sscan(line, &i, &verb); err != nil {
		return err
	}
	s := f.Secrets()[i]
	_, arg, _ := strings.Cut(line, verb+" ")
	switch verb {
	case "set":
		key, value, _ := strings.Cut(arg, " = ")
		return s.SetStringData(key, value)
	case "namespace":
		return s.SetNamespace(arg)
	case "replace":
		key, value, _ := strings.Cut(arg, " = ")
		return s.Replace(key, []byte(value))
	}
	return fmt.Errorf("unknown edit %q", verb)
}

func TestRead(t *testing.T) {
	in := `# a ConfigMap first
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data:
  a: b
---
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  annotations:
    jwe-webhook.io/skip: "true"
data:
  user: YWRtaW4=
  bad: "not base64!"
  empty: ""
  both: YQ==
  list: [a]
stringData:
  password: hunter2
  port: 5432
  nothing: null
  both: b
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {generateName: gen-}
  stringData: {k: v}
- apiVersion: v1
  kind: ConfigMap
---
apiVersion: apps/v1
kind: Secret
`
	f, err := manifest.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	ss := f.Secrets()
	if len(ss) != 2 {
		t.Fatalf("%d Secrets, want 2", len(ss))
	}
	s := ss[0]
	if s.String() != "shop/db" || s.Line != 8 || s.Annotations["jwe-webhook.io/skip"] != "true" || s.Err != nil {
		t.Fatalf("Secret %s at line %d, annotations %v, err %v", s, s.Line, s.Annotations, s.Err)
	}
	var got []string
	for _, v := range s.Values {
		desc := fmt.Sprintf("%d %s.%s", v.Line, v.Field, v.Key)
		if v.Bytes != nil {
			desc += fmt.Sprintf("=%q", v.Bytes)
		}
		if v.Err != nil {
			desc += fmt.Sprintf(": %v", v.Err)
		}
		got = append(got, desc)
	}
	want := []string{
		`16 data.user="admin"`,
		`17 data.bad: is not base64 (data holds base64; plain text goes in stringData)`,
		`18 data.empty=""`,
		`19 data.both="a": is in stringData as well, which takes precedence; remove one of them`,
		`20 data.list: is not a string`,
		`22 stringData.password="hunter2"`,
		`23 stringData.port="5432"`,
		`24 stringData.nothing: is null; give it a value or remove it`,
		`25 stringData.both="b"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("values:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := ss[1]; g.String() != "gen-*" || g.Line != 30 || len(g.Values) != 1 || g.Values[0].Line != 33 {
		t.Fatalf("List item: %s at %d, values %+v", g, g.Line, g.Values)
	}
	if b, err := f.Bytes(); err != nil || string(b) != in || f.Edited() {
		t.Fatalf("unedited file changed: %v", err)
	}
}

func TestSecretErrors(t *testing.T) {
	cases := map[string]string{
		"data not a mapping":   "apiVersion: v1\nkind: Secret\ndata: abc\n",
		"metadata not mapping": "apiVersion: v1\nkind: Secret\nmetadata: [x]\n",
		"key twice":            "apiVersion: v1\nkind: Secret\nstringData:\n  a: x\n  a: y\n",
		"top-level key twice":  "apiVersion: v1\nkind: Secret\ndata: {}\ndata: {}\n",
		"alias":                "apiVersion: v1\nkind: Secret\nmetadata: &m {name: x}\nstringData:\n  a: *m\n",
	}
	for name, in := range cases {
		f, err := manifest.Parse([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := f.Secrets()[0]
		bad := s.Err != nil
		for _, v := range s.Values {
			bad = bad || v.Err != nil
		}
		if !bad {
			t.Errorf("%s: no error", name)
		}
		if s.Err != nil && s.SetStringData("k", "v") == nil {
			t.Errorf("%s: SetStringData on a Secret with an error", name)
		}
	}
}

func TestParseErrorLine(t *testing.T) {
	_, err := manifest.Parse([]byte("a: 1\n---\nb: 2\n---\nc: [\n"))
	if err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("got %v, want an error at line 5", err)
	}
}

func TestSetNamespace(t *testing.T) {
	f, err := manifest.Parse([]byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Secrets()[0]
	if err := s.SetNamespace("shop"); err != nil || f.Edited() {
		t.Fatalf("same namespace: %v, edited %v", err, f.Edited())
	}
	if err := s.SetNamespace("other"); err == nil || !strings.Contains(err.Error(), `has namespace "shop"`) {
		t.Fatalf("other namespace: %v", err)
	}
}

func TestSplitMarkers(t *testing.T) {
	// "---" inside a value is not a marker; "--- " with content is.
	in := "a: |\n  ---\n  x\n--- # second\nb: 2\n...\nc: 3\n"
	f, err := manifest.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := f.Bytes(); string(b) != in {
		t.Fatalf("got %q", b)
	}
}

func TestLineEndings(t *testing.T) {
	in := "apiVersion: v1\r\nkind: Secret\r\nmetadata:\r\n  name: db\r\ndata:\r\n  password: aHVudGVyMg=="
	want := "apiVersion: v1\r\nkind: Secret\r\nmetadata:\r\n  name: db\r\n  namespace: hr\r\nstringData:\r\n  password: eyJ.x"
	f, err := manifest.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Secrets()[0]
	if err := s.SetStringData("password", "eyJ.x"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNamespace("hr"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Bytes(); err != nil || string(got) != want {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
}

// FuzzEdit checks that any file either fails to parse or round-trips
// unedited, and that setting every value gives a file that can be written
// and reads back with those values.
func FuzzEdit(f *testing.F) {
	paths, _ := filepath.Glob("testdata/edit/*.txtar")
	for _, path := range paths {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ar.Files[0].Data)
	}
	f.Add([]byte("apiVersion: v1\nkind: Secret\ndata:\n  a: YQ==\n  b: |\n    Yg==\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		mf, err := manifest.Parse(in)
		if err != nil {
			return
		}
		if b, err := mf.Bytes(); err != nil || !bytes.Equal(b, in) {
			t.Fatalf("unedited: %q, %v", b, err)
		}
		want := map[string]string{}
		for i, s := range mf.Secrets() {
			for j, v := range s.Values {
				value := fmt.Sprintf("eyJ.%d.%d", i, j)
				if s.SetStringData(v.Key, value) == nil {
					want[fmt.Sprint(i, "/", v.Key)] = value
				}
			}
		}
		// SetStringData accepted every edit in want: the file must be
		// writable with them, or the CLI would fail after encrypting.
		out, err := mf.Bytes()
		if err != nil {
			t.Fatalf("%d edits accepted, then the file cannot be written: %v\n%s", len(want), err, in)
		}
		again, err := manifest.Parse(out)
		if err != nil {
			t.Fatalf("edited output does not parse: %v\n%s", err, out)
		}
		got := map[string]string{}
		for i, s := range again.Secrets() {
			for _, v := range s.Values {
				if v.Field == manifest.StringData && v.Err == nil {
					got[fmt.Sprint(i, "/", v.Key)] = string(v.Bytes)
				}
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s = %q, want %q\n%s", k, got[k], v, out)
			}
		}
	})
}
