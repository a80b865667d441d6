//! The invoice of a month (D24): billable calls priced by the tenant's tiers, exactly.
//!
//! Pure: the outcome counts of the month and the tenant's [`TenantBilling`] in, an
//! [`Invoice`] out. Tier bounds are inclusive: with `up_to = 110000` a month of exactly
//! 110,000 billable calls is in the first tier, 110,001 in the second.
//!
//! With [`Pricing::Volume`] (the default) the whole volume is priced at the tier the volume
//! reaches; that has a step at each bound (110,001 calls at 1350.00 cost less than 110,000
//! at 1500.00), which is what a tender's per-call price for a volume band means and what the
//! client expects to check. [`Pricing::Graduated`] prices each slice at its own tier instead.

use crate::config::billing::{Pricing, TenantBilling};
use crate::money::Money;
use serde::Serialize;
use std::collections::BTreeMap;

/// One priced line of the invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    /// 1-based number of the tier.
    pub tier: usize,
    /// The first call (1-based) of the volume this line prices.
    pub from_call: u64,
    /// The last call this line prices.
    pub to_call: u64,
    /// Calls on this line.
    pub calls: u64,
    /// Price of one call, minor units.
    pub unit_price: Money,
    /// `calls * unit_price`.
    pub amount: Money,
}

/// What the client is billed for a month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invoice {
    /// ISO 4217 code.
    pub currency: String,
    /// `volume` or `graduated`.
    pub pricing: &'static str,
    /// The billable outcomes and their calls.
    pub billable: Vec<(String, u64)>,
    /// Billable calls in the month.
    pub volume: u64,
    /// 1-based tier the volume reaches.
    pub tier: usize,
    /// The reached tier's bounds in words: `1-110000`, `150001+`.
    pub tier_range: String,
    /// The reached tier's price of one call.
    pub unit_price: Money,
    /// The priced lines (one with volume pricing).
    pub lines: Vec<InvoiceLine>,
    /// The sum of the lines.
    pub total: Money,
}

/// Why a month cannot be priced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// The rules have no tier (the configuration check refuses that).
    #[error("the billing rules have no price tier")]
    NoTier,
    /// More than an `i64` of minor units.
    #[error("the invoice total does not fit in the amounts navbat counts")]
    Overflow,
}

