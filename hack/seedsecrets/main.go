// Command seedsecrets fills a namespace with Secrets for `make bench`:
// opaque ones with a 512-byte value, TLS ones with a real self-signed
// certificate of varied age, and JWKS ones labelled as kube-rotate labels
// its key sets. It prints nothing secret.
//
//	go run ./hack/seedsecrets -n bench-status -count 10000 -tls 500 -jwks 500
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

func main() {
	ns := flag.String("n", "bench-status", "namespace (created if missing)")
	count := flag.Int("count", 10000, "Secrets in all")
	tlsN := flag.Int("tls", 500, "of which kubernetes.io/tls")
	jwksN := flag.Int("jwks", 500, "of which JWKS key sets")
	jwksFile := flag.String("jwks-file", "pkg/model/jwks/testdata/diracx.json", "key set to store in the JWKS Secrets")
	flag.Parse()
	if err := run(*ns, *count, *tlsN, *jwksN, *jwksFile); err != nil {
		fmt.Fprintln(os.Stderr, "seedsecrets:", err)
		os.Exit(1)
	}
}

func run(ns string, count, tlsN, jwksN int, jwksFile string) error {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	keySet, err := os.ReadFile(jwksFile)
	if err != nil {
		return err
	}
	// A few certificates, reused: generating 500 is not what is measured.
	var certs [][2][]byte
	for i := 0; i < 10; i++ {
		c, k, err := selfSigned(time.Now().Add(-time.Duration(i*40)*24*time.Hour), time.Now().Add(time.Duration(400-i*40)*24*time.Hour))
		if err != nil {
			return err
		}
		certs = append(certs, [2][]byte{c, k})
	}
	var done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%05d", i), Labels: map[string]string{"bench": "status"}}}
				switch {
				case i < tlsN:
					c := certs[i%len(certs)]
					s.Type = corev1.SecretTypeTLS
					s.Data = map[string][]byte{corev1.TLSCertKey: c[0], corev1.TLSPrivateKeyKey: c[1]}
				case i < tlsN+jwksN:
					s.Labels[v1alpha1.JWKSKeyLabel] = "jwks.json"
					s.Data = map[string][]byte{"jwks.json": keySet}
				default:
					v := make([]byte, 512)
					rand.Read(v)
					s.Data = map[string][]byte{"password": v}
				}
				if _, err := kc.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				done.Add(1)
			}
		}()
	}
	for i := 0; i < count; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("%d Secrets in namespace %s (%d TLS, %d JWKS)\n", done.Load(), ns, tlsN, jwksN)
	return nil
}

func selfSigned(notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "bench"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}
