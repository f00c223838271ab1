package local_test

import (
	"fmt"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

func ExampleLoadFile() {
	keys, err := local.LoadFile("testdata/set.jwks")
	if err != nil {
		fmt.Println(err)
		return
	}
	// The first key of the set names its own kid and algorithm.
	hr := keys[0]
	ring, err := kms.NewKeyring(kms.Options{}, kms.Entry{Decrypter: hr, Provider: "local", Namespaces: []string{"hr-*"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hr.KeyID(), hr.Algorithm(), ring.KeyIDs())
	// Output: hr-2026 RSA-OAEP [hr-2026]
}
