package planspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const head = `apiVersion: rotate.kube-rotate.io/v1alpha1
kind: RotationPlan
metadata: {name: t}
spec:
`

func names(items []*Item) string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return strings.Join(out, " ")
}

func TestDiracXPlan(t *testing.T) {
	p, err := ParseFile("testdata/diracx-all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	order, err := p.Order()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(order), "jwks-signing-key sql-passwords sql-root-passwords opensearch-password sandbox-s3 auth-state-key legacy-exchange-key"; got != want {
		t.Errorf("Order() = %s, want %s", got, want)
	}
	phases, err := p.Phases()
	if err != nil {
		t.Fatal(err)
	}
	if len(phases) != 2 || names(phases[0]) != "jwks-signing-key sql-passwords opensearch-password sandbox-s3 auth-state-key" || names(phases[1]) != "sql-root-passwords legacy-exchange-key" {
		t.Errorf("Phases() = %v", phases)
	}
	if p.Spec.Restart != RestartCoalesced || p.Spec.Timeout.Duration != 10*time.Minute || p.Spec.PreviousTTL.Duration != 7*24*time.Hour {
		t.Errorf("spec = %+v", p.Spec)
	}
	byName := map[string]*Item{}
	for _, it := range p.Spec.Items {
		byName[it.Name] = it
	}

	j := byName["jwks-signing-key"]
	if j.SecretName() != "diracx-jwks" || j.Namespace("default") != "diracx" || j.JWKS.Key != "jwks.json" || j.JWKS.DeleteOlderThan.Duration != 7*24*time.Hour {
		t.Errorf("jwks item: %s/%s %+v", j.Namespace("default"), j.SecretName(), j.JWKS)
	}
	if got := j.Keys(); len(got) != 1 || got[0] != "jwks.json" {
		t.Errorf("jwks Keys() = %v", got)
	}

	sql := byName["sql-passwords"]
	if got := strings.Join(sql.Keys(), ","); got != "DIRACX_DB_URL_AUTHDB,DIRACX_DB_URL_JOBDB" {
		t.Errorf("sql Keys() = %s", got)
	}
	set := sql.Hooks.Set.Exec
	if set.Values != ValuesFile || set.Timeout.Duration != 2*time.Minute || set.Env[0].Name != "MYSQL_ADMIN_DEFAULTS" {
		t.Errorf("sql set hook = %+v", set)
	}
	if got, want := p.HookDir(set), filepath.Join(p.Dir(), "hooks"); got != want || !filepath.IsAbs(got) {
		t.Errorf("HookDir = %s, want %s (absolute)", got, want)
	}
	job := sql.Hooks.Test.Job
	pod := job.Template.Template.Spec
	if job.Timeout.Duration != 5*time.Minute || *job.Template.BackoffLimit != 0 || pod.RestartPolicy != corev1.RestartPolicyNever ||
		pod.Containers[0].Image != "mysql:8.4" || pod.Containers[0].Resources.Limits.Memory().String() != "128Mi" ||
		*pod.Volumes[0].ConfigMap.DefaultMode != 0o755 || job.Template.Template.Labels["app.kubernetes.io/part-of"] != "diracx" {
		t.Errorf("sql test job = %+v", job)
	}

	root := byName["sql-root-passwords"]
	if h := root.Hooks.Set.Exec; h.Values != ValuesFile || h.Timeout.Duration != DefaultHookTimeout || root.Secret.URLPassword.Generate != "password:32" {
		t.Errorf("defaults not filled: %+v %+v", h, root.Secret.URLPassword)
	}
	os := byName["opensearch-password"]
	if os.Secret.JSONFields[0].Spec != SpecURLPassword || os.Hooks.Set.Exec.Values != ValuesStdin || len(os.Secret.URLPassword.Keys) != 0 {
		t.Errorf("opensearch item = %+v", os.Secret)
	}
	leg := byName["legacy-exchange-key"].Secret.Hashed
	if name, key, ok := leg.DeliverTo(); !ok || name != "diracx-legacy-exchange-api-key" || key != "api-key" || leg.Format != "diracx:legacy:{{.Base64URL}}" || leg.TokenBytes != 32 {
		t.Errorf("hashed = %+v", leg)
	}
	if auth := byName["auth-state-key"]; auth.Secret.Generate[0].Spec != "random:32" || auth.Hooks.Set != nil {
		t.Errorf("auth item = %+v", auth)
	}
}

