// jwks.mjs signs and verifies JWTs with a JWKS file the way an upstream
// system does, using panva's jose 4 as Debian packages it (node-jose) and
// nothing of kube-rotate. e2e/jose runs it with
// `node --input-type=module --eval`; by hand, from the repository:
//
//   node e2e/jose/testdata/jwks.mjs < request.json
//
// The request names jose's ES module entry point by file URL (there is no
// node_modules to resolve a bare 'jose' from):
//
//   {"op": "sign", "jose": "file:///usr/share/nodejs/jose/dist/node/esm/index.js",
//    "rule": "diracx"|"slurm", "jwks": "/path/to/set.json"}
//     -> {"kid", "index", "alg", "header_alg", "token"}
//   {"op": "verify", "jose": ..., "rule": ..., "jwks": ..., "tokens": ["..."]}
//     -> {"results": [{"kid", "ok", "reason"?}]}
//
// The rules pick the signing key as upstream's own code does:
//   diracx: DIRACGrid/diracx, diracx-logic/src/diracx/logic/auth/token.py
//           create_token: the first key whose key_ops hold "sign"; header
//           {"alg": that key's alg, "kid"}; none: "No signing key found in JWKS".
//           Verification (joserfc): the key whose kid is the header's, whose
//           alg (key.check_alg) is the header's.
//   slurm:  SchedMD/slurm, src/plugins/auth/slurm/internal.c: the key whose
//           "use" is "default" (case-insensitive; two are fatal), else the
//           first; HS256; kid in the header. Verification: the key whose kid
//           is the header's (none: the default key); a key whose "exp" has
//           passed rejects its tokens.
//
// "alg" is the alg the upstream system puts in the header; "header_alg" is
// the one in the token jose wrote. They differ in one case only: jose 4 has
// no JWS alg "Ed25519", RFC 9864's fully specified name for EdDSA over the
// Ed25519 curve, which DiracX keys and tokens carry. For a key whose alg is
// "Ed25519" (it must be kty OKP, crv Ed25519) jose signs and verifies with
// "EdDSA", the same signature (RFC 8037), so such a token's header says
// "EdDSA". Verification takes both spellings in the header for a key on
// Ed25519 whose alg is either; jose 4 can check only "EdDSA" ones (a token
// whose header says "Ed25519" is refused, with that reason).
//
// Output is JSON on stdout; errors are one line on stderr, exit 1, or exit 3
// when the rule finds no signing key. Nothing printed ever holds key
// material: keys are named by index and kid only.

import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

// jose's exports, imported in main from the request's "jose" URL.
let jose;

const EXIT_NO_SIGNING_KEY = 3;

class Fail extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const name = (key, i) => `key ${i} (kid ${JSON.stringify(key?.kid)})`;
const now = () => Math.floor(Date.now() / 1000);

// The members of a private or public JWK jose needs, by key type: nothing
// else of the file's key is handed over.
const MEMBERS = {
  OKP: { pub: ['crv', 'x'], priv: ['d'] },
  EC: { pub: ['crv', 'x', 'y'], priv: ['d'] },
  RSA: { pub: ['n', 'e'], priv: ['d', 'p', 'q', 'dp', 'dq', 'qi'] },
};

function asymmetric(key, i, { priv }) {
  const m = MEMBERS[key.kty];
  if (!m) throw new Fail(`${name(key, i)}: kty ${JSON.stringify(key.kty)} is not an asymmetric key type jose signs with here`);
  const jwk = { kty: key.kty };
  for (const member of priv ? [...m.pub, ...m.priv] : m.pub) {
    if (key[member] !== undefined) jwk[member] = key[member];
  }
  return jwk;
}

// RFC 9864: "Ed25519" is EdDSA (RFC 8037) over the Ed25519 curve, spelled
// as one fully specified alg. jose 4 has only "EdDSA" (which takes Ed448
// keys too), so for a key whose alg is "Ed25519" it is told "EdDSA" once the
// key is checked to be on Ed25519. Returns the alg jose signs and verifies
// with for the key.
function joseAlg(key, i) {
  if (key.alg !== 'Ed25519') return key.alg;
  if (key.kty !== 'OKP' || key.crv !== 'Ed25519') {
    throw new Fail(`${name(key, i)}: alg Ed25519 (RFC 9864) needs kty OKP and crv Ed25519, the key has kty ${JSON.stringify(key.kty)} crv ${JSON.stringify(key.crv)}`);
  }
  return 'EdDSA';
}

