package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// The JWKS programs play DiracX's two sides of a key set: the signer signs
// with the first key whose key_ops hold "sign" and puts that key's kid and
// alg in the header (diracx-logic auth/token.py); the verifier loads the
// public keys once at start, as a service that reads its key set on boot
// does, and accepts a token whose kid it knows.

// loadSet reads the key set in $JWKS_FILE.
func loadSet() (jwk.Set, error) {
	b, err := os.ReadFile(os.Getenv("JWKS_FILE"))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS_FILE: %w", err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("parsing JWKS_FILE: %w", err)
	}
	return set, nil
}

// signingKey is DiracX's rule: the first key whose key_ops hold "sign".
func signingKey(set jwk.Set) (jwk.Key, error) {
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if ops, ok := k.KeyOps(); ok && slices.Contains([]jwk.KeyOperation(ops), jwk.KeyOpSign) {
			return k, nil
		}
	}
	return nil, errors.New("no key has key_ops sign")
}

// jwksSign serves /token on $LISTEN: a token signed now with the signing
// key loaded at start. It logs the kid it signs with (kids are public).
func jwksSign() error {
	set, err := loadSet()
	if err != nil {
		return err
	}
	key, err := signingKey(set)
	if err != nil {
		return err
	}
	kid, _ := key.KeyID()
	algName, _ := key.Algorithm()
	alg, ok := jwa.LookupSignatureAlgorithm(algName.String())
	if !ok {
		return fmt.Errorf("key %s: unknown alg %q", kid, algName)
	}
	fmt.Printf("testapp: signing with kid=%s alg=%s\n", kid, alg)
	http.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, kid)
		payload, _ := json.Marshal(map[string]any{"sub": "e2e", "iat": time.Now().Unix()})
		tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(tok)
	})
	return listen()
}

// serveJWKSVerify serves /verify?token=…: 200 and the kid if the token
// verifies against the public keys loaded at start, 401 if not.
func serveJWKSVerify() error {
	set, err := loadSet()
	if err != nil {
		return err
	}
	pub, err := jwk.PublicSetOf(set)
	if err != nil {
		return fmt.Errorf("public keys of JWKS_FILE: %w", err)
	}
	var kids []string
	for i := 0; i < pub.Len(); i++ {
		k, _ := pub.Key(i)
		kid, _ := k.KeyID()
		kids = append(kids, kid)
	}
	fmt.Printf("testapp: verifying with kids=%v\n", kids)
	http.HandleFunc("/verify", func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		msg, err := jws.Parse([]byte(tok))
		if err != nil {
			http.Error(w, "unparsable token", http.StatusBadRequest)
			return
		}
		if _, err := jws.Verify([]byte(tok), jws.WithKeySet(pub, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(true))); err != nil {
			http.Error(w, "token does not verify: "+err.Error(), http.StatusUnauthorized)
			return
		}
		kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
		fmt.Fprintln(w, kid)
	})
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return listen()
}