func TestPuppetPlan(t *testing.T) {
	p, err := ParseFile("testdata/puppet-reencrypt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	order, err := p.Order()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(order); got != "db-password secret-key" {
		t.Errorf("Order() = %s", got)
	}
	if p.Spec.Restart != RestartPerItem || p.Spec.Timeout.Duration != DefaultTimeout || p.Spec.PreviousTTL.Duration != 30*24*time.Hour {
		t.Errorf("spec = %+v", p.Spec)
	}
	db := p.Spec.Items[0]
	if db.Namespace("") != "puppet" || db.Hooks.Set.Exec.Command[0] != "psql" || db.Hooks.Test.Exec.Timeout.Duration != 30*time.Second {
		t.Errorf("db item = %+v", db)
	}
	if got, want := p.HookDir(db.Hooks.Test.Exec), p.Dir(); got != want {
		t.Errorf("HookDir without workingDir = %s, want the plan's dir %s", got, want)
	}
	key := p.Spec.Items[1]
	reenc := key.Hooks.Set.Job
	if reenc.Timeout.Duration != time.Hour || *reenc.Template.BackoffLimit != 3 || reenc.Template.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Key != "DATABASE_URL" {
		t.Errorf("re-encryption job = %+v", reenc)
	}
	if key.Hooks.Test.Job.Timeout.Duration != DefaultJobTimeout {
		t.Errorf("test job timeout = %v", key.Hooks.Test.Job.Timeout)
	}
}

// item wraps item YAML (indented as a list entry under spec.items) in a plan.
func item(s string) string { return head + "  items:\n" + s }

const okItem = `  - name: a
    secret:
      name: s
      generate: [{key: K, spec: random:32}]
`

func TestValidationErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"wrong apiVersion", strings.Replace(item(okItem), "v1alpha1", "v1", 1), `plan: apiVersion/kind is "rotate.kube-rotate.io/v1"/"RotationPlan": write apiVersion: rotate.kube-rotate.io/v1alpha1`},
		{"wrong kind", strings.Replace(item(okItem), "RotationPlan", "RotationPolicy", 1), `apiVersion/kind is "rotate.kube-rotate.io/v1alpha1"/"RotationPolicy"`},
		{"no name", strings.Replace(item(okItem), "metadata: {name: t}", "metadata: {}", 1), "plan: metadata.name is required"},
		{"bad name", strings.Replace(item(okItem), "name: t}", "name: DiracX_DB}", 1), `plan: metadata.name "DiracX_DB" is not a DNS-1123 label`},
		{"no items", head + "  namespace: x\n", "plan: spec.items is empty"},
		{"empty items", head + "  items: []\n", "plan: spec.items is empty"},
		{"null item", head + "  items: [~]\n", "plan: spec.items[0] is empty"},
		{"item without name", item("  - secret: {name: s, generate: [{key: K, spec: uuid}]}\n"), "plan: spec.items[0]: name is required"},
		{"item name not a label", item("  - name: Auth_DB\n    secret: {name: s, generate: [{key: K, spec: uuid}]}\n"), `plan: spec.items[0]: name "Auth_DB" is not a DNS-1123 label`},
		{"duplicate item", item(okItem + "  - name: a\n    jwks: {secret: j}\n"), `plan: item "a": the name is used by spec.items[0] too`},
		{"neither secret nor jwks", item("  - name: a\n"), `plan: item "a": has neither secret nor jwks`},
		{"both secret and jwks", item(okItem + "    jwks: {secret: j}\n"), `plan: item "a": has both secret and jwks: split it`},
		{"secret without name", item("  - name: a\n    secret: {generate: [{key: K, spec: uuid}]}\n"), `plan: item "a": secret.name is required`},
		{"secret name too long", item("  - name: a\n    secret: {name: " + strings.Repeat("s", 250) + ", generate: [{key: K, spec: uuid}]}\n"), `plan: item "a": secret.name "sss`},
		{"no change", item("  - name: a\n    secret: {name: s, createKeys: true}\n"), `plan: item "a": secret changes nothing: give it generate, urlPassword, jsonFields or hashed`},
		{"bad generator", item("  - name: a\n    secret: {name: s, generate: [{key: K, spec: rand:32}]}\n"), `plan: item "a": secret.generate[0] (K): generator "rand:32" is unknown: use random:N`},
		{"short generator", item("  - name: a\n    secret: {name: s, generate: [{key: K, spec: random:8}]}\n"), `plan: item "a": secret.generate[0] (K): generator "random:8": size must be between 16`},
		{"no generator", item("  - name: a\n    secret: {name: s, generate: [{key: K}]}\n"), `plan: item "a": secret.generate[0] (K): spec is required`},
		{"bad key", item("  - name: a\n    secret: {name: s, generate: [{key: 'a/b', spec: uuid}]}\n"), `plan: item "a": secret.generate[0].key "a/b" is not a valid Secret key`},
		{"bad url password generator", item("  - name: a\n    secret: {name: s, urlPassword: {keys: [U], generate: password:4}}\n"), `plan: item "a": secret.urlPassword.generate: generator "password:4"`},
		{"url password unused", item("  - name: a\n    secret: {name: s, urlPassword: {generate: password:20}}\n"), `plan: item "a": secret.urlPassword changes nothing`},
		{"key twice in generate", item("  - name: a\n    secret: {name: s, generate: [{key: K, spec: uuid}, {key: K, spec: hex:16}]}\n"), `plan: item "a": key "K" is changed twice, by secret.generate[0] and by secret.generate[1]`},
		{"key in generate and urlPassword", item("  - name: a\n    secret: {name: s, generate: [{key: K, spec: uuid}], urlPassword: {keys: [K]}}\n"), `plan: item "a": key "K" is changed twice, by secret.generate[0] and by secret.urlPassword.keys[0]`},
		{"key in jsonFields and hashed", item("  - name: a\n    secret:\n      name: s\n      jsonFields: [{key: K, field: f}]\n      hashed: {key: K, deliver: 'secret:t:k'}\n"), `plan: item "a": key "K" is changed twice, by secret.jsonFields[0] and by secret.hashed`},
		{"json field twice", item("  - name: a\n    secret: {name: s, jsonFields: [{key: K, field: f}, {key: K, field: f, spec: uuid}]}\n"), `plan: item "a": secret.jsonFields[1]: field "f" of key "K" is changed twice`},
		{"json field without field", item("  - name: a\n    secret: {name: s, jsonFields: [{key: K}]}\n"), `plan: item "a": secret.jsonFields[0] (K): field is required`},
		{"json field bad spec", item("  - name: a\n    secret: {name: s, jsonFields: [{key: K, field: f, spec: url}]}\n"), `plan: item "a": secret.jsonFields[0] (K.f): generator "url" is unknown`},
		{"url-password without urlPassword", item("  - name: a\n    secret: {name: s, jsonFields: [{key: S3_KWARGS, field: hosts, spec: url-password}]}\n"), `plan: item "a": secret.jsonFields[0] (S3_KWARGS.hosts): spec url-password needs secret.urlPassword in the same item`},
		{"deliver to a file", item("  - name: a\n    secret: {name: s, hashed: {key: H, deliver: 'file:/tmp/token'}}\n"), `plan: item "a": secret.hashed.deliver "file:/tmp/token": use secret:NAME:KEY`},
		{"deliver without key", item("  - name: a\n    secret: {name: s, hashed: {key: H, deliver: 'secret:t'}}\n"), `plan: item "a": secret.hashed.deliver "secret:t": use secret:NAME:KEY`},
		{"deliver missing", item("  - name: a\n    secret: {name: s, hashed: {key: H}}\n"), `plan: item "a": secret.hashed.deliver is required`},
		{"deliver to own Secret", item("  - name: a\n    secret: {name: s, hashed: {key: H, deliver: 'secret:s:T'}}\n"), `plan: item "a": secret.hashed.deliver names secret/s, which holds the hash`},
		{"bad format", item("  - name: a\n    secret: {name: s, hashed: {key: H, deliver: 'secret:t:k', format: 'x{{.Base64URL'}}\n"), `plan: item "a": secret.hashed.format "x{{.Base64URL": delivery format:`},
		{"unknown format field", item("  - name: a\n    secret: {name: s, hashed: {key: H, deliver: 'secret:t:k', format: '{{.Token}}'}}\n"), `plan: item "a": secret.hashed.format "{{.Token}}": delivery format uses an unknown field`},
		{"tokenBytes too small", item("  - name: a\n    secret: {name: s, hashed: {key: H, tokenBytes: 8, deliver: 'secret:t:k'}}\n"), `plan: item "a": secret.hashed.tokenBytes is 8: use between 16 and 8192`},
		{"same key in two items", item(okItem + "  - name: b\n    secret: {name: s, generate: [{key: K, spec: uuid}]}\n"), `plan: item "b": writes key "K" of secret/s, which item "a" writes too`},
		{"same key with namespaces", head + "  namespace: ns\n  items:\n" + okItem + "  - name: b\n    secret: {name: s, namespace: ns, urlPassword: {keys: [K]}}\n", `plan: item "b": writes key "K" of ns/secret/s, which item "a" writes too`},
		{"secret and jwks on one key", item("  - name: a\n    jwks: {secret: s, key: K}\n" + "  - name: b\n    secret: {name: s, generate: [{key: K, spec: uuid}]}\n"), `plan: item "b": writes key "K" of secret/s, which item "a" writes too`},
		{"token into another item's key", item(okItem + "  - name: b\n    secret: {name: t, hashed: {key: H, deliver: 'secret:s:K'}}\n"), `plan: item "b": writes key "K" of secret/s, which item "a" writes too`},
		{"companion Secret", item(okItem + "  - name: b\n    secret: {name: s-previous, generate: [{key: X, spec: uuid}]}\n"), `plan: item "b": writes secret/s-previous, the previous companion the tool keeps for item "a"'s secret/s`},
		{"after unknown", item(okItem + "    after: [zz]\n"), `plan: item "a": after names "zz", which is not an item of this plan`},
		{"after itself", item(okItem + "    after: [a]\n"), `plan: item "a": after names the item itself`},
		{"cycle of two", item(okItem + "    after: [b]\n  - name: b\n    after: [a]\n    jwks: {secret: j}\n"), `plan: item "a": the after lists form a cycle a -> b -> a: remove one of these after entries`},
		{"cycle of three", item("  - name: x\n    jwks: {secret: x}\n  - name: a\n    after: [x, c]\n    jwks: {secret: a}\n  - name: b\n    after: [a]\n    jwks: {secret: b}\n  - name: c\n    after: [b]\n    jwks: {secret: c}\n"), `plan: item "a": the after lists form a cycle a -> c -> b -> a`},
		{"hook with neither", item(okItem + "    hooks: {set: {}}\n"), `plan: item "a": hooks.set has neither exec nor job`},
		{"hook with both", item(okItem + "    hooks:\n      test:\n        exec: {command: [true]}\n        job: {template: {template: {spec: {containers: [{name: c, image: i}]}}}}\n"), `plan: item "a": hooks.test has both exec and job: keep one`},
		{"exec without command", item(okItem + "    hooks: {set: {exec: {values: stdin}}}\n"), `plan: item "a": hooks.set.exec.command is empty`},
		{"exec empty program", item(okItem + "    hooks: {set: {exec: {command: ['', x]}}}\n"), `plan: item "a": hooks.set.exec.command is empty`},
		{"bad values mode", item(okItem + "    hooks: {set: {exec: {command: [psql], values: argv}}}\n"), `plan: item "a": hooks.set.exec.values "argv" is not known: use file`},
		{"bad env name", item(okItem + "    hooks: {set: {exec: {command: [psql], env: [{name: 1PGHOST, value: x}]}}}\n"), `plan: item "a": hooks.set.exec.env[0]: name "1PGHOST" is not an environment variable name`},
		{"reserved env name", item(okItem + "    hooks: {test: {exec: {command: [psql], env: [{name: KUBE_ROTATE_VALUES_FILE, value: /tmp/x}]}}}\n"), `plan: item "a": hooks.test.exec.env[0]: name KUBE_ROTATE_VALUES_FILE starts with KUBE_ROTATE_`},
		{"env twice", item(okItem + "    hooks: {test: {exec: {command: [psql], env: [{name: A, value: x}, {name: A, value: y}]}}}\n"), `plan: item "a": hooks.test.exec.env[1]: A is set twice`},
		{"exec zero timeout", item(okItem + "    hooks: {set: {exec: {command: [psql], timeout: 0s}}}\n"), `plan: item "a": hooks.set.exec.timeout is 0s: give a duration longer than 0`},
		{"job without containers", item(okItem + "    hooks: {set: {job: {template: {template: {spec: {restartPolicy: Never}}}}}}\n"), `plan: item "a": hooks.set.job.template.template.spec.containers is empty`},
		{"job without template", item(okItem + "    hooks: {set: {job: {timeout: 1m}}}\n"), `plan: item "a": hooks.set.job.template.template.spec.containers is empty`},
		{"job container without image", item(okItem + "    hooks: {set: {job: {template: {template: {spec: {containers: [{name: c}]}}}}}}\n"), `plan: item "a": hooks.set.job.template.template.spec.containers[0] (c): image is required`},
		{"job restart always", item(okItem + "    hooks: {set: {job: {template: {template: {spec: {restartPolicy: Always, containers: [{name: c, image: i}]}}}}}}\n"), `plan: item "a": hooks.set.job.template.template.spec.restartPolicy "Always" does not fit a Job`},
		{"job zero timeout", item(okItem + "    hooks: {set: {job: {timeout: 0m, template: {template: {spec: {containers: [{name: c, image: i}]}}}}}}\n"), `plan: item "a": hooks.set.job.timeout is 0s`},
		{"bad restart", head + "  restart: always\n  items:\n" + okItem, `plan: spec.restart "always" is not known: use coalesced`},
		{"zero timeout", head + "  timeout: 0s\n  items:\n" + okItem, `plan: spec.timeout is 0s: give a duration longer than 0`},
		{"zero previousTTL", head + "  previousTTL: 0d\n  items:\n" + okItem, `plan: spec.previousTTL is 0s`},
		{"negative timeout", head + "  timeout: -5m\n  items:\n" + okItem, `plan: line 5: duration "-5m": use forms like`},
		{"bad namespace", head + "  namespace: Diracx\n  items:\n" + okItem, `plan: spec.namespace "Diracx" is not a namespace name`},
		{"bad item namespace", item("  - name: a\n    secret: {name: s, namespace: a.b, generate: [{key: K, spec: uuid}]}\n"), `plan: item "a": secret.namespace "a.b" is not a namespace name`},
		{"jwks without secret", item("  - name: a\n    jwks: {layout: diracx}\n"), `plan: item "a": jwks.secret is required`},
		{"bad jwks layout", item("  - name: a\n    jwks: {secret: j, layout: keycloak}\n"), `plan: item "a": jwks.layout "keycloak" is not known: use diracx, slurm or generic`},
		{"bad jwks alg", item("  - name: a\n    jwks: {secret: j, alg: PS256}\n"), `plan: item "a": jwks.alg "PS256" is not supported: use Ed25519, EdDSA, ES256, RS256 or HS256`},
		{"jwks alg against layout", item("  - name: a\n    jwks: {secret: j, layout: slurm, alg: EdDSA}\n"), `plan: item "a": jwks.alg EdDSA does not fit layout slurm`},
		{"jwks bad key", item("  - name: a\n    jwks: {secret: j, key: 'a b'}\n"), `plan: item "a": jwks.key "a b" is not a valid Secret key`},
		{"jwks zero deleteOlderThan", item("  - name: a\n    jwks: {secret: j, deleteOlderThan: 0h}\n"), `plan: item "a": jwks.deleteOlderThan is 0s`},
		{"two documents", item(okItem) + "---\nkind: x\n", "plan: the file holds more than one YAML document"},
		{"empty file", "", "plan: the file is empty"},
		{"not yaml", "{{{", "plan: "},
		{"not a mapping", "- a\n- b\n", "plan: line 1: cannot unmarshal"},
		{"duplicate field", head + "  restart: none\n  restart: per-item\n  items:\n" + okItem, `plan: line 6: mapping key "restart" already defined at line 5`},
		{"multi-line value", head + "  restart: \"a\\nb\"\n  items:\n" + okItem, `plan: spec.restart "a\nb" is not known`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v\nwant one line containing %q", err, tt.want)
			}
		})
	}
}

