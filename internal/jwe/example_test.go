package jwe_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// A custodian encrypts a value for one Secret; the webhook parses it and
// checks where it is applied before asking any key service.
func ExampleEncrypt() {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	value, err := jwe.Encrypt([]byte("hunter2"), jwe.Scope{Namespace: "hr", Name: "db"}, "",
		jwe.PublicKey{Key: &priv.PublicKey, KeyID: "cluster-a"})
	if err != nil {
		panic(err)
	}

	obj, err := jwe.Parse([]byte(value))
	if err != nil {
		panic(err)
	}
	fmt.Println(obj.Serialization, obj.Recipients[0].Algorithm, obj.Encryption, obj.KeyIDs())
	fmt.Println(obj.Scope.Kind(), "scope:", obj.Scope)
	fmt.Println("in hr/db:", obj.Scope.Check("hr", "db"))
	fmt.Println("in dev/db:", obj.Scope.Check("dev", "db"))
	// Output:
	// compact ECDH-ES+A256KW A256GCM [cluster-a]
	// strict scope: Secret hr/db
	// in hr/db: <nil>
	// in dev/db: scope mismatch: value is bound to namespace "hr", not "dev"
}

// Values that are not JWEs are not the webhook's and pass through.
func ExampleDetect() {
	fmt.Println(jwe.Detect([]byte("hunter2")))
	fmt.Println(jwe.Detect([]byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"))) // a JWS
	// Output:
	// false
	// false
}
