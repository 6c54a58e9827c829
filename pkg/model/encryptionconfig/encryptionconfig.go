// Package encryptionconfig reads an API server EncryptionConfiguration
// (apiserver.config.k8s.io/v1) and makes the edits of a graceful key
// rotation, as Kubernetes' "Rotating a decryption key" describes it: a new
// key second in its provider (every API server can read with it), then
// first (every API server writes with it), then, once every object was
// rewritten, the old key removed.
//
// The rules are the API server's (k8s.io/apiserver, v0.36:
// pkg/apis/apiserver/types_encryption.go and
// pkg/apis/apiserver/validation/validation_encryption.go): resources[]
// each hold resources (the names they cover) and providers, an ordered
// list whose first provider encrypts new writes and all of which decrypt;
// aescbc, aesgcm and secretbox hold keys, an ordered list of {name,
// secret} whose first key encrypts and all of which decrypt; the secret is
// base64 of 16, 24 or 32 bytes for aescbc and aesgcm, 32 for secretbox;
// names are unique within a provider. Stored values start with
// k8s:enc:<provider>:v1:<key name>: (storage/value/encrypt/aes and
// secretbox).
//
// Edits splice lines of the original document, so everything else in it
// (other resources, identity and KMS providers, comments, order, quoting)
// stays byte for byte. Key material is never part of an error or a
// String.
package encryptionconfig

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Kind and APIVersion an EncryptionConfiguration must have.
const (
	Kind       = "EncryptionConfiguration"
	APIVersion = "apiserver.config.k8s.io/v1"
)

// KeySize is the key size kube-rotate generates for each provider it
// rotates: 32 bytes (AES-256 for aescbc and aesgcm; secretbox takes only
// 32).
var KeySize = map[string]int{"aescbc": 32, "aesgcm": 32, "secretbox": 32}

// validSizes are the sizes the API server accepts.
var validSizes = map[string][]int{"aescbc": {16, 24, 32}, "aesgcm": {16, 24, 32}, "secretbox": {32}}

// keyNamePrefix and keyNameTime make key names that record when the key
// was made: key-20261202T023200Z.
const (
	keyNamePrefix = "key-"
	keyNameTime   = "20060102T150405Z"
)

// KeyName is the name of a key made at t.
func KeyName(t time.Time) string { return keyNamePrefix + t.UTC().Format(keyNameTime) }

// KeyCreated reads the time a key name records; false for a name that
// records none (a key made by hand).
func KeyCreated(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, keyNamePrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(keyNameTime, rest)
	return t, err == nil
}

// Key is one key of a provider: its name and where it is in the document,
// never its secret.
type Key struct {
	Name string
	// Size is the decoded secret's length in bytes.
	Size int
	// first and last are the key's item lines (0-based, inclusive).
	first, last int
}

// Created is when the key was made, from its name; zero when the name
// records nothing.
func (k Key) Created() time.Time {
	t, _ := KeyCreated(k.Name)
	return t
}

// Stage is where a provider's rotation stands, read from its keys.
type Stage string

// Stages of a provider's key rotation.
const (
	// StageIdle: one key.
	StageIdle Stage = "idle"
	// StageStaged: a newer key after the first (every API server can read
	// with it; the first key still writes).
	StageStaged Stage = "staged"
	// StagePromoted: the newest key first (it writes), older keys after it
	// (they still read what was not rewritten).
	StagePromoted Stage = "promoted"
)

// Provider is a rotatable provider: one that holds keys and is the first
// provider of its resources entry (the one that encrypts writes).
type Provider struct {
	// Index is the resources entry (0-based) it belongs to.
	Index int
	// Resources are the resource names the entry covers ("secrets",
	// "configmaps", "*.apps", "*.*").
	Resources []string
	// Type is aescbc, aesgcm or secretbox.
	Type string
	Keys []Key
	// seq is the keys sequence node.
	seq *yaml.Node
}

// Stage is the provider's stage from its keys' order and names.
func (p *Provider) Stage() Stage {
	if len(p.Keys) < 2 {
		return StageIdle
	}
	newest := p.newest()
	if newest == 0 {
		return StagePromoted
	}
	return StageStaged
}

// Newest is the newest key by the time its name records (the staged key
// when the provider is staged).
func (p *Provider) Newest() Key { return p.Keys[p.newest()] }

// newest is the index of the newest key by the time its name records
// (keys made by hand count as oldest; among equals, the earlier one).
func (p *Provider) newest() int {
	n := 0
	for i, k := range p.Keys {
		if k.Created().After(p.Keys[n].Created()) {
			n = i
		}
	}
	return n
}

// String names the provider in messages: "resources[0] (secrets) aescbc".
func (p *Provider) String() string {
	return fmt.Sprintf("resources[%d] (%s) %s", p.Index, strings.Join(p.Resources, ", "), p.Type)
}

// Prefix is how stored values encrypted with key start in etcd.
func (p *Provider) Prefix(key string) string { return "k8s:enc:" + p.Type + ":v1:" + key + ":" }