/// Prices the month whose calls ended with `outcomes` (outcome name -> calls).
pub fn invoice(
    rules: &TenantBilling,
    outcomes: &BTreeMap<String, u64>,
) -> Result<Invoice, BillingError> {
    let billable: Vec<(String, u64)> = rules
        .billable
        .iter()
        .map(|o| (o.clone(), outcomes.get(o).copied().unwrap_or(0)))
        .collect();
    let volume: u64 = billable.iter().map(|(_, n)| n).sum();
    let (tier_index, tier) = rules
        .tiers
        .iter()
        .enumerate()
        .find(|(_, t)| t.up_to.is_none_or(|b| volume <= b))
        .or_else(|| rules.tiers.iter().enumerate().next_back())
        .ok_or(BillingError::NoTier)?;
    let lower = |i: usize| -> u64 {
        if i == 0 {
            1
        } else {
            rules.tiers[i - 1].up_to.map_or(1, |b| b + 1)
        }
    };
    let tier_range = match tier.up_to {
        Some(b) => format!("{}-{b}", lower(tier_index)),
        None => format!("{}+", lower(tier_index)),
    };
    let mut lines = Vec::new();
    match rules.pricing {
        Pricing::Volume => lines.push(InvoiceLine {
            tier: tier_index + 1,
            from_call: u64::from(volume > 0),
            to_call: volume,
            calls: volume,
            unit_price: tier.price,
            amount: tier.price.times(volume).ok_or(BillingError::Overflow)?,
        }),
        Pricing::Graduated => {
            let mut done = 0u64;
            for (i, t) in rules.tiers.iter().enumerate().take(tier_index + 1) {
                let upto = t.up_to.map_or(volume, |b| b.min(volume));
                let calls = upto.saturating_sub(done);
                if calls == 0 {
                    continue;
                }
                lines.push(InvoiceLine {
                    tier: i + 1,
                    from_call: done + 1,
                    to_call: upto,
                    calls,
                    unit_price: t.price,
                    amount: t.price.times(calls).ok_or(BillingError::Overflow)?,
                });
                done = upto;
            }
        }
    }
    let total = lines.iter().try_fold(Money::default(), |sum, l| {
        sum.plus(l.amount).ok_or(BillingError::Overflow)
    })?;
    Ok(Invoice {
        currency: rules.currency.clone(),
        pricing: rules.pricing.as_str(),
        billable,
        volume,
        tier: tier_index + 1,
        tier_range,
        unit_price: tier.price,
        lines,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::billing::Tier;

    fn tender(pricing: Pricing) -> TenantBilling {
        let m = |s: &str| Money::parse(s).unwrap();
        TenantBilling {
            currency: "UZS".into(),
            billable: vec!["answered".into(), "deflected".into()],
            pricing,
            tiers: vec![
                Tier {
                    up_to: Some(110_000),
                    price: m("1500.00"),
                },
                Tier {
                    up_to: Some(150_000),
                    price: m("1350.00"),
                },
                Tier {
                    up_to: None,
                    price: m("1200.00"),
                },
            ],
        }
    }

    fn month(answered: u64, deflected: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("answered".to_owned(), answered),
            ("deflected".to_owned(), deflected),
            ("abandoned".to_owned(), 9_999),
        ])
    }

    #[test]
    fn volume_pricing_puts_the_whole_month_at_the_tier_reached() {
        let rules = tender(Pricing::Volume);
        let at_bound = invoice(&rules, &month(100_000, 10_000)).unwrap();
        assert_eq!((at_bound.volume, at_bound.tier), (110_000, 1));
        assert_eq!(at_bound.total.to_string(), "165000000.00");
        assert_eq!(at_bound.tier_range, "1-110000");
        let above = invoice(&rules, &month(100_000, 10_001)).unwrap();
        assert_eq!(
            (above.tier, above.unit_price.to_string()),
            (2, "1350.00".into())
        );
        assert_eq!(above.total.minor(), 110_001 * 135_000);
        assert_eq!(above.tier_range, "110001-150000");
        let big = invoice(&rules, &month(200_000, 0)).unwrap();
        assert_eq!((big.tier, big.tier_range.as_str()), (3, "150001+"));
        assert_eq!(big.lines.len(), 1);
        let empty = invoice(&rules, &BTreeMap::new()).unwrap();
        assert_eq!((empty.volume, empty.total.minor(), empty.tier), (0, 0, 1));
    }

    #[test]
    fn graduated_pricing_prices_each_slice_at_its_tier() {
        let inv = invoice(&tender(Pricing::Graduated), &month(150_000, 10_000)).unwrap();
        assert_eq!(inv.volume, 160_000);
        assert_eq!(inv.tier, 3);
        let calls: Vec<u64> = inv.lines.iter().map(|l| l.calls).collect();
        assert_eq!(calls, vec![110_000, 40_000, 10_000]);
        assert_eq!(inv.lines[1].from_call, 110_001);
        assert_eq!(
            inv.total.minor(),
            110_000 * 150_000 + 40_000 * 135_000 + 10_000 * 120_000
        );
    }

    #[test]
    fn only_billable_outcomes_count_and_overflow_is_an_error() {
        let mut rules = tender(Pricing::Volume);
        rules.billable = vec!["answered".into()];
        let inv = invoice(&rules, &month(5, 7)).unwrap();
        assert_eq!(inv.volume, 5);
        assert_eq!(inv.billable, vec![("answered".to_owned(), 5)]);
        rules.tiers[0].price = Money::from_minor(i64::MAX / 2);
        assert_eq!(invoice(&rules, &month(5, 0)), Err(BillingError::Overflow));
        rules.tiers.clear();
        assert_eq!(invoice(&rules, &month(5, 0)), Err(BillingError::NoTier));
    }
}