// An Ed25519 key under either spelling of its alg: a header may say either.
const isEd25519 = (key) => (key.alg === 'Ed25519' || key.alg === 'EdDSA') && key.kty === 'OKP' && key.crv === 'Ed25519';

// usable throws unless jose accepts the (imported) key for alg. jose 4's
// importJWK does not look at alg for RSA, EC and OKP keys, so jose is asked
// to verify a JWS with an empty signature: it checks the key's type (and an
// RSA key's size) against alg first, and only a key it accepts gets as far
// as "signature verification failed".
async function usable(keyObject, alg) {
  const jws = { protected: Buffer.from(JSON.stringify({ alg })).toString('base64url'), payload: '', signature: '' };
  try {
    await jose.flattenedVerify(jws, keyObject, { algorithms: [alg] });
  } catch (e) {
    if (e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return;
    throw e;
  }
  throw new Error('jose verified an empty signature');
}

// DiracX: diracx-core settings, token_allowed_algorithms.
const DIRACX_ALGORITHMS = ['RS256', 'EdDSA', 'Ed25519'];

const diracx = {
  async load(keys) {
    // joserfc's KeySet.import_key_set imports every key: each published
    // key must be a public key jose can import and use for its alg.
    for (const [i, key] of keys.entries()) {
      if (typeof key !== 'object' || key === null || Array.isArray(key)) throw new Fail(`key ${i} is not a JSON object`);
      if (key.key_ops !== undefined && !(Array.isArray(key.key_ops) && key.key_ops.every((o) => typeof o === 'string'))) {
        throw new Fail(`${name(key, i)}: key_ops is not a list of strings`);
      }
      if (typeof key.alg !== 'string') continue;
      const alg = joseAlg(key, i);
      try {
        await usable(await jose.importJWK(asymmetric(key, i, { priv: false }), alg), alg);
      } catch (e) {
        if (e instanceof Fail) throw e;
        throw new Fail(`${name(key, i)}: jose cannot use its public key for alg ${key.alg}${alg === key.alg ? '' : ` (jose: ${alg})`}: ${e.message}`);
      }
    }
  },
  signer(keys) {
    const i = keys.findIndex((k) => Array.isArray(k.key_ops) && k.key_ops.includes('sign'));
    if (i < 0) {
      throw new Fail('no signing key: no key has "sign" in key_ops (DiracX create_token: "No signing key found in JWKS")', EXIT_NO_SIGNING_KEY);
    }
    return i;
  },
  signing(key, i) {
    const alg = key.alg;
    if (typeof alg !== 'string') throw new Fail(`${name(key, i)}: the signing key has no "alg": DiracX puts the key's alg in the header`);
    if (!DIRACX_ALGORITHMS.includes(alg)) throw new Fail(`${name(key, i)}: alg ${JSON.stringify(alg)} is not one DiracX allows (${DIRACX_ALGORITHMS.join(', ')})`);
    const signAlg = joseAlg(key, i);
    return { alg, joseAlg: signAlg, header: { alg: signAlg, kid: key.kid }, jwk: asymmetric(key, i, { priv: true }) };
  },
  claims(t) {
    return {
      sub: 'e2e:jose', vo: 'e2e', iss: 'https://diracx.invalid', jti: randomUUID(),
      dirac_group: 'e2e_user', dirac_properties: ['NormalUser'], dirac_policies: {},
      preferred_username: 'e2e', iat: t, exp: t + 20 * 60,
    };
  },
  verifying(keys, header) {
    // joserfc KeySet.get_by_kid: no kid only works with a single key.
    let i;
    if (header.kid === undefined) {
      if (keys.length !== 1) return { reason: 'token has no kid and the set has more than one key' };
      i = 0;
    } else {
      i = keys.findIndex((k) => k.kid === header.kid);
      if (i < 0) return { reason: `no key for kid ${JSON.stringify(header.kid)}` };
    }
    const key = keys[i];
    if (Array.isArray(key.key_ops) && !key.key_ops.includes('verify')) return { reason: `${name(key, i)}: key_ops lack "verify"` };
    if (typeof key.alg !== 'string') return { reason: `${name(key, i)}: no "alg"` };
    // joserfc key.check_alg: the header's alg is the key's; for a key on
    // Ed25519 both spellings name the same signature (RFC 9864).
    const spellings = isEd25519(key) ? ['Ed25519', 'EdDSA'] : [key.alg];
    if (!spellings.includes(header.alg)) return { reason: `${name(key, i)}: the token's alg ${JSON.stringify(header.alg)} is not the key's alg ${key.alg}` };
    if (header.alg === 'Ed25519') return { reason: 'jose 4 has no JWS alg "Ed25519" (RFC 9864) and cannot check this token: its own tokens for Ed25519 keys say "EdDSA"' };
    return { jwk: asymmetric(key, i, { priv: false }), alg: joseAlg(key, i), algorithms: DIRACX_ALGORITHMS };
  },
};

// Slurm's "k": base64 or base64url, padded or not. Slurm turns base64url
// into base64 (xbase64_from_base64url) and decodes that; both alphabets
// give the same bytes. Returns the bytes, or null if it is neither.
function slurmSecret(k) {
  const std = k.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(std) || std.length % 4 === 1) return null;
  return Buffer.from(std, 'base64');
}