func TestUnknownFieldsNameTheLine(t *testing.T) {
	job := func(container string) string {
		return item(okItem + `    hooks:
      set:
        job:
          template:
            template:
              spec:
                restartPolicy: Never
                containers:
                - name: hook
                  image: postgres:15
` + container)
	}
	tests := []struct{ name, doc, want string }{
		{"top level", strings.Replace(item(okItem), "metadata:", "metdata:", 1), `plan: line 3: unknown field "metdata" in the plan: use apiVersion, kind, metadata, spec`},
		{"spec", head + "  timeot: 5m\n  items:\n" + okItem, `plan: line 5: unknown field "timeot" in spec`},
		{"item", item(okItem + "    afterr: [b]\n"), `plan: line 10: unknown field "afterr" in an item: use name, after, secret, jwks, hooks`},
		{"secret", item(okItem + "      createKey: true\n"), `plan: line 10: unknown field "createKey" in an item's secret`},
		{"generate entry", item("  - name: a\n    secret:\n      name: s\n      generate: [{key: K, sepc: uuid}]\n"), `plan: line 9: unknown field "sepc" in a generate entry`},
		{"hashed", item("  - name: a\n    secret:\n      name: s\n      hashed: {key: H, deliver: 'secret:t:k', tokenbytes: 32}\n"), `plan: line 9: unknown field "tokenbytes" in hashed`},
		{"jwks", item("  - name: a\n    jwks:\n      secret: j\n      kid: x\n"), `plan: line 9: unknown field "kid" in an item's jwks`},
		{"hooks", item(okItem + "    hooks:\n      verify: {exec: {command: [x]}}\n"), `plan: line 11: unknown field "verify" in hooks: use set, test`},
		{"hook", item(okItem + "    hooks:\n      set:\n        shell: x\n"), `plan: line 12: unknown field "shell" in a hook: use exec, job`},
		{"exec hook", item(okItem + "    hooks:\n      set:\n        exec:\n          command: [x]\n          args: [y]\n"), `plan: line 14: unknown field "args" in an exec hook`},
		{"env entry", item(okItem + "    hooks:\n      set:\n        exec:\n          command: [x]\n          env: [{name: A, valueFrom: y}]\n"), `plan: line 14: unknown field "valueFrom" in an env entry`},
		{"job hook", item(okItem + "    hooks:\n      set:\n        job:\n          image: x\n"), `plan: line 13: unknown field "image" in a job hook: use template, timeout`},
		{"job container", job("                  imagePullPolicyy: Always\n"), `plan: line 20: unknown field "imagePullPolicyy" in template.template.spec.containers[0] (Container)`},
		{"job container case", job("                  Command: [x]\n"), `plan: line 20: unknown field "Command" in template.template.spec.containers[0] (Container)`},
		{"job pod spec", job("                restartpolicy: Never\n"), `plan: line 20: unknown field "restartpolicy" in template.template.spec (PodSpec)`},
		{"job deep", job("                  resources: {limits: {cpu: 1}, limitz: {}}\n"), `plan: line 20: unknown field "limitz" in template.template.spec.containers[0].resources (ResourceRequirements)`},
		{"job spec", item(okItem + "    hooks:\n      set:\n        job:\n          template:\n            backoff: 1\n"), `plan: line 14: unknown field "backoff" in template (JobSpec)`},
		{"job wrong shape", job("                  args: {a: b}\n"), `plan: line 20: template.template.spec.containers[0].args must be a list`},
		{"job wrong number", job("                  stdin: maybe\n"), `plan: line 20: template.template.spec.containers[0].stdin must be true or false`},
		{"job bad quantity", job("                  resources: {limits: {cpu: lots}}\n"), `plan: line 20: template.template.spec.containers[0].resources.limits.cpu: quantities must match`},
		{"job merge key", item(okItem + "    hooks:\n      set:\n        job:\n          template:\n            <<: {backoffLimit: 1}\n"), `plan: line 14: template: keys must be plain field names`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v\nwant one line containing %q", err, tt.want)
			}
		})
	}
}

