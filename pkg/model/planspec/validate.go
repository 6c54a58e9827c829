package planspec

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// maxTokenBytes matches values.NewHashedPair's limit.
const maxTokenBytes = 8192

// Validate checks the plan, defaults filled in (SetDefaults), and returns
// the first problem as one line that names the item and the fix, e.g.
//
//	plan: item "authdb-password": secret.generate[0] (KEY): generator "rand:32" is unknown: use ...
//
// Unset durations (zero and not Set) count as their defaults.
func (p *Plan) Validate() error {
	if p.APIVersion != APIVersion || p.Kind != Kind {
		return fmt.Errorf("plan: apiVersion/kind is %q/%q: write apiVersion: %s and kind: %s", p.APIVersion, p.Kind, APIVersion, Kind)
	}
	if p.Metadata.Name == "" {
		return fmt.Errorf("plan: metadata.name is required: a DNS-1123 label naming the run and its journal, e.g. diracx-db")
	}
	if len(validation.IsDNS1123Label(p.Metadata.Name)) > 0 {
		return fmt.Errorf("plan: metadata.name %q is not a DNS-1123 label: %s", p.Metadata.Name, labelHelp)
	}
	s := &p.Spec
	if s.Namespace != "" && len(validation.IsDNS1123Label(s.Namespace)) > 0 {
		return fmt.Errorf("plan: spec.namespace %q is not a namespace name: %s", s.Namespace, labelHelp)
	}
	switch s.Restart {
	case "", RestartCoalesced, RestartPerItem, RestartNone:
	default:
		return fmt.Errorf("plan: spec.restart %q is not known: use coalesced (each workload once, after all its writes), per-item or none", s.Restart)
	}
	if err := checkDuration("spec.timeout", s.Timeout); err != nil {
		return fmt.Errorf("plan: %s", err)
	}
	if err := checkDuration("spec.previousTTL", s.PreviousTTL); err != nil {
		return fmt.Errorf("plan: %s", err)
	}
	if len(s.Items) == 0 {
		return fmt.Errorf("plan: spec.items is empty: list at least one Secret or key set to rotate")
	}

	index := map[string]int{}
	for i, it := range s.Items {
		if it == nil {
			return fmt.Errorf("plan: spec.items[%d] is empty: give it a name and a secret or jwks", i)
		}
		if it.Name == "" {
			return fmt.Errorf("plan: spec.items[%d]: name is required: a DNS-1123 label, unique in the plan", i)
		}
		if len(validation.IsDNS1123Label(it.Name)) > 0 {
			return fmt.Errorf("plan: spec.items[%d]: name %q is not a DNS-1123 label: %s", i, it.Name, labelHelp)
		}
		if j, dup := index[it.Name]; dup {
			return fmt.Errorf("plan: item %q: the name is used by spec.items[%d] too: give each item its own name", it.Name, j)
		}
		index[it.Name] = i
	}
	for _, it := range s.Items {
		if err := it.check(index); err != nil {
			return fmt.Errorf("plan: item %q: %s", it.Name, err)
		}
	}
	if err := p.checkWrites(); err != nil {
		return err
	}
	if cycle := p.cycle(); cycle != nil {
		return fmt.Errorf("plan: item %q: the after lists form a cycle %s: remove one of these after entries", cycle[0], strings.Join(cycle, " -> "))
	}
	return nil
}

const labelHelp = "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"

// check validates one item; errors name what is wrong and the fix, without
// the item's name.
func (it *Item) check(index map[string]int) error {
	for _, a := range it.After {
		if a == it.Name {
			return fmt.Errorf("after names the item itself: remove %q from its after list", a)
		}
		if _, ok := index[a]; !ok {
			return fmt.Errorf("after names %q, which is not an item of this plan: use the name of another item", a)
		}
	}
	switch {
	case it.Secret == nil && it.JWKS == nil:
		return fmt.Errorf("has neither secret nor jwks: give it one (secret: new values for keys of a Secret; jwks: a new signing key)")
	case it.Secret != nil && it.JWKS != nil:
		return fmt.Errorf("has both secret and jwks: split it into two items, one for each")
	case it.Secret != nil:
		if err := it.Secret.check(); err != nil {
			return err
		}
	default:
		if err := it.JWKS.check(); err != nil {
			return err
		}
	}
	if err := it.Hooks.Set.check("hooks.set"); err != nil {
		return err
	}
	return it.Hooks.Test.check("hooks.test")
}