const slurm = {
  // internal.c _build_key_list and _read_keys_file: any of these is fatal
  // to slurmctld, so the whole set is refused.
  async load(keys) {
    const seen = new Set();
    let defaults = 0;
    for (const [i, key] of keys.entries()) {
      if (typeof key !== 'object' || key === null || Array.isArray(key)) throw new Fail(`key ${i} is not a JSON object`);
      if (typeof key.kid !== 'string') throw new Fail(`key ${i}: no "kid" (Slurm: failed to load kid field)`);
      if (seen.has(key.kid)) throw new Fail(`${name(key, i)}: kid fields must be unique`);
      seen.add(key.kid);
      if (typeof key.kty !== 'string' || key.kty.toLowerCase() !== 'oct') throw new Fail(`${name(key, i)}: kty field must be oct`);
      if (typeof key.alg !== 'string' || key.alg.toUpperCase() !== 'HS256') throw new Fail(`${name(key, i)}: alg field must be HS256`);
      if (typeof key.k !== 'string') throw new Fail(`${name(key, i)}: failed to load key field`);
      const secret = slurmSecret(key.k);
      if (secret === null) throw new Fail(`${name(key, i)}: "k" is neither base64 nor base64url`);
      if (secret.length < 16) throw new Fail(`${name(key, i)}: key lacks sufficient entropy (${secret.length} bytes, Slurm needs 16)`);
      if (typeof key.use === 'string' && key.use.toLowerCase() === 'default' && ++defaults > 1) {
        throw new Fail(`${name(key, i)}: multiple default keys defined`);
      }
      if (key.exp !== undefined && slurmExp(key.exp) === null) throw new Fail(`${name(key, i)}: invalid value for exp`);
    }
    if (keys.length === 0) throw new Fail('the set has no keys: Slurm has no default key');
  },
  signer(keys) {
    const i = keys.findIndex((k) => typeof k.use === 'string' && k.use.toLowerCase() === 'default');
    return i >= 0 ? i : 0;
  },
  signing(key) {
    return { alg: 'HS256', joseAlg: 'HS256', header: { alg: 'HS256', typ: 'JWT', kid: key.kid }, jwk: slurmJWK(key) };
  },
  claims(t) {
    // create_internal's grants; the lifetime (AuthInfo ttl, 60 s by
    // default) is longer here so tokens outlive a whole test.
    return { iat: t, exp: t + 10 * 60, ver: 0, ruid: 4294967295, context: 'auth', uid: 0, gid: 0, host: 'e2e' };
  },
  verifying(keys, header) {
    let i;
    if (header.kid === undefined) {
      i = slurm.signer(keys);
    } else {
      i = keys.findIndex((k) => k.kid === header.kid);
      if (i < 0) return { reason: `could not find kid=${header.kid}` };
    }
    const key = keys[i];
    const exp = key.exp === undefined ? 0 : slurmExp(key.exp);
    if (exp && exp < now()) return { reason: `token received for expired key kid=${key.kid}` };
    if (typeof header.alg !== 'string' || header.alg.toUpperCase() !== 'HS256') return { reason: `no support for alg=${header.alg}` };
    return { jwk: slurmJWK(key), alg: 'HS256', algorithms: ['HS256'] };
  },
};