// Config is a parsed EncryptionConfiguration and its original bytes.
type Config struct {
	src   []byte
	lines []string
	// Providers are the rotatable providers, in document order.
	Providers []*Provider
}

// Parse reads an EncryptionConfiguration. A document that is not one, or
// whose keys are not a block list, is refused naming the place and the
// fix; a configuration with no rotatable provider is refused too.
func Parse(b []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not YAML: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not an EncryptionConfiguration: expected one YAML document with kind: %s", Kind)
	}
	root := doc.Content[0]
	if k := scalar(root, "kind"); k != Kind {
		return nil, fmt.Errorf("kind is %q, not %s", k, Kind)
	}
	if v := scalar(root, "apiVersion"); v != APIVersion {
		return nil, fmt.Errorf("apiVersion is %q: kube-rotate edits %s (convert the file first)", v, APIVersion)
	}
	c := &Config{src: b, lines: strings.SplitAfter(string(b), "\n")}
	resources := value(root, "resources")
	if resources == nil || resources.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("no resources list")
	}
	for i, entry := range resources.Content {
		var names []string
		if rs := value(entry, "resources"); rs != nil {
			for _, r := range rs.Content {
				names = append(names, r.Value)
			}
		}
		providers := value(entry, "providers")
		if providers == nil || providers.Kind != yaml.SequenceNode || len(providers.Content) == 0 {
			return nil, fmt.Errorf("resources[%d]: no providers", i)
		}
		first := providers.Content[0]
		if first.Kind != yaml.MappingNode || len(first.Content) != 2 {
			return nil, fmt.Errorf("resources[%d].providers[0]: expected one provider (aescbc, aesgcm, secretbox, kms, identity)", i)
		}
		typ := first.Content[0].Value
		if _, ok := KeySize[typ]; !ok {
			continue // identity or kms writes: nothing to rotate here
		}
		p := &Provider{Index: i, Resources: names, Type: typ}
		seq := value(first.Content[1], "keys")
		if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 {
			return nil, fmt.Errorf("%s: no keys", p)
		}
		if seq.Style&yaml.FlowStyle != 0 {
			return nil, fmt.Errorf("%s: keys are a flow list ([...]): write them as a block list (- name: ...) so that kube-rotate can edit them line by line", p)
		}
		p.seq = seq
		seen := map[string]bool{}
		for j, item := range seq.Content {
			name := scalar(item, "name")
			if name == "" {
				return nil, fmt.Errorf("%s: keys[%d] has no name", p, j)
			}
			if seen[name] {
				return nil, fmt.Errorf("%s: two keys are named %s: key names must be unique", p, name)
			}
			seen[name] = true
			raw, err := base64.StdEncoding.DecodeString(scalar(item, "secret"))
			if err != nil {
				return nil, fmt.Errorf("%s: key %s: the secret is not base64", p, name)
			}
			if !sizeOK(typ, len(raw)) {
				return nil, fmt.Errorf("%s: key %s is %d bytes: %s takes %v", p, name, len(raw), typ, validSizes[typ])
			}
			first, last := itemLines(item)
			p.Keys = append(p.Keys, Key{Name: name, Size: len(raw), first: first, last: last})
		}
		for j := range p.Keys {
			if j+1 < len(p.Keys) {
				p.Keys[j].last = p.Keys[j+1].first - 1
			}
		}
		c.Providers = append(c.Providers, p)
	}
	if len(c.Providers) == 0 {
		return nil, fmt.Errorf("no resources entry writes with aescbc, aesgcm or secretbox: nothing kube-rotate can rotate (identity and KMS providers are rotated by their own means)")
	}
	return c, nil
}

func sizeOK(typ string, n int) bool {
	for _, s := range validSizes[typ] {
		if s == n {
			return true
		}
	}
	return false
}

// Provider returns the rotatable provider that covers resource (for
// example "secrets"), or the first one when resource is "".
func (c *Config) Provider(resource string) (*Provider, error) {
	if resource == "" {
		return c.Providers[0], nil
	}
	for _, p := range c.Providers {
		for _, r := range p.Resources {
			if r == resource {
				return p, nil
			}
		}
	}
	var have []string
	for _, p := range c.Providers {
		have = append(have, p.String())
	}
	return nil, fmt.Errorf("no rotatable provider covers %q: the configuration has %s", resource, strings.Join(have, "; "))
}

// NewKey returns a key name for now and a secret of the provider's size
// read from rnd (crypto/rand.Reader when nil), base64-encoded as the
// configuration holds it.
func NewKey(typ string, now time.Time, rnd io.Reader) (name, secret string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, KeySize[typ])
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", "", fmt.Errorf("generating a %s key: %w", typ, err)
	}
	return KeyName(now), base64.StdEncoding.EncodeToString(b), nil
}

