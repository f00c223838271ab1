// Interoperability check between jwe-webhook and the jose npm package
// (github.com/panva/jose). cmd/jwe-encrypt's TestInteropJose runs it as
//
//     node test/interop/interop.mjs < requests.json > results.json
//
// Standard input is a JSON array of requests; standard output is a JSON array
// of results, one per request, in order. Keys are PEM: PKCS#8 private keys,
// SPKI public keys.
//
//   {"op": "decrypt", "jwe": "…", "key": PEM, "alg": "RSA-OAEP-256"}
//     → {"plaintext": "…", "protectedHeader": {…}, "unprotectedHeader": {…}}
//     A compact JWE or a JWE JSON serialization (general or flattened).
//   {"op": "encrypt", "serialization": "compact" | "general",
//    "plaintext": "…", "protectedHeader": {…},
//    "recipients": [{"key": PEM, "alg": "…", "kid": "…"}]}
//     → {"jwe": "…"}  (the general serialization as a JSON string)
//     compact: alg and kid join the protected header; general: they go in
//     each recipient's unprotected header.
//   {"op": "thumbprint", "key": PEM, "alg": "…"}
//     → {"kid": "…"}  (RFC 7638, SHA-256)
//
// A request that fails gives {"error": "…"}.

import * as jose from "jose";
import { readFileSync } from "node:fs";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function decrypt({ jwe, key, alg }) {
  const k = await jose.importPKCS8(key, alg);
  const opts = { keyManagementAlgorithms: [alg] };
  const trimmed = jwe.trim();
  const res = trimmed.startsWith("{")
    ? await jose.generalDecrypt(normalize(JSON.parse(trimmed)), k, opts)
    : await jose.compactDecrypt(trimmed, k, opts);
  return {
    plaintext: decoder.decode(res.plaintext),
    protectedHeader: res.protectedHeader ?? {},
    unprotectedHeader: res.unprotectedHeader ?? {},
  };
}

// normalize turns a flattened JSON serialization into the general one.
function normalize(jwe) {
  if (jwe.recipients) return jwe;
  const { header, encrypted_key, ...rest } = jwe;
  return { ...rest, recipients: [{ header, encrypted_key }] };
}

async function encrypt({ serialization, plaintext, protectedHeader, recipients }) {
  const data = encoder.encode(plaintext);
  if (serialization === "compact") {
    const [r] = recipients;
    const key = await jose.importSPKI(r.key, r.alg);
    const jwe = await new jose.CompactEncrypt(data)
      .setProtectedHeader({ ...protectedHeader, alg: r.alg, kid: r.kid })
      .encrypt(key);
    return { jwe };
  }
  const enc = new jose.GeneralEncrypt(data).setProtectedHeader(protectedHeader);
  for (const r of recipients) {
    const key = await jose.importSPKI(r.key, r.alg);
    enc.addRecipient(key).setUnprotectedHeader({ alg: r.alg, kid: r.kid });
  }
  return { jwe: JSON.stringify(await enc.encrypt()) };
}

async function thumbprint({ key, alg }) {
  const jwk = await jose.exportJWK(await jose.importSPKI(key, alg, { extractable: true }));
  return { kid: await jose.calculateJwkThumbprint(jwk, "sha256") };
}

const ops = { decrypt, encrypt, thumbprint };
const requests = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const req of requests) {
  try {
    const op = ops[req.op];
    if (!op) throw new Error(`unknown op ${JSON.stringify(req.op)}`);
    results.push(await op(req));
  } catch (e) {
    results.push({ error: `${e.code ?? e.name}: ${e.message}` });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
