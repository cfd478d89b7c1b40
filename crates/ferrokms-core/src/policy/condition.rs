//! Condition operators and how one condition holds against a request's context, as the IAM
//! User Guide defines them ("IAM JSON policy elements: Condition operators", "Single-valued
//! vs. multivalued context keys").

use std::net::IpAddr;

use super::glob;

/// How a condition treats a multivalued request key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SetQualifier {
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

/// The outcome of comparing values: a value that is not of the operator's type (a number
/// that does not parse, an address that is not one) can be neither true nor false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Truth {
    True,
    False,
    /// A value could not be read as the operator's type. An Allow statement does not apply,
    /// a Deny statement does: never widen.
    Invalid,
}

impl Truth {
    fn from(b: bool) -> Self {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

impl Operator {
    pub(super) fn parse(s: &str) -> Option<Self> {
        use Operator::*;
        Some(match s {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnNotEquals" => ArnNotEquals,
            "ArnLike" => ArnLike,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// A negated operator holds for a request value that matches none of the policy's
    /// values, and for an absent key.
    pub(super) fn is_negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether one request value matches one policy value (for a negated operator: its
    /// positive form).
    fn matches(self, request: &str, policy: &str) -> Truth {
        use std::cmp::Ordering::*;
        use Operator::*;
        let ordered = |o: Option<std::cmp::Ordering>, want: &[std::cmp::Ordering]| match o {
            Some(o) => Truth::from(want.contains(&o)),
            None => Truth::Invalid,
        };
        match self {
            StringEquals | StringNotEquals => Truth::from(request == policy),
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                Truth::from(request.to_lowercase() == policy.to_lowercase())
            }
            StringLike | StringNotLike => Truth::from(glob(policy, request, false)),
            NumericEquals | NumericNotEquals => ordered(compare_numbers(request, policy), &[Equal]),
            NumericLessThan => ordered(compare_numbers(request, policy), &[Less]),
            NumericLessThanEquals => ordered(compare_numbers(request, policy), &[Less, Equal]),
            NumericGreaterThan => ordered(compare_numbers(request, policy), &[Greater]),
            NumericGreaterThanEquals => {
                ordered(compare_numbers(request, policy), &[Greater, Equal])
            }
            DateEquals | DateNotEquals => ordered(compare_dates(request, policy), &[Equal]),
            DateLessThan => ordered(compare_dates(request, policy), &[Less]),
            DateLessThanEquals => ordered(compare_dates(request, policy), &[Less, Equal]),
            DateGreaterThan => ordered(compare_dates(request, policy), &[Greater]),
            DateGreaterThanEquals => ordered(compare_dates(request, policy), &[Greater, Equal]),
            Bool => match (parse_bool(request), parse_bool(policy)) {
                (Some(a), Some(b)) => Truth::from(a == b),
                _ => Truth::Invalid,
            },
            BinaryEquals => Truth::from(request == policy),
            IpAddress | NotIpAddress => match ip_in_cidr(request, policy) {
                Some(b) => Truth::from(b),
                None => Truth::Invalid,
            },
            // IAM documents ArnEquals and ArnLike alike: six colon-separated parts, each
            // matched with wildcards.
            ArnEquals | ArnNotEquals | ArnLike | ArnNotLike => {
                Truth::from(arn_like(request, policy))
            }
            Null => Truth::False,
        }
    }
}

/// One key of one operator of a statement's Condition block.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Condition {
    pub operator: Operator,
    pub qualifier: SetQualifier,
    pub if_exists: bool,
    /// The operator as written, for explanations.
    pub written: String,
    /// Condition key names are case-insensitive; kept lowercased.
    pub key: String,
    pub values: Vec<String>,
}

impl Condition {
    /// Whether the condition holds for `request`, the values of its key in the request
    /// (`None`: the key is absent), in a statement that denies (`in_deny`) or allows.
    pub(super) fn holds(&self, request: Option<&[String]>, in_deny: bool) -> Truth {
        let request = request.filter(|v| !v.is_empty());
        // No values to compare with, or a policy variable ferrokms does not substitute:
        // nothing can be said, so no Allow applies and every Deny does.
        if self.values.is_empty() || self.values.iter().any(|v| v.contains("${")) {
            return Truth::Invalid;
        }
        if self.operator == Operator::Null {
            // Null: "true" asks for the key to be absent, "false" for it to be present.
            let Some(wants_absent) = self.values.first().and_then(|v| parse_bool(v)) else {
                return Truth::Invalid;
            };
            return Truth::from(wants_absent == request.is_none());
        }
        let Some(request) = request else {
            return Truth::from(match self.qualifier {
                // "...IfExists ... If the key is not present, evaluate the condition element
                // as true", whatever set operator it has.
                _ if self.if_exists => true,
                // "If the key is not present or the key value is an empty set, the
                // ForAllValues condition returns true."
                SetQualifier::ForAllValues => true,
                // "ForAnyValue ... returns false if there are no keys in the request."
                SetQualifier::ForAnyValue => false,
                // A negated operator is true of an absent key; any other is false.
                SetQualifier::Single => self.operator.is_negated(),
            });
        };
        // Whether one request value satisfies the operator: for a negated operator, it
        // matches none of the policy's values.
        let one = |r: &String| -> Truth {
            let mut any = Truth::False;
            for v in &self.values {
                match self.operator.matches(r, v) {
                    Truth::True => {
                        any = Truth::True;
                        break;
                    }
                    Truth::Invalid => any = Truth::Invalid,
                    Truth::False => {}
                }
            }
            match (self.operator.is_negated(), any) {
                (_, Truth::Invalid) => Truth::Invalid,
                (true, t) => Truth::from(t == Truth::False),
                (false, t) => t,
            }
        };
        let all = || {
            let mut out = Truth::True;
            for r in request {
                match one(r) {
                    Truth::False => return Truth::False,
                    Truth::Invalid => out = Truth::Invalid,
                    Truth::True => {}
                }
            }
            out
        };
        let any = || {
            let mut out = Truth::False;
            for r in request {
                match one(r) {
                    Truth::True => return Truth::True,
                    Truth::Invalid => out = Truth::Invalid,
                    Truth::False => {}
                }
            }
            out
        };
        match self.qualifier {
            SetQualifier::ForAllValues => all(),
            SetQualifier::ForAnyValue => any(),
            // A plain operator meets several values only on a multivalued key used without
            // a set operator, or on keys that differ only by case (`Tenant` and `tenant` in
            // one encryption context). IAM leaves it undefined; ferrokms fails closed: an
            // Allow needs every value to satisfy it, a Deny applies if any value does.
            SetQualifier::Single if in_deny => any(),
            SetQualifier::Single => all(),
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An integer or decimal, as IAM's numeric operators take; never `inf`, `NaN` or an
/// exponent, which Rust's float parser would accept.
fn parse_number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn compare_numbers(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    parse_number(a)?.partial_cmp(&parse_number(b)?)
}

/// Dates are ISO 8601 (with or without a time, in UTC or with an offset) or epoch seconds.
/// Returned as milliseconds.
pub(super) fn parse_date(s: &str) -> Option<i128> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i128>().ok().and_then(|n| n.checked_mul(1000));
    }
    let format = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &format) {
        return Some(t.unix_timestamp_nanos() / 1_000_000);
    }
    let iso = time::format_description::well_known::Iso8601::DEFAULT;
    if let Ok(t) = time::OffsetDateTime::parse(s, &iso) {
        return Some(t.unix_timestamp_nanos() / 1_000_000);
    }
    // A bare date: midnight UTC.
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(i128::from(d.midnight().assume_utc().unix_timestamp()) * 1000)
}

fn compare_dates(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    Some(parse_date(a)?.cmp(&parse_date(b)?))
}

/// Whether `ip` is in `cidr` (a bare address is a /32 or /128); None when either is not an
/// address of its kind.
fn ip_in_cidr(ip: &str, cidr: &str) -> Option<bool> {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, Some(b.parse::<u32>().ok()?)),
        None => (cidr, None),
    };
    // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d.
    let ip = ip.parse::<IpAddr>().ok()?.to_canonical();
    match (ip, net.parse::<IpAddr>().ok()?) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(u32::from(a) & mask == u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(u128::from(a) & mask == u128::from(n) & mask)
        }
        // An IPv4 address is never in an IPv6 range, nor the other way round.
        _ => Some(false),
    }
}

/// ArnLike compares the six colon-separated parts, each with wildcards; a value that is
/// not an ARN matches nothing.
fn arn_like(arn: &str, pattern: &str) -> bool {
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    a.len() == 6 && p.len() == 6 && a.iter().zip(&p).all(|(x, y)| glob(y, x, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_integers_or_decimals_only() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-2.5"), Some(-2.5));
        for bad in ["inf", "NaN", "-inf", "1e3", "", ".5", "5.", "0x10", " 1"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_in_each_documented_form() {
        assert_eq!(parse_date("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(parse_date("2026-01-01T00:00:00Z"), Some(1_767_225_600_000));
        assert_eq!(
            parse_date("2026-01-01T01:00:00+01:00"),
            Some(1_767_225_600_000)
        );
        assert_eq!(parse_date("1767225600"), Some(1_767_225_600_000));
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn cidrs() {
        assert_eq!(ip_in_cidr("10.1.2.3", "10.0.0.0/8"), Some(true));
        assert_eq!(ip_in_cidr("11.1.2.3", "10.0.0.0/8"), Some(false));
        assert_eq!(ip_in_cidr("10.1.2.3", "0.0.0.0/0"), Some(true));
        assert_eq!(ip_in_cidr("::1", "::1/128"), Some(true));
        assert_eq!(ip_in_cidr("::1", "10.0.0.0/8"), Some(false));
        assert_eq!(ip_in_cidr("10.1.2.3", "10.0.0.0/33"), None);
        assert_eq!(ip_in_cidr("not-an-ip", "10.0.0.0/8"), None);
        assert_eq!(ip_in_cidr("::ffff:10.1.2.3", "10.0.0.0/8"), Some(true));
    }
}
