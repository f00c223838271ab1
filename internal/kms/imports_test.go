package kms_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

const module = "github.com/jwe-webhook/jwe-webhook"

// sdks maps the import path of each key service's client library (and the
// transport it exposes) to the one provider package that may import it, with
// its sub-packages (its in-process fake). Everything else reaches a key
// service through that package's API. A new provider adds its rows.
var sdks = []struct{ sdk, provider string }{
	{"cloud.google.com/go/kms", module + "/internal/kms/gcpkms"},
	{"google.golang.org/api", module + "/internal/kms/gcpkms"},
	{"google.golang.org/grpc", module + "/internal/kms/gcpkms"},
	{"github.com/googleapis/gax-go", module + "/internal/kms/gcpkms"},
	{"github.com/hashicorp/vault/api", module + "/internal/kms/vault"},
	{"github.com/hashicorp/go-cleanhttp", module + "/internal/kms/vault"},
	{"github.com/aws/aws-sdk-go-v2", module + "/internal/kms/awskms"},
	{"github.com/aws/smithy-go", module + "/internal/kms/awskms"},
	{"github.com/Azure/azure-sdk-for-go", module + "/internal/kms/azkv"},
	{"github.com/AzureAD/microsoft-authentication-library-for-go", module + "/internal/kms/azkv"},
}

// TestSDKsOnlyInTheirProvider checks, with go list -deps, that no package of
// internal/ or cmd/ but a key service's provider imports that service's SDK.
// Test files and test/ (tools that may import anything) are not checked.
func TestSDKsOnlyInTheirProvider(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testkit.Require(t, "the go command is not on PATH")
	}
	cmd := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	checked := 0
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		pkg := fields[0]
		if !within(pkg, module+"/internal") && !within(pkg, module+"/cmd") {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			for _, s := range sdks {
				if within(imp, s.sdk) && !within(pkg, s.provider) {
					t.Errorf("%s imports %s; only %s may: use its API", pkg, imp, s.provider)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list found %d packages of the module; the check saw nothing", checked)
	}
}

// within reports whether path is the package prefix or one below it.
func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
