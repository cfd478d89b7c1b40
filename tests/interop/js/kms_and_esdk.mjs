// The AWS SDK for JavaScript v3 (@aws-sdk/client-kms) and the AWS Encryption SDK for
// JavaScript (@aws-crypto/client-node) against a real strict-mode ferrokms, as an application
// uses them: envelope encryption with an encryption context, and the refusals a wrong
// context or a wrong key get. Run by tests/e2e/interop.rs with FERROKMS_ENDPOINT and the
// admin's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set.

import assert from "node:assert/strict";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMS,
  KMSClient,
} from "@aws-sdk/client-kms";
import { CommitmentPolicy, KmsKeyringNode, buildClient, getClient } from "@aws-crypto/client-node";

const config = {
  region: "us-east-1",
  endpoint: process.env.FERROKMS_ENDPOINT,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
};
const kms = new KMSClient(config);

// The SDK: a key, a data key, a ciphertext bound to its context.
const key = (await kms.send(new CreateKeyCommand({ Description: "js interop" }))).KeyMetadata;
const other = (await kms.send(new CreateKeyCommand({ Description: "js interop, other" }))).KeyMetadata;
const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }));
assert.equal(dataKey.Plaintext.length, 32);
const context = { tenant: "acme" };
const sealed = await kms.send(
  new EncryptCommand({ KeyId: key.Arn, Plaintext: new TextEncoder().encode("hello from js"), EncryptionContext: context }),
);
const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context }));
assert.equal(new TextDecoder().decode(opened.Plaintext), "hello from js");
assert.equal(opened.KeyId, key.Arn);
// A wrong context: AWS's error, as the SDK names it.
await assert.rejects(
  kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { tenant: "evil" } })),
  (e) => e.name === "InvalidCiphertextException" && e.$metadata.httpStatusCode === 400,
);

// The Encryption SDK: a message under a keyring of the key, decrypted by the same keyring.
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
// The keyring calls the aggregated client's methods (kms.generateDataKey(...)).
const clientProvider = getClient(KMS, config);
const keyring = new KmsKeyringNode({ generatorKeyId: key.Arn, clientProvider });
const message = "a secret the Encryption SDK for JavaScript keeps";
const { result } = await encrypt(keyring, message, { encryptionContext: { purpose: "interop" } });
const { plaintext, messageHeader } = await decrypt(keyring, result);
assert.equal(plaintext.toString(), message);
assert.equal(messageHeader.encryptionContext.purpose, "interop");
// A keyring of another key cannot open it.
const wrong = new KmsKeyringNode({ generatorKeyId: other.Arn, clientProvider });
await assert.rejects(decrypt(wrong, result));

console.log("javascript interop: ok");
