package encryption

import (
	"fmt"
	"strings"

	"github.com/kube-rotate/kube-rotate/pkg/model/encryptionconfig"
)

// State is where a rotation stands, read from the configuration: every
// rotatable provider must be at the same stage with the same new key.
type State struct {
	Doc    []byte
	Config *encryptionconfig.Config
	// Stage is the providers' common stage.
	Stage encryptionconfig.Stage
	// Key is the rotation's key: the staged one (staged), the first
	// (promoted, idle).
	Key string
	// Old are the keys the rotation replaces (staged: the first; promoted:
	// every key after the first); none when idle.
	Old []string
}

// ReadState parses doc and reads the stage of its rotatable providers.
func ReadState(doc []byte, source string) (*State, error) {
	cfg, err := encryptionconfig.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	st := &State{Doc: doc, Config: cfg}
	for i, p := range cfg.Providers {
		stage, key, old := providerState(p)
		if i == 0 {
			st.Stage, st.Key, st.Old = stage, key, old
			continue
		}
		if stage != st.Stage || (stage != encryptionconfig.StageIdle && key != st.Key) {
			return nil, fmt.Errorf("%s: %s is %s (key %s) but %s is %s (key %s): the rotatable providers must be at the same stage with the same key; edit the file so that they agree", source, cfg.Providers[0], st.Stage, st.Key, p, stage, key)
		}
	}
	return st, nil
}

func providerState(p *encryptionconfig.Provider) (encryptionconfig.Stage, string, []string) {
	stage := p.Stage()
	if stage == encryptionconfig.StageIdle {
		return stage, p.Keys[0].Name, nil
	}
	key := p.Newest().Name
	var old []string
	for _, k := range p.Keys {
		if k.Name != key {
			old = append(old, k.Name)
		}
	}
	return stage, key, old
}

// Prefixes are how values stored under the keys start in etcd, for every
// rotatable provider.
func (s *State) Prefixes(keys []string) []string {
	var out []string
	for _, p := range s.Config.Providers {
		for _, k := range keys {
			out = append(out, p.Prefix(k))
		}
	}
	return out
}

// Resources are the resource names the rotatable providers cover.
func (s *State) Resources() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range s.Config.Providers {
		for _, r := range p.Resources {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// edit applies f to every rotatable provider in turn (parsing again after
// each edit, since lines move).
func edit(doc []byte, f func(c *encryptionconfig.Config, p *encryptionconfig.Provider) ([]byte, error)) ([]byte, error) {
	c, err := encryptionconfig.Parse(doc)
	if err != nil {
		return nil, err
	}
	for i := range c.Providers {
		if i > 0 {
			if c, err = encryptionconfig.Parse(doc); err != nil {
				return nil, fmt.Errorf("internal: the edited configuration does not parse: %w", err)
			}
		}
		if doc, err = f(c, c.Providers[i]); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func (s *State) providers() string {
	var names []string
	for _, p := range s.Config.Providers {
		names = append(names, p.String())
	}
	return strings.Join(names, "; ")
}