// data_get_int_converted: an integer, or a string holding one.
function slurmExp(v) {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  return null;
}

// The key as jose takes it: base64url "k", "alg" in jose's case, and none of
// Slurm's "use":"default" (jose only knows "sig"/"enc").
function slurmJWK(key) {
  return { kty: 'oct', k: slurmSecret(key.k).toString('base64url'), alg: 'HS256' };
}

const RULES = { diracx, slurm };

function readSet(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Fail(`reading ${path}: ${e.code ?? e.message}`);
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: keep it out.
    throw new Fail(`${path} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.keys)) throw new Fail(`${path} has no "keys" list: not a JWKS`);
  return doc.keys;
}

async function sign(rule, keys) {
  const i = rule.signer(keys);
  const key = keys[i];
  const { alg, joseAlg: signAlg, header, jwk } = rule.signing(key, i);
  try {
    const token = await new jose.SignJWT(rule.claims(now())).setProtectedHeader(header).sign(await jose.importJWK(jwk, signAlg));
    return { kid: key.kid, index: i, alg, header_alg: jose.decodeProtectedHeader(token).alg, token };
  } catch (e) {
    throw new Fail(`${name(key, i)}: jose cannot sign with it (alg ${alg}${signAlg === alg ? '' : `, jose: ${signAlg}`}): ${e.message}`);
  }
}

async function verify(rule, keys, tokens) {
  const results = [];
  for (const token of tokens) {
    let header;
    try {
      header = jose.decodeProtectedHeader(token);
    } catch (e) {
      results.push({ ok: false, reason: `not a JWS: ${e.message}` });
      continue;
    }
    const r = { kid: header.kid };
    const found = rule.verifying(keys, header);
    if (found.reason) {
      results.push({ ...r, ok: false, reason: found.reason });
      continue;
    }
    try {
      await jose.jwtVerify(token, await jose.importJWK(found.jwk, found.alg), { algorithms: found.algorithms });
      results.push({ ...r, ok: true });
    } catch (e) {
      results.push({ ...r, ok: false, reason: `jose: ${e.code ?? e.name}: ${e.message}` });
    }
  }
  return { results };
}

async function main() {
  let req;
  try {
    req = JSON.parse(readFileSync(0, 'utf8'));
  } catch {
    throw new Fail('the request on stdin is not valid JSON');
  }
  const { op } = req;
  if (op !== 'sign' && op !== 'verify') throw new Fail(`"op" must be sign or verify (got ${JSON.stringify(op)})`);
  if (typeof req.jose !== 'string' || !req.jose.startsWith('file:')) throw new Fail('the request names no "jose": the file URL of jose\'s ES module entry point');
  try {
    jose = await import(req.jose);
  } catch (e) {
    throw new Fail(`importing jose from ${req.jose}: ${e.code ?? e.name}: ${e.message}`);
  }
  const rule = RULES[req.rule];
  if (!rule) throw new Fail(`rule ${JSON.stringify(req.rule)} is not known: use ${Object.keys(RULES).join(' or ')}`);
  if (typeof req.jwks !== 'string') throw new Fail('the request names no "jwks" file');
  const keys = readSet(req.jwks);
  await rule.load(keys);
  if (op === 'sign') return sign(rule, keys);
  if (!Array.isArray(req.tokens)) throw new Fail('verify needs "tokens": a list of JWTs');
  return verify(rule, keys, req.tokens);
}

try {
  process.stdout.write(JSON.stringify(await main()) + '\n');
} catch (e) {
  const line = e instanceof Fail ? e.message : `internal error: ${e?.name}: ${e?.message}`;
  process.stderr.write(`jwks.mjs: ${line.replace(/\s+/g, ' ')}\n`);
  process.exitCode = e instanceof Fail ? e.exitCode : 1;
}
