//! `[tenant.billing]`: the price per call (D24), with tiers by the month's billable volume.
//!
//! ```toml
//! [tenant.billing]
//! currency = "UZS"
//! billable = ["answered", "deflected"]     # the default
//! pricing = "volume"                       # or "graduated"
//! tiers = [
//!     { up_to = 110000, price = "1500.00" },
//!     { up_to = 150000, price = "1350.00" },
//!     { price = "1200.00" },               # the last tier has no upper bound
//! ]
//! ```
//!
//! Prices are quoted strings parsed exactly into minor units ([`Money`]); a float is refused.
//! `up_to` is inclusive and grows from tier to tier. See [`Pricing`] for how the tiers apply.

use super::error::Collector;
use crate::money::Money;
use serde::Deserialize;

/// `[tenant.billing]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantBilling {
    pub currency: String,
    pub billable: Option<Vec<String>>,
    pub pricing: Option<String>,
    pub tiers: Vec<RawTier>,
}

/// One tier as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    pub up_to: Option<u64>,
    pub price: toml::Value,
}

/// How the tiers price a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// The whole month's volume at the unit price of the tier the volume reaches (`"volume"`,
    /// the default). This is what a tender's "price per call for 110,000 to 150,000 calls"
    /// means: one unit price, chosen by the band the month falls in, times the calls; the
    /// invoice is one line a client can check with one multiplication.
    Volume,
    /// Each slice of the volume at its own tier's price (`"graduated"`), as telephone tariffs
    /// often are: the first `up_to` calls at the first price, the next ones at the second...
    Graduated,
}

impl Pricing {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Pricing::Volume => "volume",
            Pricing::Graduated => "graduated",
        }
    }
}

/// One price tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// The largest monthly volume of this tier (inclusive); `None` on the last tier.
    pub up_to: Option<u64>,
    /// The price of one billable call.
    pub price: Money,
}

/// A tenant's billing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBilling {
    /// ISO 4217 code printed with the amounts (`UZS`).
    pub currency: String,
    /// The call outcomes that are billed (`answered`, `deflected`, ...).
    pub billable: Vec<String>,
    /// How the tiers apply.
    pub pricing: Pricing,
    /// At least one; `up_to` ascending; the last one unbounded.
    pub tiers: Vec<Tier>,
}

/// Every call outcome a call record can carry (`call_records.outcome`).
pub const OUTCOME_NAMES: [&str; 9] = [
    "answered",
    "abandoned",
    "timed_out",
    "blocked",
    "closed",
    "ivr_hangup",
    "failed",
    "deflected",
    "callback_requested",
];

/// The billable outcomes when `billable` is left out: calls an operator answered and calls
/// the IVR's self-service answered (surge deflection).
pub const DEFAULT_BILLABLE: [&str; 2] = ["answered", "deflected"];