func checkSecretName(field, name string) error {
	if name == "" {
		return fmt.Errorf("%s is required: the name of the Secret this item changes", field)
	}
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return fmt.Errorf("%s %q is not a Secret name: use lowercase letters, digits, '-' and '.'", field, name)
	}
	if len(name)+len(PreviousSuffix) > validation.DNS1123SubdomainMaxLength {
		return fmt.Errorf("%s %q is too long: the tool keeps old values in %s%s, which must fit in %d characters", field, name, name, PreviousSuffix, validation.DNS1123SubdomainMaxLength)
	}
	return nil
}

func checkKey(field, key string) error {
	if key == "" {
		return fmt.Errorf("%s is required: the Secret key to change", field)
	}
	if len(validation.IsConfigMapKey(key)) > 0 {
		return fmt.Errorf("%s %q is not a valid Secret key: use letters, digits, '-', '_' and '.'", field, key)
	}
	return nil
}

func checkNamespace(field, ns string) error {
	if ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
		return fmt.Errorf("%s %q is not a namespace name: %s", field, ns, labelHelp)
	}
	return nil
}

func checkDuration(field string, d Duration) error {
	if d.Duration < 0 || (d.Set && d.Duration == 0) {
		return fmt.Errorf("%s is %s: give a duration longer than 0, e.g. 5m, 1h or 7d, or leave it out for the default", field, duration.Format(d.Duration))
	}
	return nil
}

func (s *SecretSpec) check() error {
	if err := checkSecretName("secret.name", s.Name); err != nil {
		return err
	}
	if err := checkNamespace("secret.namespace", s.Namespace); err != nil {
		return err
	}
	if len(s.Generate) == 0 && s.URLPassword == nil && len(s.JSONFields) == 0 && s.Hashed == nil {
		return fmt.Errorf("secret changes nothing: give it generate, urlPassword, jsonFields or hashed")
	}
	// changedBy: key -> the entry that changes it. JSON fields of one key
	// compose, so jsonFields may name a key more than once.
	changedBy := map[string]string{}
	claim := func(key, by string) error {
		if prev, ok := changedBy[key]; ok && !(strings.HasPrefix(prev, "secret.jsonFields") && strings.HasPrefix(by, "secret.jsonFields")) {
			return fmt.Errorf("key %q is changed twice, by %s and by %s: change each key once in an item", key, prev, by)
		}
		if _, ok := changedBy[key]; !ok {
			changedBy[key] = by
		}
		return nil
	}
	for i, g := range s.Generate {
		field := fmt.Sprintf("secret.generate[%d]", i)
		if err := checkKey(field+".key", g.Key); err != nil {
			return err
		}
		if g.Spec == "" {
			return fmt.Errorf("%s (%s): spec is required: use %s", field, g.Key, values.SpecHelp)
		}
		if _, err := values.ParseSpec(g.Spec); err != nil {
			return fmt.Errorf("%s (%s): %s", field, g.Key, err)
		}
		if err := claim(g.Key, field); err != nil {
			return err
		}
	}
	if u := s.URLPassword; u != nil {
		used := len(u.Keys) > 0
		for _, f := range s.JSONFields {
			used = used || f.Spec == SpecURLPassword
		}
		if !used {
			return fmt.Errorf("secret.urlPassword changes nothing: list in keys the keys whose connection URLs get the new password, or use it in a jsonFields entry with spec url-password")
		}
		spec := u.Generate
		if spec == "" {
			spec = DefaultPasswordSpec
		}
		if _, err := values.ParseSpec(spec); err != nil {
			return fmt.Errorf("secret.urlPassword.generate: %s", err)
		}
		for i, k := range u.Keys {
			field := fmt.Sprintf("secret.urlPassword.keys[%d]", i)
			if err := checkKey(field, k); err != nil {
				return err
			}
			if err := claim(k, field); err != nil {
				return err
			}
		}
	}
	fields := map[[2]string]int{}
	for i, f := range s.JSONFields {
		field := fmt.Sprintf("secret.jsonFields[%d]", i)
		if err := checkKey(field+".key", f.Key); err != nil {
			return err
		}
		if f.Field == "" {
			return fmt.Errorf("%s (%s): field is required: the top-level JSON field whose string value changes", field, f.Key)
		}
		if j, dup := fields[[2]string{f.Key, f.Field}]; dup {
			return fmt.Errorf("%s: field %q of key %q is changed twice (also by secret.jsonFields[%d]): change each field once", field, f.Field, f.Key, j)
		}
		fields[[2]string{f.Key, f.Field}] = i
		switch spec := f.Spec; {
		case spec == SpecURLPassword:
			if s.URLPassword == nil {
				return fmt.Errorf("%s (%s.%s): spec url-password needs secret.urlPassword in the same item (its password goes into this field): add urlPassword, or give a generator such as password:40", field, f.Key, f.Field)
			}
		case spec == "":
			// Default password:32.
		default:
			if _, err := values.ParseSpec(spec); err != nil {
				return fmt.Errorf("%s (%s.%s): %s; or url-password for the item's URL password", field, f.Key, f.Field, err)
			}
		}
		if err := claim(f.Key, field); err != nil {
			return err
		}
	}
	if h := s.Hashed; h != nil {
		if err := checkKey("secret.hashed.key", h.Key); err != nil {
			return err
		}
		if h.TokenBytes != 0 && (h.TokenBytes < MinTokenBytes || h.TokenBytes > maxTokenBytes) {
			return fmt.Errorf("secret.hashed.tokenBytes is %d: use between %d and %d (default %d)", h.TokenBytes, MinTokenBytes, maxTokenBytes, DefaultTokenBytes)
		}
		if h.Deliver == "" {
			return fmt.Errorf("secret.hashed.deliver is required: secret:NAME:KEY, the Secret (same namespace) that receives the token once")
		}
		name, key, ok := h.DeliverTo()
		if !ok {
			return fmt.Errorf("secret.hashed.deliver %q: use secret:NAME:KEY (a plan delivers tokens to Secrets only, never to local files)", h.Deliver)
		}
		if err := checkSecretName("secret.hashed.deliver's Secret", name); err != nil {
			return err
		}
		if len(validation.IsConfigMapKey(key)) > 0 {
			return fmt.Errorf("secret.hashed.deliver's key %q is not a valid Secret key: use letters, digits, '-', '_' and '.'", key)
		}
		if name == s.Name {
			return fmt.Errorf("secret.hashed.deliver names secret/%s, which holds the hash: deliver the token to another Secret", name)
		}
		format := h.Format
		if format == "" {
			format = DefaultFormat
		}
		if _, err := values.ParseDeliveryFormat(format); err != nil {
			return fmt.Errorf("secret.hashed.format %q: %s", format, err)
		}
		if err := claim(h.Key, "secret.hashed"); err != nil {
			return err
		}
	}
	return nil
}