func TestValidPlans(t *testing.T) {
	tests := []struct{ name, doc, order string }{
		{"same key in two namespaces", item(okItem + "  - name: b\n    secret: {name: s, namespace: other, generate: [{key: K, spec: uuid}]}\n"), "a b"},
		{"two items on one Secret", item(okItem + "  - name: b\n    secret: {name: s, generate: [{key: L, spec: uuid}]}\n"), "a b"},
		{"json fields of one key compose", item("  - name: a\n    secret: {name: s, urlPassword: {keys: [U]}, jsonFields: [{key: K, field: f}, {key: K, field: g, spec: url-password}]}\n"), "a"},
		{"after keeps file order for ties", item("  - name: c\n    after: [a]\n    jwks: {secret: c}\n  - name: b\n    jwks: {secret: b}\n  - name: a\n    jwks: {secret: a}\n  - name: d\n    jwks: {secret: d}\n"), "b a c d"},
		{"diamond", item("  - name: d\n    after: [b, c]\n    jwks: {secret: d}\n  - name: c\n    after: [a]\n    jwks: {secret: c}\n  - name: b\n    after: [a, a]\n    jwks: {secret: b}\n  - name: a\n    jwks: {secret: a}\n"), "a c b d"},
		{"anchors in a job template", item(okItem + "    hooks:\n      set:\n        job:\n          template:\n            template:\n              spec:\n                containers:\n                - &c {name: one, image: 'x:1', args: [1, true, 2.5]}\n                - {name: two, image: 'x:1'}\n"), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			order, err := p.Order()
			if err != nil {
				t.Fatal(err)
			}
			if got := names(order); got != tt.order {
				t.Errorf("Order() = %s, want %s", got, tt.order)
			}
		})
	}
}

