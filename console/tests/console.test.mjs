// The console in a real browser (Debian's Chromium, driven by playwright-core) against a real
// strict-mode ferrokms, started by tests/e2e/console.rs, which passes in:
//   FERROKMS_ENDPOINT       http://127.0.0.1:PORT
//   ADMIN_KEY, ADMIN_SECRET the admin's access key pair
//   BOB_KEY, BOB_SECRET     a second user, whose IAM policy allows kms:*
//   CAROL_KEY, CAROL_SECRET a third user, who may only assume ROLE_ARN
//   ROLE_ARN                a role allowed kms:Describe*, kms:List* and kms:Get*
//   SCRATCH_KEY             a key the admin made, for the policy checks, grants and rotation
//   SCREENSHOTS             where to write a screenshot of each step
// Run alone: node --test console/tests/ (with those set).

import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { GenerateMacCommand, KMSClient, PutKeyPolicyCommand } from "@aws-sdk/client-kms";
import { createHmac, randomBytes } from "node:crypto";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/e2e/console.rs sets it)`);
  return v;
};

const endpoint = env("FERROKMS_ENDPOINT");
const admin = { key: env("ADMIN_KEY"), secret: env("ADMIN_SECRET") };
const bob = { key: env("BOB_KEY"), secret: env("BOB_SECRET") };
const carol = { key: env("CAROL_KEY"), secret: env("CAROL_SECRET") };
const roleArn = env("ROLE_ARN");
const scratchKey = env("SCRATCH_KEY");
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

let step = 0;
const FILLED_STEPS = new Set(["policy-diff"]);
async function shot(page, name) {
  const shifts = await shiftsSince(page);
  appendFileSync(join(shots, "layout-shifts.txt"), `${name} ${JSON.stringify(shifts)}\n`);
  // Readable at 1280 px: nothing wider than the window.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name}: the page is ${overflow} px wider than the window`);
  // Nothing moves once it shows. (In the policy step the test types with fill(), which the
  // browser does not count as input, and the findings under the editor grow and shrink
  // with the text, as they do for a person typing, when they do count.)
  if (!FILLED_STEPS.has(name)) {
    const total = shifts.reduce((n, s) => n + s.value, 0);
    assert.ok(total < 0.01, `layout shifts before ${name}: ${JSON.stringify(shifts)}`);
  }
  step += 1;
  await page.screenshot({ path: join(shots, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
}

/** The layout shifts since the last look, which none of the person's input caused. */
async function shiftsSince(page) {
  return page.evaluate(() => {
    const s = window.__shifts ?? [];
    window.__shifts = [];
    return s;
  });
}

async function signIn(page, who) {
  await page.goto(`${endpoint}/console/`);
  // By keyboard only: the first field has focus, Tab moves on, Enter submits.
  await page.getByLabel("Access key ID").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "accessKeyId");
  await page.keyboard.type(who.key);
  await page.keyboard.press("Tab");
  await page.keyboard.type(who.secret);
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

// Policies the editor must judge as the server does: each refused one with the server's
// code and message first, each accepted one with no refusal. Statement 0 keeps the admin in.
const ROOT = { Effect: "Allow", Principal: { AWS: "arn:aws:iam::111122223333:root" }, Action: "kms:*", Resource: "*" };
const withRoot = (...more) => JSON.stringify({ Version: "2012-10-17", Statement: [ROOT, ...more] });
const allow = (extra) => ({ Effect: "Allow", Principal: { AWS: "111122223333" }, Action: "kms:Decrypt", Resource: "*", ...extra });
const POLICY_CASES = [
  "{",
  "[]",
  JSON.stringify({ Version: "2012-10-17" }),
  JSON.stringify({ Statement: "x" }),
  withRoot("x"),
  withRoot({ Principal: "*", Action: "kms:*" }),
  withRoot({ Effect: "Permit", Principal: "*", Action: "kms:*" }),
  withRoot(allow({ Principal: { Federated: "cognito-identity.amazonaws.com" } })),
  withRoot(allow({ Principal: { Federated: "x", AWS: "111122223333" } })),
  withRoot(allow({ Principal: { Someone: "x" } })),
  withRoot(allow({ Principal: { AWS: ["*", "not-a-principal"] } })),
  withRoot(allow({ Principal: { AWS: "arn:aws:iam::1111222233:root" } })),
  withRoot(allow({ Principal: { AWS: "arn:aws:iam::111122223333:user/a*" } })),
  withRoot(allow({ Principal: { AWS: [] } })),
  withRoot(allow({ Principal: { AWS: [{}] } })),
  withRoot(allow({ Principal: { Service: "logs.amazonaws.com" } })),
  withRoot(allow({ Principal: undefined })),
  withRoot(allow({ NotPrincipal: { AWS: "111122223333" } })),
  withRoot(allow({ Action: undefined })),
  withRoot(allow({ NotAction: "kms:Encrypt" })),
  withRoot(allow({ Action: [] })),
  withRoot(allow({ Action: 5 })),
  withRoot(allow({ Action: null })),
  withRoot(allow({ Action: ["kms:Decrypt", ["kms:Encrypt"]] })),
  withRoot(allow({ NotResource: "*" })),
  withRoot(allow({ Resource: undefined })),
  withRoot(allow({ Condition: [] })),
  withRoot(allow({ Condition: { StringEqualz: { "kms:CallerAccount": "111122223333" } } })),
  withRoot(allow({ Condition: { Zzz: { a: "b" }, Abc: { a: "b" } } })),
  withRoot(allow({ Condition: { "ForAnyValue:StringLikeIfExists": { "kms:EncryptionContextKeys": "tenant*" } } })),
  withRoot(allow({ Condition: { NullIfExists: { "kms:GrantIsForAWSResource": "true" } } })),
  withRoot(allow({ Condition: { Null: { "kms:GrantIsForAWSResource": true } } })),
  withRoot(allow({ Condition: { StringEquals: "kms:CallerAccount" } })),
  withRoot(allow({ Condition: { StringEquals: { "kms:CallerAccount": { a: 1 } } } })),
  withRoot(allow({ Condition: { StringEquals: { "kms:CallerAccount": [] } } })),
  withRoot(allow({ Condition: { StringEquals: { "kms:ViaService": "${aws:username}.amazonaws.com" } } })),
  withRoot(allow({ Condition: { "ForAllValues:StringEquals": { "kms:EncryptionContext:Tenant": "acme" } } })),
  withRoot(allow({ Condition: { "ForAllValues:StringEquals": { "aws:RequestTag/Team": "a" } } })),
  withRoot(allow({ Condition: { "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": "tenant" } } })),
  // The server reads every statement's grammar before its other checks.
  withRoot(allow({ Condition: { StringEquals: { "kms:ViaService": "${x}" } } }), { Principal: "*", Action: "kms:*" }),
  withRoot(allow({ Condition: { StringEquals: { "kms:ViaService": [] } } }), allow({ Action: [] })),
  withRoot(allow({ Sid: "extra", Comment: "not an element" })),
  // Numbers, escapes and nesting as the server's JSON reader takes them (3 levels above Sid).
  withRoot(allow({ Principal: { AWS: 111122223333 } })),
  withRoot(allow({ Principal: { AWS: "__N__" } })).replace('"__N__"', "111122223333.0"),
  withRoot(allow({ Principal: { AWS: "__N__" } })).replace('"__N__"', "1.11122223333e11"),
  withRoot(allow({ Action: "__N__" })).replace('"__N__"', "1e400"),
  withRoot(allow({ Sid: "__S__" })).replace("__S__", "\\ud800"),
  withRoot(allow({ Sid: "__S__" })).replace("__S__", "\\ud83d\\ude00"),
  withRoot(allow({ Sid: "__D__" })).replace('"__D__"', "[".repeat(124) + "]".repeat(124)),
  withRoot(allow({ Sid: "__D__" })).replace('"__D__"', "[".repeat(125) + "]".repeat(125)),
  // Members in the order of their UTF-8 bytes, beyond the Basic Multilingual Plane too.
  withRoot(allow({ Condition: { "\u{1F600}": { a: "b" }, "\uFF01": { a: "b" } } })),
  withRoot(allow({ Condition: { StringEquals: { "\u{1F600}": [], "\uFF01": [] } } })),
  "",
];

/** The admin as a client of its own, beside the browser. */
const adminClient = () =>
  new KMSClient({
    region: "us-east-1",
    endpoint,
    credentials: { accessKeyId: admin.key, secretAccessKey: admin.secret },
    maxAttempts: 8,
    retryMode: "adaptive",
  });

async function policyChecksAgreeWithTheServer(page, editor) {
  const client = adminClient();
  let refusals = 0;
  for (const policy of POLICY_CASES) {
    await editor.fill(policy);
    const consoleSays = (await page.locator(".findings li.refused").allInnerTexts()).map((t) => t.replace(/^Refused: /, ""));
    let serverSays = null;
    try {
      await client.send(
        new PutKeyPolicyCommand({ KeyId: scratchKey, PolicyName: "default", Policy: policy, BypassPolicyLockoutSafetyCheck: true }),
      );
    } catch (e) {
      serverSays = `${e.name}: ${e.message}`;
    }
    if (serverSays === null) {
      assert.deepEqual(consoleSays, [], `the server took ${policy}`);
    } else {
      refusals += 1;
      assert.ok(consoleSays.length > 0, `the console took ${policy}, which the server refused: ${serverSays}`);
      assert.ok(consoleSays[0].startsWith(serverSays), `${policy}\n console: ${consoleSays[0]}\n server:  ${serverSays}`);
    }
  }
  assert.ok(refusals > 20 && refusals < POLICY_CASES.length - 5, `${refusals} of ${POLICY_CASES.length} refused`);

  // A stored policy JavaScript cannot hold exactly is shown as stored, not rounded.
  const big = withRoot(allow({ Condition: { NumericEquals: { "kms:X": "__B__" } } })).replace('"__B__"', "12345678901234567890");
  await client.send(new PutKeyPolicyCommand({ KeyId: scratchKey, PolicyName: "default", Policy: big }));
  const back = page.url();
  await page.goto(`${endpoint}/console/#/keys/${scratchKey}/policy`);
  await page.waitForFunction(() => document.querySelector("textarea[aria-label='Key policy JSON']")?.value.includes("kms:X"));
  assert.equal(await editor.inputValue(), big);
  await page.goto(back);
  await page.waitForFunction(() => document.querySelector("textarea[aria-label='Key policy JSON']")?.value.includes("Statement"));
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Access key ID").waitFor();
}

test("a security engineer's day in the console", async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // CI runs this beside the rest of the suite on two cores: a slow step is not a failure.
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  // Layout shifts (the Layout Instability API) that no input of the person caused, for
  // "nothing moves once it shows".
  await context.addInitScript(() => {
    window.__shifts = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (!e.hadRecentInput) {
          window.__shifts.push({ value: e.value, at: location.hash, what: e.sources.map((s) => s.node?.nodeName + "." + (s.node?.className ?? "")).join(" ") });
        }
      }
    }).observe({ type: "layout-shift", buffered: true });
  });
  const page = await context.newPage();
  // Anything the CSP refuses, or any script error, fails the test.
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const apiAnswers = [];
  page.on("response", (r) => {
    if (r.request().method() === "POST") apiAnswers.push({ url: r.url(), cache: r.headers()["cache-control"] });
  });
  const requestHeaders = [];
  page.on("request", (r) => requestHeaders.push(r.headers()));
  // What the browser sent: URL, headers and body, to look for secrets in.
  const requestBodies = [];
  page.on("request", (r) => requestBodies.push(`${r.url()}\n${JSON.stringify(r.headers())}\n${r.postData() ?? ""}`));

  try {
    // The page and its headers.
    const first = await page.goto(`${endpoint}/console/`);
    const h = first.headers();
    assert.match(h["content-security-policy"], /script-src 'self'/);
    assert.match(h["content-security-policy"], /frame-ancestors 'none'/);
    assert.doesNotMatch(h["content-security-policy"], /unsafe-inline|unsafe-eval/);
    assert.equal(h["x-frame-options"], "DENY");
    await shot(page, "sign-in");

    // 1. The admin signs in; the secret stays in session storage only.
    await signIn(page, admin);
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.getByText("user/admin").waitFor();
    await page.locator(".results:not([aria-busy])").waitFor();
    const storage = await page.evaluate(() => ({
      session: sessionStorage.getItem("ferrokms-console-session") ?? "",
      local: localStorage.length,
      cookie: document.cookie,
    }));
    assert.ok(storage.session.includes(admin.key), "the session is in session storage");
    assert.equal(storage.local, 0, "nothing in local storage");
    assert.equal(storage.cookie, "", "no cookie");
    await shot(page, "keys-empty");

    // 2. Create a key with an alias and a tag.
    await page.getByRole("link", { name: "Create key" }).first().click();
    await page.getByLabel("Description").fill("payments key (console test)");
    await page.getByLabel("Alias (optional)").fill("alias/console-payments");
    await page.getByLabel("Tags").fill("team=payments");
    await shot(page, "create-key");
    await page.getByRole("button", { name: "Create key" }).click();
    const keyIdCell = page.locator("[data-key-id]");
    await keyIdCell.waitFor();
    const keyId = await keyIdCell.getAttribute("data-key-id");
    assert.match(keyId, /^[0-9a-f-]{36}$/);
    await page.getByText("alias/console-payments").first().waitFor();
    await page.getByRole("cell", { name: "team", exact: true }).waitFor();

    // 3. Add a second alias on the key's page.
    await page.getByLabel("Alias name").fill("alias/console-second");
    await page.getByRole("button", { name: "Add alias" }).click();
    await page.getByRole("cell", { name: "alias/console-second", exact: true }).waitFor();
    await shot(page, "key-detail");

    // The keys list finds it by alias, tag and spec.
    await page.goto(`${endpoint}/console/#/keys?alias=console-pay&tag=team%3Dpayments&spec=SYMMETRIC_DEFAULT`);
    await page.getByRole("link", { name: keyId }).waitFor();
    // Paging: the tagged batch fills one page and starts another; Previous comes back.
    const batch = Number(env("PAGING_KEYS"));
    await page.goto(`${endpoint}/console/#/keys?tag=batch%3Dpaging`);
    await page.getByText("25 shown").waitFor();
    const firstPage = await page.locator("tbody tr td:first-child").allInnerTexts();
    await page.getByRole("link", { name: "Next →" }).click();
    await page.getByText(`${batch - 25} shown`).waitFor();
    const secondPage = await page.locator("tbody tr td:first-child").allInnerTexts();
    assert.equal(new Set([...firstPage, ...secondPage]).size, batch, "every key once");
    assert.equal(await page.getByRole("link", { name: "Next →" }).count(), 0);
    await page.getByRole("link", { name: "← Previous" }).click();
    await page.getByText("25 shown").waitFor();
    assert.deepEqual(await page.locator("tbody tr td:first-child").allInnerTexts(), firstPage);
    await page.goto(`${endpoint}/console/#/keys?tag=team%3Dnobody`);
    await page.getByText("0 shown").waitFor();
    assert.equal(await page.getByRole("link", { name: keyId }).count(), 0);

    // 4. Edit the policy so that only the admin may use the key.
    await page.goto(`${endpoint}/console/#/keys/${keyId}/policy`);
    const editor = page.getByLabel("Key policy JSON");
    await editor.waitFor();
    const stored = JSON.parse(await editor.inputValue());
    assert.ok(JSON.stringify(stored).includes(":root"), "the default policy names the account");
    // A policy naming only bob: the lockout warning shows.
    const bobOnly = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: "arn:aws:iam::111122223333:user/bob" }, Action: "kms:*", Resource: "*" }],
    };
    await editor.fill(JSON.stringify(bobOnly, null, 2));
    await page.getByRole("button", { name: "Review changes" }).click();
    await page.getByText("Lockout warning").waitFor();
    await shot(page, "policy-lockout-warning");
    // Allowed by one statement and denied by another: still a lockout.
    const deniedToo = {
      Version: "2012-10-17",
      Statement: [
        stored.Statement[0],
        { Effect: "Deny", Principal: "*", Action: "kms:PutKeyPolicy", Resource: "*" },
      ],
    };
    await editor.fill(JSON.stringify(deniedToo, null, 2));
    await page.getByRole("button", { name: "Review changes" }).click();
    await page.getByText("Lockout warning").waitFor();
    await page.getByLabel("Bypass the policy lockout safety check").waitFor();
    // A malformed one: the editor says so before anything is sent.
    await editor.fill('{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "kms:*", "Resource": "*"}]}');
    await page.getByText("invalid principals").first().waitFor();
    await policyChecksAgreeWithTheServer(page, editor);
    const adminOnly = {
      Version: "2012-10-17",
      Statement: [
        { Sid: "AdminOnly", Effect: "Allow", Principal: { AWS: "arn:aws:iam::111122223333:user/admin" }, Action: "kms:*", Resource: "*" },
      ],
    };
    await editor.fill(JSON.stringify(adminOnly, null, 2));
    await page.getByRole("button", { name: "Review changes" }).click();
    const diff = page.getByLabel("Policy diff");
    await diff.waitFor();
    assert.match(await diff.innerText(), /\+ .*AdminOnly/);
    assert.match(await diff.innerText(), /- .*:root/);
    assert.equal(await page.getByText("Lockout warning").count(), 0);
    assert.equal(await page.getByLabel("Bypass the policy lockout safety check").count(), 0, "no bypass without a warning");
    await shot(page, "policy-diff");
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.waitForFunction(() => {
      const t = document.querySelector("textarea[aria-label='Key policy JSON']");
      return t instanceof HTMLTextAreaElement && t.value.includes("AdminOnly") && !t.value.includes(":root");
    });
    await signOut(page);

    // 5. Bob is denied, and sees AWS's error code and message.
    await signIn(page, bob);
    // He may list the key but not describe it: the list says so on its row.
    await page.goto(`${endpoint}/console/#/keys?alias=console-pay`);
    await page.locator("tbody tr", { hasText: keyId }).filter({ hasText: "DescribeKey: AccessDeniedException" }).waitFor();
    await page.goto(`${endpoint}/console/#/keys/${keyId}`);
    const error = page.locator(".error[data-error-code]");
    await error.waitFor();
    assert.equal(await error.getAttribute("data-error-code"), "AccessDeniedException");
    assert.match(await error.innerText(), /user\/bob is not authorized to perform: kms:DescribeKey/);
    await shot(page, "bob-denied");
    // Bob may not read the policy that refused him, so he cannot have it explained either.
    // A link only fills the form in; asking is his click.
    await page.goto(`${endpoint}/console/#/explain?action=kms:DescribeKey&key=${keyId}`);
    assert.equal(await page.getByLabel("Key (optional)").inputValue(), keyId);
    assert.equal(await page.locator(".explain-result > *").count(), 0);
    await page.getByRole("button", { name: "Explain" }).click();
    const refusal = page.locator(".explain-result .error[data-error-code]");
    await refusal.waitFor();
    assert.equal(await refusal.getAttribute("data-error-code"), "AccessDeniedException");
    assert.match(await refusal.innerText(), /kms:GetKeyPolicy/);
    await signOut(page);

    // 6. The admin finds both calls in the audit trail.
    await signIn(page, admin);
    // Bob's calls, filtered on the server by user name.
    await page.goto(`${endpoint}/console/#/audit?user=bob`);
    await page.getByText(/\d+ events/).waitFor();
    assert.equal(await page.locator("tbody tr", { hasText: "admin" }).count(), 0);
    const deniedRow = page
      .locator("tbody tr.failed", { hasText: "DescribeKey" })
      .filter({ hasText: "bob" })
      .filter({ hasText: "AccessDenied" });
    await deniedRow.first().waitFor();
    await page.getByRole("img", { name: "Calls per day" }).waitFor();
    await page.getByRole("img", { name: "Calls per operation" }).waitFor();
    // The charts' figures, as a table the keyboard reaches.
    const opFigures = page.locator("figure", { hasText: "Calls per operation" });
    await opFigures.getByText("Figures").click();
    const describeFigures = opFigures.locator("tbody tr", { hasText: "DescribeKey" }).locator("td");
    assert.ok(Number(await describeFigures.nth(2).innerText()) >= 1, "bob's refused DescribeKey counted as failed");
    await deniedRow.first().getByRole("button").click();
    const record = page.getByLabel("Event record");
    await record.waitFor();
    const json = JSON.parse(await record.innerText());
    assert.equal(json.errorCode, "AccessDeniedException");
    assert.equal(json.eventName, "DescribeKey");
    assert.match(json.userIdentity.arn, /user\/bob$/);
    await shot(page, "audit");
    // "Why was this denied?" from the refused event: the admin sees the decision.
    await page.getByRole("link", { name: "Why was this denied?" }).click();
    const verdict = page.locator(".verdict");
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute("data-allowed"), "false");
    assert.equal(await page.getByLabel("Principal").inputValue(), json.userIdentity.arn);
    const explanation = await page.getByLabel("Explanation").innerText();
    assert.match(explanation, /caller: arn:aws:iam::111122223333:user\/bob/);
    assert.match(explanation, /"AdminOnly" \(Allow\): /);
    assert.match(explanation, /decision: DENIED/);
    await shot(page, "explain");
    // The admin's PutKeyPolicy, filtered on the server by event name.
    await page.goto(`${endpoint}/console/#/audit?event=PutKeyPolicy`);
    await page.getByText(/^\d+ events/).waitFor();
    assert.equal(await page.locator("tbody tr", { hasText: "DescribeKey" }).count(), 0);
    await page.locator("tbody tr", { hasText: "PutKeyPolicy" }).filter({ hasText: "admin" }).first().waitFor();
    // And the whole trail, unfiltered, charts every call.
    await page.goto(`${endpoint}/console/#/audit`);
    await page.getByRole("img", { name: "Calls per operation" }).waitFor();
    await shot(page, "audit-all");

    // 7. Schedule the key's deletion, confirming in the dialog.
    await page.goto(`${endpoint}/console/#/keys/${keyId}`);
    await page.getByLabel("Waiting period (days)").fill("7");
    await page.getByRole("button", { name: "Schedule deletion" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await shot(page, "confirm-deletion");
    await dialog.getByRole("button", { name: "Schedule deletion" }).click();
    await page.locator("h1 .badge", { hasText: "PendingDeletion" }).waitFor();
    await page.getByRole("button", { name: "Cancel deletion" }).waitFor();
    await shot(page, "pending-deletion");

    // The custom key store: connected and disconnected from its page.
    const storeId = env("STORE_ID");
    await page.goto(`${endpoint}/console/#/key-stores`);
    const storeRow = page.locator("tbody tr", { hasText: storeId });
    await storeRow.getByText("DISCONNECTED").waitFor();
    await storeRow.getByRole("button", { name: "Connect console-hsm" }).click();
    await page.locator("tbody tr", { hasText: storeId }).getByText("CONNECTED", { exact: true }).waitFor();
    await shot(page, "key-store-connected");
    await page.locator("tbody tr", { hasText: storeId }).getByRole("button", { name: "Disconnect console-hsm" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disconnect" }).click();
    await page.locator("tbody tr", { hasText: storeId }).getByText("DISCONNECTED").waitFor();

    // The other pages render for the admin without an error.
    for (const [route, heading] of [
      ["#/usage", "Usage and cost"],
      ["#/key-stores", "Custom key stores"],
    ]) {
      await page.goto(`${endpoint}/console/${route}`);
      await page.getByRole("heading", { name: heading }).waitFor();
      await page.locator(".results:not([aria-busy])").waitFor();
      assert.equal(await page.locator(".error").count(), 0, `${route} shows an error`);
      await shot(page, route.replace(/\W/g, ""));
    }
    await page.goto(`${endpoint}/console/#/keys/${keyId}/grants`);
    await page.getByRole("heading", { name: "Create grant" }).waitFor();

    // 8. The scratch key: rotate now, disable (no rotation then) and enable again.
    await page.goto(`${endpoint}/console/#/keys/${scratchKey}`);
    await page.getByRole("button", { name: "Rotate now" }).click();
    await page.locator("table", { has: page.locator("caption", { hasText: "Rotation history" }) })
      .getByRole("cell", { name: "ON_DEMAND" }).waitFor();
    await page.getByRole("button", { name: "Disable key" }).click();
    await page.locator("h1 .badge", { hasText: "Disabled" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Rotate now" }).count(), 0);
    await page.getByText("Only an enabled key can be rotated now.").waitFor();
    await page.getByRole("button", { name: "Enable key" }).click();
    await page.locator("h1 .badge", { hasText: "Enabled" }).waitFor();
    await shot(page, "rotated-key");

    // 9. Grants: one with an encryption context constraint and a source ARN, revoked by the
    // key's manager; one the admin is the retiring principal of, retired.
    await page.goto(`${endpoint}/console/#/keys/${scratchKey}/grants`);
    await page.getByLabel("Grantee principal").fill("arn:aws:iam::111122223333:user/bob");
    await page.getByLabel("Name (optional)").fill("bob-decrypts");
    await page.getByRole("checkbox", { name: "Decrypt", exact: true }).check();
    await page.getByRole("checkbox", { name: "Encrypt", exact: true }).check();
    await page.getByLabel("Encryption context equals").fill("tenant=acme");
    await page.getByLabel("Source ARN (optional)").fill("arn:aws:s3:us-east-1:111122223333:accesspoint/acme");
    await page.getByRole("button", { name: "Create grant" }).click();
    await page.getByText("Grant made:").waitFor();
    const grantRow = page.locator("tbody tr", { hasText: "bob-decrypts" });
    await grantRow.getByText("context equals: tenant=acme; on behalf of arn:aws:s3:us-east-1:111122223333:accesspoint/acme").waitFor();
    await grantRow.getByText("Decrypt, Encrypt").waitFor();
    await shot(page, "grants");
    // A grant with no operation is refused by the server, with its code.
    await page.getByLabel("Grantee principal").fill("arn:aws:iam::111122223333:user/bob");
    await page.getByLabel("Name (optional)").fill("no-operations");
    await page.getByLabel("Encryption context equals").fill("");
    await page.getByLabel("Source ARN (optional)").fill("");
    for (const op of ["Decrypt", "Encrypt"]) await page.getByRole("checkbox", { name: op, exact: true }).uncheck();
    await page.getByRole("button", { name: "Create grant" }).click();
    await page.locator(".status .error[data-error-code='ValidationException']").waitFor();
    await grantRow.getByRole("button", { name: "Revoke grant bob-decrypts" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
    await page.locator("tbody tr", { hasText: "bob-decrypts" }).waitFor({ state: "detached" });
    await page.getByLabel("Grantee principal").fill("arn:aws:iam::111122223333:user/bob");
    await page.getByLabel("Retiring principal (optional)").fill("arn:aws:iam::111122223333:user/admin");
    await page.getByLabel("Name (optional)").fill("admin-retires");
    await page.getByRole("checkbox", { name: "DescribeKey", exact: true }).check();
    await page.getByRole("button", { name: "Create grant" }).click();
    const retirable = page.locator("tbody tr", { hasText: "admin-retires" });
    await retirable.getByText("user/admin").waitFor();
    await retirable.getByRole("button", { name: "Retire grant admin-retires" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Retire" }).click();
    await page.locator("tbody tr", { hasText: "admin-retires" }).waitFor({ state: "detached" });
    await page.getByRole("cell", { name: "None" }).waitFor();

    // 10. Imported material: an HMAC key of origin EXTERNAL made in the console, its material
    // wrapped in the browser and imported; the key then MACs as that material does.
    await page.getByRole("link", { name: "Create key" }).first().click();
    await page.getByLabel("Origin").selectOption("EXTERNAL");
    await page.getByLabel("Key spec").selectOption("HMAC_256");
    assert.equal(await page.getByLabel("Key usage").inputValue(), "GENERATE_VERIFY_MAC");
    assert.equal(await page.getByLabel("Key spec").locator("option[value='ML_DSA_65']").count(), 0, "no ML-DSA to import");
    await page.getByLabel("Description").fill("imported HMAC key (console test)");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.locator("h1 .badge", { hasText: "PendingImport" }).waitFor();
    const importedId = await page.locator("[data-key-id]").getAttribute("data-key-id");
    const material = randomBytes(32);
    await page.getByLabel("Key material file").setInputFiles({ name: "hmac.bin", mimeType: "application/octet-stream", buffer: material });
    await page.getByRole("button", { name: "Import key material" }).click();
    await page.locator("h1 .badge", { hasText: "Enabled" }).waitFor();
    assert.ok(
      requestBodies.every((r) => !r.includes(material.toString("base64")) && !r.includes(material.toString("hex"))),
      "the key material left the browser unwrapped",
    );
    // An HMAC key has one material: no import type or material description is offered.
    assert.equal(await page.getByLabel("Import type").count(), 0);
    assert.equal(await page.getByLabel("Material description (optional)").count(), 0);
    await shot(page, "imported-key");
    const message = Buffer.from("imported in the browser");
    const mac = await adminClient().send(new GenerateMacCommand({ KeyId: importedId, Message: message, MacAlgorithm: "HMAC_SHA_256" }));
    assert.equal(Buffer.from(mac.Mac).toString("hex"), createHmac("sha256", material).update(message).digest("hex"));

    // 11. A role: carol may only assume it; the console signs in through STS AssumeRole, for
    // as long as asked, and the role's policies apply.
    await signOut(page);
    await page.getByLabel("Access key ID").fill(carol.key);
    await page.getByLabel("Secret access key").fill(carol.secret);
    await page.getByText("Session token or role").click();
    await page.getByLabel("Assume role (ARN)").fill(roleArn);
    await page.getByLabel("Role session name").fill("carol-console");
    await page.getByLabel("Session duration (seconds)").fill("900");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("assumed-role/auditor/carol-console").waitFor();
    const roleSession = JSON.parse(await page.evaluate(() => sessionStorage.getItem("ferrokms-console-session") ?? "{}"));
    const lasts = Date.parse(roleSession.credentials.expiration) - Date.now();
    assert.ok(lasts > 800_000 && lasts <= 900_000, `the role session lasts ${lasts} ms`);
    assert.ok(roleSession.credentials.sessionToken, "a session token");
    assert.ok(!JSON.stringify(roleSession).includes(carol.secret), "carol's own secret is not kept");
    await page.goto(`${endpoint}/console/#/keys?tag=purpose%3Dscratch`);
    await page.getByRole("link", { name: scratchKey }).waitFor();
    // The role may read keys but not make them.
    await page.getByRole("link", { name: "Create key" }).first().click();
    await page.getByRole("button", { name: "Create key" }).click();
    const roleError = page.locator(".status .error[data-error-code]");
    await roleError.waitFor();
    assert.equal(await roleError.getAttribute("data-error-code"), "AccessDeniedException");
    assert.match(await roleError.innerText(), /assumed-role\/auditor\/carol-console is not authorized to perform: kms:CreateKey/);
    await shot(page, "role-denied");
    // When the role's credentials expire, the next step is the sign-in form, which says why.
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("ferrokms-console-session") ?? "{}");
      s.credentials.expiration = new Date(Date.now() - 1000).toISOString();
      sessionStorage.setItem("ferrokms-console-session", JSON.stringify(s));
    });
    await page.reload();
    await page.getByLabel("Access key ID").waitFor();
    await page.getByText("The role session's credentials have expired. Sign in again.").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the expired session is forgotten");
    await shot(page, "role-expired");

    // Every API answer the console got said no-store; every call was signed.
    assert.ok(apiAnswers.length > 10);
    for (const a of apiAnswers) assert.equal(a.cache, "no-store", a.url);
    const signed = requestHeaders.filter((r) => r["authorization"]);
    assert.ok(signed.length > 10);
    for (const r of signed) assert.match(r["authorization"], /^AWS4-HMAC-SHA256 Credential=/);
    assert.ok(
      requestBodies.every((r) => [admin, bob, carol].every((who) => !r.includes(who.secret))),
      "a secret left the browser",
    );
    assert.deepEqual(problems, []);
  } catch (e) {
    await shot(page, "failure").catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
});