func (j *JWKSSpec) check() error {
	if err := checkSecretName("jwks.secret", j.Secret); err != nil {
		return err
	}
	if err := checkNamespace("jwks.namespace", j.Namespace); err != nil {
		return err
	}
	if j.Key != "" {
		if err := checkKey("jwks.key", j.Key); err != nil {
			return err
		}
	}
	var layout jwks.Layout
	if j.Layout != "" {
		l, err := jwks.ParseLayout(j.Layout)
		if err != nil {
			return fmt.Errorf("jwks.layout %q is not known: use diracx, slurm or generic, or leave it out to detect it from the key set", j.Layout)
		}
		layout = l
	}
	switch alg := jwks.Alg(j.Alg); alg {
	case "", jwks.AlgEd25519, jwks.AlgEdDSA, jwks.AlgES256, jwks.AlgRS256, jwks.AlgHS256:
		if alg != "" && layout == jwks.LayoutDiracX && alg != jwks.AlgEd25519 && alg != jwks.AlgEdDSA {
			return fmt.Errorf("jwks.alg %s does not fit layout diracx, which holds Ed25519 keys only: use alg Ed25519 (or leave it out for the signing key's), or layout generic", alg)
		}
		if alg != "" && layout == jwks.LayoutSlurm && alg != jwks.AlgHS256 {
			return fmt.Errorf("jwks.alg %s does not fit layout slurm, which holds HS256 keys only: use alg HS256 (or leave it out), or layout generic", alg)
		}
	default:
		return fmt.Errorf("jwks.alg %q is not supported: use Ed25519, EdDSA, ES256, RS256 or HS256, or leave it out for the layout's", j.Alg)
	}
	return checkDuration("jwks.deleteOlderThan", j.DeleteOlderThan)
}

func (h *Hook) check(field string) error {
	if h == nil {
		return nil
	}
	switch {
	case h.Exec == nil && h.Job == nil:
		return fmt.Errorf("%s has neither exec nor job: give it one (exec: a local command; job: a Kubernetes Job), or remove it", field)
	case h.Exec != nil && h.Job != nil:
		return fmt.Errorf("%s has both exec and job: keep one", field)
	case h.Exec != nil:
		return h.Exec.check(field + ".exec")
	}
	return h.Job.check(field + ".job")
}