func TestJobTemplateAliases(t *testing.T) {
	ten := func(x string) string { return "[" + strings.TrimSuffix(strings.Repeat(x+", ", 10), ", ") + "]" }
	bomb := "[&a " + ten("1") + ", &b " + ten("*a") + ", &c " + ten("*b") + ", &d " + ten("*c") + ", &e " + ten("*d") + ", &f " + ten("*e") + "]"
	tests := []struct{ name, spec, want string }{
		{"self-referential list", "{containers: &a [*a]}", "plan: line 10: template.template.spec.containers[0] must be a mapping of fields"},
		{"self-referential map", "{containers: [{name: c, image: i}], nodeSelector: &a {x: *a}}", "plan: line 10: template.template.spec.nodeSelector.x must be a single value"},
		{"alias in a quantity", "{containers: [{name: c, image: i, resources: {limits: {cpu: &q [*q]}}}]}", "plan: line 10: the job template nests deeper than 64 levels"},
		{"deep nesting", "{containers: [{name: c, image: i, resources: {limits: {cpu: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}}}]}", "plan: line 10: the job template nests deeper than 64 levels"},
		{"key with a newline", "{containers: [{name: c, image: i}], nodeSelector: {\"a\\nb\": [1]}}", `plan: line 10: template.template.spec.nodeSelector.a\nb must be a single value`},
		{"alias bomb", "{containers: [{name: c, image: i, resources: {limits: {cpu: " + bomb + "}}}]}", "plan: line 10: the job template is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(item(okItem + "    hooks: {set: {job: {template: {template: {spec: " + tt.spec + "}}}}}\n")))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v\nwant one line containing %q", err, tt.want)
			}
		})
	}
}

