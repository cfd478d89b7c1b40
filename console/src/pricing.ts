// AWS KMS list prices, for the usage page's comparison. Read from AWS's pricing page on the
// date below; the README cites the same figures. Update both together.

export type RequestClass = "symmetric" | "rsa2048" | "asymmetric" | "eccDataKeyPair" | "rsaDataKeyPair";

export const PRICES = {
  source: "https://aws.amazon.com/kms/pricing/",
  readOn: "2026-12-03",
  region: "us-east-1",
  keyPerMonth: 1.0,
  freeRequestsPerMonth: 20000,
  per10k: {
    symmetric: 0.03,
    rsa2048: 0.03,
    asymmetric: 0.15,
    eccDataKeyPair: 0.1,
    rsaDataKeyPair: 12.0,
  } satisfies Record<RequestClass, number>,
  summary:
    "$1.00 per customer managed key per month; $0.03 per 10,000 requests ($0.03 involving RSA 2048 keys, " +
    "$0.15 other asymmetric keys, $0.10 ECC GenerateDataKeyPair, $12.00 RSA GenerateDataKeyPair); " +
    "20,000 requests a month free, except GenerateDataKeyPair and requests on asymmetric keys.",
};

/** The price class of a request, by its operation, its key's spec and (for
 * GenerateDataKeyPair) the spec of the pair it asked for. */
export function requestClass(operation: string, keySpec: string | undefined, pairSpec?: string): RequestClass {
  if (operation.startsWith("GenerateDataKeyPair")) {
    return pairSpec?.startsWith("RSA_") ? "rsaDataKeyPair" : "eccDataKeyPair";
  }
  if (!keySpec || keySpec === "SYMMETRIC_DEFAULT" || keySpec.startsWith("HMAC_")) return "symmetric";
  if (keySpec === "RSA_2048") return "rsa2048";
  return "asymmetric";
}

/** The cost of a month's requests, with the free tier taken off the classes it covers. */
export function requestCost(counts: Map<RequestClass, number>): { cost: number } {
  let free = PRICES.freeRequestsPerMonth;
  let cost = 0;
  for (const cls of ["symmetric", "rsa2048", "asymmetric", "eccDataKeyPair", "rsaDataKeyPair"] as RequestClass[]) {
    let n = counts.get(cls) ?? 0;
    if (cls === "symmetric") {
      const covered = Math.min(free, n);
      free -= covered;
      n -= covered;
    }
    cost += (n / 10000) * PRICES.per10k[cls];
  }
  return { cost };
}