func (e *ExecHook) check(field string) error {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return fmt.Errorf("%s.command is empty: give the program and its arguments as a list, e.g. [psql, -f, set-password.sql] (no shell runs it)", field)
	}
	for i, a := range e.Command {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%s.command[%d] holds a NUL byte: remove it", field, i)
		}
	}
	switch e.Values {
	case "", ValuesStdin, ValuesFile:
	default:
		return fmt.Errorf("%s.values %q is not known: use file (a 0600 file named by $KUBE_ROTATE_VALUES_FILE) or stdin (JSON on standard input); values never go on the command line", field, e.Values)
	}
	seen := map[string]bool{}
	for i, v := range e.Env {
		f := fmt.Sprintf("%s.env[%d]", field, i)
		if v.Name == "" || len(validation.IsCIdentifier(v.Name)) > 0 {
			return fmt.Errorf("%s: name %q is not an environment variable name: use letters, digits and '_', not starting with a digit", f, v.Name)
		}
		if strings.HasPrefix(strings.ToUpper(v.Name), EnvPrefix) {
			return fmt.Errorf("%s: name %s starts with %s, which the tool sets itself: choose another name", f, v.Name, EnvPrefix)
		}
		if seen[v.Name] {
			return fmt.Errorf("%s: %s is set twice: set each variable once", f, v.Name)
		}
		seen[v.Name] = true
		if strings.ContainsRune(v.Value, 0) {
			return fmt.Errorf("%s: the value of %s holds a NUL byte: remove it", f, v.Name)
		}
	}
	if strings.ContainsRune(e.WorkingDir, 0) {
		return fmt.Errorf("%s.workingDir holds a NUL byte: remove it", field)
	}
	return checkDuration(field+".timeout", e.Timeout)
}

func (j *JobHook) check(field string) error {
	pod := j.Template.Template.Spec
	if len(pod.Containers) == 0 {
		return fmt.Errorf("%s.template.template.spec.containers is empty: give the Job a container (the tool mounts the pending and current Secrets into it)", field)
	}
	for i, c := range pod.Containers {
		if c.Name == "" {
			return fmt.Errorf("%s.template.template.spec.containers[%d].name is required: name the container", field, i)
		}
		if c.Image == "" {
			return fmt.Errorf("%s.template.template.spec.containers[%d] (%s): image is required: give the image the hook runs", field, i, c.Name)
		}
	}
	switch pod.RestartPolicy {
	case "", corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure:
	default:
		return fmt.Errorf("%s.template.template.spec.restartPolicy %q does not fit a Job: use Never (the default) or OnFailure", field, pod.RestartPolicy)
	}
	return checkDuration(field+".timeout", j.Timeout)
}

// secretRef names a Secret (namespace "" is the kubeconfig's).
type secretRef struct{ ns, name string }

func (r secretRef) String() string {
	if r.ns == "" {
		return "secret/" + r.name
	}
	return r.ns + "/secret/" + r.name
}

// checkWrites finds keys two items write (a key changed by two items, or
// a token delivered into a key another item changes), and Secrets an item
// writes that are another item's pending or previous companion.
func (p *Plan) checkWrites() error {
	type keyRef struct {
		secretRef
		key string
	}
	owner := map[keyRef]string{}
	main := map[secretRef]string{}
	for _, it := range p.Spec.Items {
		main[secretRef{it.Namespace(""), it.SecretName()}] = it.Name
	}
	for _, it := range p.Spec.Items {
		ref := secretRef{it.Namespace(""), it.SecretName()}
		writes := []keyRef{}
		for _, k := range it.Keys() {
			writes = append(writes, keyRef{ref, k})
		}
		if it.Secret != nil && it.Secret.Hashed != nil {
			name, key, _ := it.Secret.Hashed.DeliverTo()
			writes = append(writes, keyRef{secretRef{ref.ns, name}, key})
		}
		for _, w := range writes {
			if prev, ok := owner[w]; ok && prev != it.Name {
				return fmt.Errorf("plan: item %q: writes key %q of %s, which item %q writes too: change each key in one item (merge the two, or drop the key from one)", it.Name, w.key, w.secretRef, prev)
			}
			owner[w] = it.Name
			for _, suffix := range []string{PendingSuffix, PreviousSuffix} {
				base, ok := strings.CutSuffix(w.name, suffix)
				if !ok {
					continue
				}
				if other, ok := main[secretRef{w.ns, base}]; ok {
					return fmt.Errorf("plan: item %q: writes %s, the %s companion the tool keeps for item %q's %s: choose another Secret", it.Name, w.secretRef, strings.TrimPrefix(suffix, "-"), other, secretRef{w.ns, base})
				}
			}
		}
	}
	return nil
}