func TestJobTemplateScalars(t *testing.T) {
	p, err := Parse([]byte(item(okItem + "    hooks:\n      set:\n        job:\n          template:\n            template:\n              spec:\n                containers:\n                - {name: c, image: 'x:1', args: [1, true, 2.5], env: [{name: PORT, value: 5432}]}\n")))
	if err != nil {
		t.Fatal(err)
	}
	c := p.Spec.Items[0].Hooks.Set.Job.Template.Template.Spec.Containers[0]
	if strings.Join(c.Args, ",") != "1,true,2.5" || c.Env[0].Value != "5432" {
		t.Errorf("container = %+v", c)
	}
}

func TestPhases(t *testing.T) {
	p, err := Parse([]byte(item("  - name: d\n    after: [b, c]\n    jwks: {secret: d}\n  - name: c\n    after: [a]\n    jwks: {secret: c}\n  - name: b\n    jwks: {secret: b}\n  - name: a\n    jwks: {secret: a}\n")))
	if err != nil {
		t.Fatal(err)
	}
	phases, err := p.Phases()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ph := range phases {
		got = append(got, names(ph))
	}
	if strings.Join(got, " | ") != "b a | c | d" {
		t.Errorf("Phases() = %q", got)
	}
}

func TestOrderOfHandBuiltPlan(t *testing.T) {
	p := &Plan{Spec: Spec{Items: []*Item{{Name: "a", After: []string{"b"}}, {Name: "b", After: []string{"a"}}}}}
	if _, err := p.Order(); err == nil || !strings.Contains(err.Error(), "cycle a -> b -> a") {
		t.Errorf("Order() err = %v", err)
	}
	p.Spec.Items[1].After = []string{"z"}
	if _, err := p.Order(); err == nil || !strings.Contains(err.Error(), `item "b": after names "z"`) {
		t.Errorf("Order() err = %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	short := item(okItem + "    hooks: {set: {exec: {command: [psql]}}}\n")
	long := head + "  restart: coalesced\n  timeout: 5m\n  previousTTL: 7d\n  items:\n" + okItem + "    hooks: {set: {exec: {command: [psql], values: file, timeout: 300s}}}\n"
	other := item(okItem + "    hooks: {set: {exec: {command: [psql], values: stdin}}}\n")
	fp := func(doc string) string {
		p, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return p.Fingerprint()
	}
	a, b, c := fp(short), fp(long), fp(other)
	if len(a) != 64 || a != b {
		t.Errorf("defaults written or left out give %s and %s", a, b)
	}
	if a == c {
		t.Errorf("a changed hook kept the fingerprint %s", a)
	}
	if fp(short) != a {
		t.Error("fingerprint not stable")
	}
	// Spec namespace or the items' own: the same plan.
	nsSpec := head + "  namespace: x\n  items:\n" + okItem
	nsItem := item("  - name: a\n    secret:\n      name: s\n      namespace: x\n      generate: [{key: K, spec: random:32}]\n")
	if fp(nsSpec) != fp(nsItem) {
		t.Error("spec.namespace and the item's namespace give different fingerprints")
	}
	// A hand-built plan without SetDefaults fingerprints as its parsed form.
	hand := &Plan{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "t"}, Spec: Spec{Items: []*Item{{
		Name:   "a",
		Secret: &SecretSpec{Name: "s", Generate: []GenerateKey{{Key: "K", Spec: "random:32"}}},
		Hooks:  Hooks{Set: &Hook{Exec: &ExecHook{Command: []string{"psql"}}}},
	}}}}
	if err := hand.Validate(); err != nil {
		t.Fatal(err)
	}
	if hand.Fingerprint() != a {
		t.Error("hand-built plan fingerprints differently from the parsed one")
	}
	if hand.Spec.Restart != "" {
		t.Error("Fingerprint changed the plan")
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	doc := item(okItem + "    hooks: {set: {exec: {command: [./set.sh], workingDir: sub}}, test: {exec: {command: [x], workingDir: /opt/hooks}}}\n")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := p.Spec.Items[0].Hooks
	if p.Dir() != dir || p.HookDir(h.Set.Exec) != filepath.Join(dir, "sub") || p.HookDir(h.Test.Exec) != "/opt/hooks" {
		t.Errorf("Dir %s, HookDir %s and %s", p.Dir(), p.HookDir(h.Set.Exec), p.HookDir(h.Test.Exec))
	}
	q, _ := Parse([]byte(doc))
	if q.Dir() != "" || q.HookDir(h.Set.Exec) != "sub" {
		t.Errorf("Parse: Dir %q, HookDir %q", q.Dir(), q.HookDir(h.Set.Exec))
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(item("  - name: a\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(bad); err == nil || !strings.HasPrefix(err.Error(), bad+`: plan: item "a": has neither`) {
		t.Errorf("ParseFile(bad) err = %v", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "missing.yaml")+": no such file") {
		t.Errorf("ParseFile(missing) err = %v", err)
	}
}

func TestItemHelpers(t *testing.T) {
	it := &Item{Name: "a", Secret: &SecretSpec{Name: "s",
		Generate:    []GenerateKey{{Key: "G", Spec: "uuid"}},
		URLPassword: &URLPassword{Keys: []string{"U1", "U2"}},
		JSONFields:  []JSONField{{Key: "J", Field: "f"}, {Key: "J", Field: "g"}},
		Hashed:      &Hashed{Key: "H", Deliver: "secret:t:k"},
	}}
	if got := strings.Join(it.Keys(), ","); got != "G,U1,U2,J,H" {
		t.Errorf("Keys() = %s", got)
	}
	if it.Namespace("def") != "def" || it.SecretName() != "s" {
		t.Errorf("Namespace/SecretName = %s/%s", it.Namespace("def"), it.SecretName())
	}
	it.Secret.Namespace = "own"
	if it.Namespace("def") != "own" {
		t.Errorf("Namespace = %s", it.Namespace("def"))
	}
	if (&Item{}).SecretName() != "" || (&Item{}).Keys() != nil {
		t.Error("empty item")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/diracx-all.yaml", "testdata/puppet-reencrypt.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(item(okItem + "    after: [b]\n  - name: b\n    jwks: {secret: j, layout: slurm}\n")))
	f.Add([]byte(item(okItem + "    hooks: {set: {job: {template: {template: {spec: {containers: [&c {name: c, image: i}]}}}}}}\n")))
	f.Add([]byte("spec:\n  items:\n  - {name: a, after: [a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		order, err := p.Order()
		if err != nil {
			t.Fatalf("valid plan cannot be ordered: %v", err)
		}
		if len(order) != len(p.Spec.Items) {
			t.Fatalf("Order() has %d items, the plan %d", len(order), len(p.Spec.Items))
		}
		done := map[string]bool{}
		for _, it := range order {
			for _, a := range it.After {
				if !done[a] {
					t.Fatalf("item %q ordered before %q, which it is after", it.Name, a)
				}
			}
			done[it.Name] = true
			if it.SecretName() == "" {
				t.Fatalf("item %q changes no Secret", it.Name)
			}
		}
		if _, err := p.Phases(); err != nil {
			t.Fatalf("Phases: %v", err)
		}
		if len(p.Fingerprint()) != 64 {
			t.Fatal("bad fingerprint")
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Validate after Parse: %v", err)
		}
	})
}
