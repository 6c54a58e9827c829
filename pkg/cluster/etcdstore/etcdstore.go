// Package etcdstore reads what kube-apiserver stored in etcd, without ever
// decrypting it: how many objects of a resource are stored under each
// encryption prefix (k8s:enc:<provider>:v1:<key name>:), for a self-managed
// control plane whose etcd the operator can reach (kubeadm:
// /etc/kubernetes/pki/etcd). Values are read a page at a time and only
// their first bytes are looked at; none is kept, printed or logged.
//
// Keys: kube-apiserver stores an object at
// <--etcd-prefix>/<resource>/<namespace>/<name> (k8s.io/apiserver
// pkg/registry/generic/registry/store.go NamespaceKeyRootFunc and
// pkg/server/storage/storage_factory.go, resource prefix = the resource's
// name, with few exceptions none of which encryption configurations name).
package etcdstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Options say how to reach etcd.
type Options struct {
	Endpoints         []string
	CACert, Cert, Key string
	// Prefix is kube-apiserver's --etcd-prefix (default /registry).
	Prefix string
}

// Open connects to etcd.
func Open(o Options) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: o.Endpoints, DialTimeout: 10 * time.Second}
	if o.CACert != "" || o.Cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CACert != "" {
			pem, err := os.ReadFile(o.CACert)
			if err != nil {
				return nil, fmt.Errorf("etcd CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("etcd CA %s holds no PEM certificate", o.CACert)
			}
			tc.RootCAs = pool
		}
		if o.Cert != "" {
			pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
			if err != nil {
				return nil, fmt.Errorf("etcd client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	return c, nil
}

// Unencrypted is the Count bucket of values stored in clear (identity).
const Unencrypted = "(not encrypted)"

// Count returns, for the resources (EncryptionConfiguration names:
// "secrets", "deployments.apps"; a wildcard counts everything under the
// prefix), how many values start with each of prefixes; values with an
// encryption prefix not in prefixes count under that prefix too, and
// values in clear under Unencrypted.
func Count(ctx context.Context, c *clientv3.Client, etcdPrefix string, resources, prefixes []string) (map[string]int64, error) {
	if etcdPrefix == "" {
		etcdPrefix = "/registry"
	}
	roots := map[string]bool{}
	for _, r := range resources {
		name, _, _ := strings.Cut(r, ".")
		if name == "*" {
			roots = map[string]bool{etcdPrefix + "/": true}
			break
		}
		roots[etcdPrefix+"/"+name+"/"] = true
	}
	counts := map[string]int64{}
	for _, p := range prefixes {
		counts[p] = 0
	}
	for root := range roots {
		if err := countUnder(ctx, c, root, prefixes, counts); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func countUnder(ctx context.Context, c *clientv3.Client, root string, prefixes []string, counts map[string]int64) error {
	key, end := root, clientv3.GetPrefixRangeEnd(root)
	for {
		resp, err := c.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(500), clientv3.WithSerializable())
		if err != nil {
			return fmt.Errorf("reading etcd under %s: %w", root, err)
		}
		for _, kv := range resp.Kvs {
			counts[bucket(kv.Value, prefixes)]++
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// bucket is the prefix value starts with.
func bucket(v []byte, prefixes []string) string {
	for _, p := range prefixes {
		if bytes.HasPrefix(v, []byte(p)) {
			return p
		}
	}
	if !bytes.HasPrefix(v, []byte("k8s:enc:")) {
		return Unencrypted
	}
	// k8s:enc:<provider>:v1:<key>: — the name of another key.
	parts := bytes.SplitN(v, []byte(":"), 6)
	if len(parts) < 6 {
		return Unencrypted
	}
	return string(bytes.Join(parts[:5], []byte(":"))) + ":"
}
