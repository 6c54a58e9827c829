// Command enckey drives the encryption at rest of the `make bench` cluster,
// so that each measured rewrite really moves every Secret to a new key:
//
//	enckey init -config FILE
//	    write an EncryptionConfiguration: Secrets under one new aescbc key
//	    (the identity provider after it reads what was stored before)
//	enckey next -config FILE
//	    retire the keys after the first (once a rewrite moved everything
//	    off them), stage a new key, promote it; after each edit wait until
//	    kube-apiserver applied it (apiserver_encryption_config_controller_
//	    last_config_info shows the file's hash). Prints the new key's name.
//	    -direct: promote in the same edit (one wait; a single API server).
//	enckey first -config FILE
//	    print the name of the key that encrypts Secrets (the first)
//	enckey stored -want KEY [-state-dir DIR] [-prefix /registry/secrets/]
//	    read etcd (the local cluster's, its v3 JSON gateway) and count the
//	    values under the prefix by the key they are encrypted with; fails
//	    unless every one is under KEY
//
// The cluster is the one KUBECONFIG points at; its state directory (for
// etcd's address) defaults to the kubeconfig's directory. Key material is
// never printed.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/pkg/cluster/encryption"
	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
)

const initial = `# kube-apiserver --encryption-provider-config of the make bench cluster (hack/enckey)
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: %s
              secret: %s
      - identity: {}
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: enckey init|next|first|stored [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	config := fs.String("config", "", "the EncryptionConfiguration file kube-apiserver reads")
	want := fs.String("want", "", "stored: the key every value must be under")
	stateDir := fs.String("state-dir", "", "stored: the local cluster's state directory (default: the directory of $KUBECONFIG)")
	prefix := fs.String("prefix", "/registry/secrets/", "stored: the etcd keys to read")
	timeout := fs.Duration("timeout", 3*time.Minute, "next: how long to wait for kube-apiserver to apply each edit")
	direct := fs.Bool("direct", false, "next: write the new key first in one edit, without staging it second first (one wait instead of two; sound with a single API server only)")
	_ = fs.Parse(os.Args[2:])
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "init":
		err = initConfig(*config)
	case "next":
		err = next(ctx, *config, *direct, *timeout)
	case "first":
		var p *encryptionconfig.Provider
		if _, p, err = read(*config); err == nil {
			fmt.Println(p.Keys[0].Name)
		}
	case "stored":
		err = stored(ctx, *stateDir, *prefix, *want)
	default:
		err = fmt.Errorf("unknown command %q: want init, next, first or stored", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "enckey:", err)
		os.Exit(1)
	}
}

func initConfig(path string) error {
	if path == "" {
		return fmt.Errorf("-config is required")
	}
	name, secret, err := encryptionconfig.NewKey("aescbc", time.Now(), nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf(initial, name, secret)), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Println(name)
	return nil
}

// next retires the keys after the first (when promoted), stages a new key
// and promotes it, waiting after each write until kube-apiserver applied it.
func next(ctx context.Context, path string, direct bool, timeout time.Duration) error {
	if path == "" {
		return fmt.Errorf("-config is required")
	}
	kc, err := client()
	if err != nil {
		return err
	}
	cfg, p, err := read(path)
	if err != nil {
		return err
	}
	if p.Stage() == encryptionconfig.StagePromoted {
		b, err := cfg.Retire(p)
		if err != nil {
			return err
		}
		if cfg, err = encryptionconfig.Parse(b); err != nil {
			return fmt.Errorf("the retired configuration: %w", err)
		}
		if p, err = cfg.Provider("secrets"); err != nil {
			return err
		}
	}
	// Key names record the second they were made: one per second at most.
	now := time.Now()
	for _, k := range p.Keys {
		if k.Created().Equal(now.UTC().Truncate(time.Second)) {
			time.Sleep(time.Second)
			now = time.Now()
		}
	}
	name, secret, err := encryptionconfig.NewKey(p.Type, now, nil)
	if err != nil {
		return err
	}
	staged, err := cfg.Stage(p, name, secret)
	if err != nil {
		return err
	}
	if !direct {
		if err := apply(ctx, kc, path, staged, timeout); err != nil {
			return err
		}
	}
	if cfg, err = encryptionconfig.Parse(staged); err != nil {
		return fmt.Errorf("the staged configuration: %w", err)
	}
	if p, err = cfg.Provider("secrets"); err != nil {
		return err
	}
	promoted, err := cfg.Promote(p)
	if err != nil {
		return err
	}
	if err := apply(ctx, kc, path, promoted, timeout); err != nil {
		return err
	}
	fmt.Println(name)
	return nil
}

func read(path string) (*encryptionconfig.Config, *encryptionconfig.Provider, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	cfg, err := encryptionconfig.Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := cfg.Provider("secrets")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, p, nil
}

// apply writes the file and waits until every kube-apiserver reports its
// hash (it polls the file once a minute).
func apply(ctx context.Context, kc kubernetes.Interface, path string, b []byte, timeout time.Duration) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	start := time.Now()
	seen := map[string]string{}
	for {
		pending, err := encryption.Loaded(ctx, kc, b, seen)
		if err == nil && len(pending) == 0 {
			fmt.Fprintf(os.Stderr, "enckey: kube-apiserver applied %s after %s\n", encryption.ConfigHash(b), time.Since(start).Round(time.Second))
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("kube-apiserver did not apply %s within %s: pending %v, %v", path, timeout, pending, err)
		}
		time.Sleep(time.Second)
	}
}

func client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return kc, nil
}

// stored counts the values under prefix in etcd by the key that encrypted
// them (k8s:enc:<provider>:v1:<key>:, else "unencrypted").
func stored(ctx context.Context, stateDir, prefix, want string) error {
	if stateDir == "" {
		kubeconfig := os.Getenv("KUBECONFIG")
		if kubeconfig == "" {
			return fmt.Errorf("neither -state-dir nor KUBECONFIG is set")
		}
		stateDir = filepath.Dir(kubeconfig)
	}
	c, err := cluster.Load(stateDir)
	if err != nil {
		return err
	}
	byKey := map[string]int{}
	total := 0
	b64 := base64.StdEncoding.EncodeToString
	from, end := []byte(prefix), []byte(prefix[:len(prefix)-1]+string(prefix[len(prefix)-1]+1))
	for {
		body, _ := json.Marshal(map[string]any{"key": b64(from), "range_end": b64(end), "limit": 1000})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.EtcdURL()+"/v3/kv/range", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("reading etcd: %w", err)
		}
		var out struct {
			Kvs []struct {
				Key   []byte `json:"key"`
				Value []byte `json:"value"`
			} `json:"kvs"`
			More bool `json:"more"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("reading etcd's range answer: %w", err)
		}
		for _, kv := range out.Kvs {
			total++
			byKey[keyOf(kv.Value)]++
		}
		if !out.More || len(out.Kvs) == 0 {
			break
		}
		from = append(out.Kvs[len(out.Kvs)-1].Key, 0)
	}
	names := make([]string, 0, len(byKey))
	for k := range byKey {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d under %s", byKey[k], k)
	}
	fmt.Printf("%d values under %s in etcd: %s\n", total, prefix, strings.Join(parts, ", "))
	if want != "" && byKey[want] != total {
		return fmt.Errorf("%d of %d values under %s are not under key %s", total-byKey[want], total, prefix, want)
	}
	return nil
}

// keyOf is the key name of an encrypted value's prefix.
func keyOf(v []byte) string {
	const enc = "k8s:enc:"
	if !bytes.HasPrefix(v, []byte(enc)) {
		return "unencrypted"
	}
	// k8s:enc:<provider>:v1:<key>:<ciphertext>
	parts := bytes.SplitN(v[len(enc):], []byte(":"), 4)
	if len(parts) < 4 {
		return "unknown"
	}
	return string(parts[2])
}