pub(crate) fn check_tenant_billing(
    raw: Option<&RawTenantBilling>,
    label: &str,
    errors: &mut Collector,
) -> Option<TenantBilling> {
    let raw = raw?;
    let field = format!("{label}.billing");
    let before = errors.len();
    let currency = raw.currency.trim().to_owned();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(
            format!("{field}.currency"),
            format!("\"{}\" is not a three-letter currency code", raw.currency),
            "write the ISO 4217 code, e.g. \"UZS\"",
        );
    }
    let billable: Vec<String> = match &raw.billable {
        None => DEFAULT_BILLABLE.iter().map(|s| (*s).to_owned()).collect(),
        Some(list) => {
            if list.is_empty() {
                errors.push(
                    format!("{field}.billable"),
                    "an empty list bills nothing",
                    "list the billed outcomes, e.g. [\"answered\", \"deflected\"], or leave \
                     billable out for that default",
                );
            }
            for (i, name) in list.iter().enumerate() {
                if !OUTCOME_NAMES.contains(&name.as_str()) {
                    errors.push(
                        format!("{field}.billable[{i}]"),
                        format!("\"{name}\" is not a call outcome"),
                        format!("use some of {}", OUTCOME_NAMES.join(", ")),
                    );
                } else if list[..i].contains(name) {
                    errors.push(
                        format!("{field}.billable[{i}]"),
                        format!("\"{name}\" is listed twice"),
                        "list each outcome once",
                    );
                }
            }
            list.clone()
        }
    };
    let pricing = match raw.pricing.as_deref() {
        None | Some("volume") => Pricing::Volume,
        Some("graduated") => Pricing::Graduated,
        Some(other) => {
            errors.push(
                format!("{field}.pricing"),
                format!("\"{other}\" is not a pricing rule"),
                "use \"volume\" (the whole month at the tier reached) or \"graduated\" (each \
                 slice at its own tier)",
            );
            Pricing::Volume
        }
    };
    if raw.tiers.is_empty() {
        errors.push(
            format!("{field}.tiers"),
            "no tier: nothing gives a price",
            "add at least one, e.g. tiers = [{ price = \"1500.00\" }]",
        );
    }
    let mut tiers = Vec::with_capacity(raw.tiers.len());
    let mut last_bound: Option<u64> = None;
    for (i, t) in raw.tiers.iter().enumerate() {
        let tf = format!("{field}.tiers[{i}]");
        let is_last = i + 1 == raw.tiers.len();
        match (t.up_to, is_last) {
            (None, false) => errors.push(
                format!("{tf}.up_to"),
                "only the last tier may be without an upper bound",
                "give this tier's largest monthly volume, e.g. up_to = 110000",
            ),
            (Some(_), true) => errors.push(
                format!("{tf}.up_to"),
                "the last tier has an upper bound, so a bigger month would have no price",
                "remove up_to from the last tier (or add a last tier without it)",
            ),
            (Some(0), _) => errors.push(
                format!("{tf}.up_to"),
                "0 calls cannot be a tier's bound",
                "use the tier's largest monthly volume, e.g. 110000",
            ),
            (Some(b), _) if last_bound.is_some_and(|l| b <= l) => errors.push(
                format!("{tf}.up_to"),
                format!(
                    "{b} is not above the tier before it ({})",
                    last_bound.unwrap_or(0)
                ),
                "list the tiers from the smallest volume to the largest",
            ),
            _ => {}
        }
        if let Some(b) = t.up_to {
            last_bound = Some(last_bound.map_or(b, |l| l.max(b)));
        }
        let price = match &t.price {
            toml::Value::String(text) => match Money::parse(text) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(
                        format!("{tf}.price"),
                        e.to_string(),
                        "write the price of one call with at most two decimals, e.g. \"1350.00\"",
                    );
                    None
                }
            },
            other => {
                errors.push(
                    format!("{tf}.price"),
                    format!("{other} is a number, and money is never a float here"),
                    format!("quote it: price = \"{other}\""),
                );
                None
            }
        };
        if let Some(price) = price {
            tiers.push(Tier {
                up_to: t.up_to,
                price,
            });
        }
    }
    (errors.len() == before).then_some(TenantBilling {
        currency,
        billable,
        pricing,
        tiers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<TenantBilling, Vec<(String, String)>> {
        let raw: RawTenantBilling = toml::from_str(toml_text).expect("parses");
        let mut errors = Collector::new("t.toml");
        let out = check_tenant_billing(Some(&raw), "tenant.dtm", &mut errors);
        if errors.is_empty() {
            Ok(out.expect("no errors, a value"))
        } else {
            Err(errors
                .into_errors()
                .0
                .into_iter()
                .map(|e| (e.field, e.problem))
                .collect())
        }
    }

    #[test]
    fn the_tender_example_parses_into_exact_prices() {
        let b = check(
            r#"currency = "UZS"
tiers = [{ up_to = 110000, price = "1500.00" }, { up_to = 150000, price = "1350.00" }, { price = "1200" }]"#,
        )
        .unwrap();
        assert_eq!(b.currency, "UZS");
        assert_eq!(b.billable, vec!["answered", "deflected"]);
        assert_eq!(b.pricing, Pricing::Volume);
        assert_eq!(b.tiers.len(), 3);
        assert_eq!(b.tiers[1].price.minor(), 135_000);
        assert_eq!(b.tiers[2].up_to, None);
    }

    #[test]
    fn every_mistake_names_its_field() {
        let errs = check(
            r#"currency = "sum"
billable = ["answered", "talked", "answered"]
pricing = "cheap"
tiers = [{ price = 1500.0 }, { up_to = 5, price = "1.001" }]"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        for f in [
            "tenant.dtm.billing.currency",
            "tenant.dtm.billing.billable[1]",
            "tenant.dtm.billing.billable[2]",
            "tenant.dtm.billing.pricing",
            "tenant.dtm.billing.tiers[0].up_to",
            "tenant.dtm.billing.tiers[0].price",
            "tenant.dtm.billing.tiers[1].up_to",
            "tenant.dtm.billing.tiers[1].price",
        ] {
            assert!(fields.contains(&f), "{f} missing from {errs:?}");
        }
        let descending = check(
            r#"currency = "UZS"
tiers = [{ up_to = 150000, price = "1" }, { up_to = 110000, price = "1" }, { price = "1" }]"#,
        )
        .unwrap_err();
        assert_eq!(descending[0].0, "tenant.dtm.billing.tiers[1].up_to");
        let none = check("currency = \"UZS\"\ntiers = []").unwrap_err();
        assert_eq!(none[0].0, "tenant.dtm.billing.tiers");
    }
}