// Stage returns the document with a new key second in p (readable
// everywhere, not yet writing). Refused unless p is idle.
func (c *Config) Stage(p *Provider, name, secret string) ([]byte, error) {
	if st := p.Stage(); st != StageIdle {
		return nil, fmt.Errorf("%s is %s already (%d keys): promote, retire or roll back first", p, st, len(p.Keys))
	}
	for _, k := range p.Keys {
		if k.Name == name {
			return nil, fmt.Errorf("%s already has a key named %s", p, name)
		}
	}
	first := p.Keys[0]
	item := c.lines[first.first : first.last+1]
	dash := strings.Index(item[0], "-")
	if dash < 0 {
		return nil, fmt.Errorf("%s: cannot find the list item of key %s", p, first.Name)
	}
	indent := item[0][:dash]
	inner := indent + "  "
	for _, l := range item[1:] {
		if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, "secret:") || strings.HasPrefix(t, "name:") {
			inner = l[:len(l)-len(t)]
			break
		}
	}
	nl := "\n"
	if strings.HasSuffix(item[len(item)-1], "\r\n") {
		nl = "\r\n"
	}
	add := indent + "- name: " + name + nl + inner + "secret: " + secret + nl
	out := c.join(0, first.last+1) + add + c.join(first.last+1, len(c.lines))
	if !strings.HasSuffix(c.lines[first.last], "\n") {
		// The first key ended the file without a newline.
		out = c.join(0, first.last+1) + nl + strings.TrimSuffix(add, nl) + c.join(first.last+1, len(c.lines))
	}
	return []byte(out), nil
}

// Promote returns the document with p's newest key moved first (it
// writes; the previous first key stays, second, to read what is not
// rewritten yet). Refused unless p is staged.
func (c *Config) Promote(p *Provider) ([]byte, error) {
	if p.Stage() != StageStaged {
		return nil, fmt.Errorf("%s is %s: only a staged key (a newer key after the first) can be promoted", p, p.Stage())
	}
	return c.moveFirst(p, p.newest())
}

// Demote undoes Promote: the key that was first before it (named) is
// first again. Refused unless p is promoted.
func (c *Config) Demote(p *Provider, previous string) ([]byte, error) {
	if p.Stage() != StagePromoted {
		return nil, fmt.Errorf("%s is %s: nothing promoted to roll back", p, p.Stage())
	}
	for i, k := range p.Keys {
		if k.Name == previous && i > 0 {
			return c.moveFirst(p, i)
		}
	}
	return nil, fmt.Errorf("%s has no key %s after the first: cannot put it first again", p, previous)
}

// Retire returns the document with every key of p but the first removed.
// Refused unless p is promoted; the caller checks first that nothing is
// stored under those keys any more.
func (c *Config) Retire(p *Provider) ([]byte, error) {
	if p.Stage() != StagePromoted {
		return nil, fmt.Errorf("%s is %s: retire follows a promote and the rewrite", p, p.Stage())
	}
	return c.remove(p.Keys[1:]), nil
}

// Unstage undoes Stage: the staged key is removed. Refused unless p is
// staged.
func (c *Config) Unstage(p *Provider) ([]byte, error) {
	if p.Stage() != StageStaged {
		return nil, fmt.Errorf("%s is %s: nothing staged to roll back", p, p.Stage())
	}
	return c.remove([]Key{p.Keys[p.newest()]}), nil
}

// moveFirst moves key i of p before key 0, keeping every line of both.
func (c *Config) moveFirst(p *Provider, i int) ([]byte, error) {
	k := p.Keys[i]
	block := c.join(k.first, k.last+1)
	if !strings.HasSuffix(block, "\n") {
		block += "\n"
	}
	rest := c.join(0, k.first) + c.join(k.last+1, len(c.lines))
	restLines := strings.SplitAfter(rest, "\n")
	head := strings.Join(restLines[:p.Keys[0].first], "")
	tail := strings.Join(restLines[p.Keys[0].first:], "")
	out := head + block + tail
	if !strings.HasSuffix(string(c.src), "\n") {
		out = strings.TrimSuffix(out, "\n")
	}
	return []byte(out), nil
}

// remove drops the lines of keys.
func (c *Config) remove(keys []Key) []byte {
	gone := map[int]bool{}
	for _, k := range keys {
		for l := k.first; l <= k.last; l++ {
			gone[l] = true
		}
	}
	var b strings.Builder
	for i, l := range c.lines {
		if !gone[i] {
			b.WriteString(l)
		}
	}
	out := b.String()
	if !strings.HasSuffix(string(c.src), "\n") {
		out = strings.TrimSuffix(out, "\n")
	}
	return []byte(out)
}

func (c *Config) join(from, to int) string { return strings.Join(c.lines[from:to], "") }

// itemLines returns the first and last lines (0-based) of a sequence
// item's mapping: from its first key to its last value.
func itemLines(item *yaml.Node) (int, int) {
	first, last := item.Line-1, item.Line-1
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line-1 > last {
			last = n.Line - 1
		}
		if n.Kind == yaml.ScalarNode && (n.Style&(yaml.LiteralStyle|yaml.FoldedStyle)) != 0 {
			last += strings.Count(strings.TrimRight(n.Value, "\n"), "\n") + 1
		}
		for _, ch := range n.Content {
			walk(ch)
		}
	}
	walk(item)
	return first, last
}

// value is the value node of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := value(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}
